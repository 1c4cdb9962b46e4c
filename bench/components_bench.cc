// Google Benchmark figures for the hot components of the produce and fetch paths:
// CRC-32C, batch validation, request decoding and response encoding.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "protocol/messages/fetch_response.h"
#include "protocol/messages/produce_request.h"
#include "protocol/record_batch.h"

namespace runnel::protocol {
namespace {

std::string MakeBatch(int records, size_t value_size, Compression codec = Compression::kNone) {
  std::vector<RecordToAdd> batch(records);
  for (int i = 0; i < records; ++i) {
    batch[i].key = "key-" + std::to_string(i);
    batch[i].value = std::string(value_size, static_cast<char>('a' + i % 26));
    batch[i].timestamp = 1700000000000 + i;
  }
  BatchOptions options;
  options.compression = codec;
  return BuildBatch(batch, options);
}

void BM_Crc32c(benchmark::State& state) {
  std::string data(state.range(0), 'x');
  for (auto _ : state) benchmark::DoNotOptimize(Crc32c(data.data(), data.size()));
  state.SetBytesProcessed(state.iterations() * data.size());
}
BENCHMARK(BM_Crc32c)->Arg(16 << 10)->Arg(1 << 20);

void BM_ValidateBatch(benchmark::State& state) {
  std::string batch = MakeBatch(16, 1000);  // 1 KB records in a ~16 KB batch
  for (auto _ : state) benchmark::DoNotOptimize(ValidateBatch(batch));
  state.SetBytesProcessed(state.iterations() * batch.size());
  state.SetItemsProcessed(state.iterations() * 16);
}
BENCHMARK(BM_ValidateBatch);

void BM_DecodeProduceRequest(benchmark::State& state) {
  ProduceRequest request;
  request.acks = -1;
  request.timeout_ms = 30000;
  std::string batch = MakeBatch(100, 100);
  for (int t = 0; t < 3; ++t) {
    auto& topic = request.topic_data.emplace_back();
    topic.name = "topic-" + std::to_string(t);
    for (int p = 0; p < 3; ++p) {
      auto& partition = topic.partition_data.emplace_back();
      partition.index = p;
      partition.records.data = batch;
    }
  }
  Encoded bytes;
  Writer w(&bytes);
  request.Encode(w, 7);
  for (auto _ : state) {
    Reader r(bytes.bytes);
    ProduceRequest decoded;
    benchmark::DoNotOptimize(decoded.Decode(r, 7));
  }
  state.SetBytesProcessed(state.iterations() * bytes.bytes.size());
}
BENCHMARK(BM_DecodeProduceRequest);

void BM_EncodeFetchResponse(benchmark::State& state) {
  FetchResponse response;
  for (int t = 0; t < 3; ++t) {
    auto& topic = response.responses.emplace_back();
    topic.topic = "topic-" + std::to_string(t);
    for (int p = 0; p < 3; ++p) {
      auto& partition = topic.partitions.emplace_back();
      partition.partition_index = p;
      partition.high_watermark = 1000000;
      partition.records.slices.push_back({3, 4096, 1 << 20, nullptr});
    }
  }
  for (auto _ : state) {
    Encoded out;
    Writer w(&out);
    response.Encode(w, 11);
    benchmark::DoNotOptimize(out.bytes.data());
  }
}
BENCHMARK(BM_EncodeFetchResponse);

}  // namespace
}  // namespace runnel::protocol

BENCHMARK_MAIN();
