// libFuzzer target for the record batch layer: splits arbitrary bytes into batches,
// validates each and decodes its records (decompressing with a small bound), and
// feeds the same bytes to every decompressor. Hostile input must yield an error
// status, never a crash, an out-of-bounds access or an unbounded allocation.
//
// The first input byte picks a codec for the direct Decompress call; libFuzzer finds
// real compressed streams fastest when seeded with BuildBatch output for each codec.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/compression.h"
#include "protocol/record_batch.h"

namespace {

constexpr size_t kMaxDecompressed = 1 << 16;

void Consume(const runnel::protocol::Record& r, size_t* sink) {
  *sink += r.key ? r.key->size() : 0;
  *sink += r.value ? r.value->size() : 0;
  for (const auto& h : r.headers) *sink += h.key.size() + (h.value ? h.value->size() : 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace runnel::protocol;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t sink = 0;

  if (size > 0) {
    auto codec = static_cast<Compression>(data[0] % 5);
    absl::StatusOr<std::string> plain = Decompress(codec, input.substr(1), kMaxDecompressed);
    if (plain.ok() && plain->size() > kMaxDecompressed) __builtin_trap();
  }

  BatchIterator it(input);
  std::string_view batch;
  BatchHeader header;
  std::string scratch;
  while (it.Next(&batch, &header)) {
    if (batch.size() != header.total_size()) __builtin_trap();
    absl::Status valid = ValidateBatch(batch);
    absl::StatusOr<std::vector<Record>> records = ReadRecords(batch, &scratch, kMaxDecompressed);
    if (records.ok()) {
      if (records->size() != static_cast<size_t>(header.record_count)) __builtin_trap();
      for (const Record& r : *records) Consume(r, &sink);
    }
    // A valid uncompressed batch must also be readable.
    if (valid.ok() && header.compression() == Compression::kNone && !records.ok()) {
      __builtin_trap();
    }

    // The in-place rewrites must keep a valid batch valid. SetLogAppendTime also
    // recomputes the CRC, which takes validation past the CRC check into the records.
    std::string copy(batch);
    SetBaseOffset(copy.data(), 7);
    SetPartitionLeaderEpoch(copy.data(), 3);
    SetLogAppendTime(copy.data(), copy.size(), 12345);
    absl::Status copy_valid = ValidateBatch(copy);
    if (valid.ok() && !copy_valid.ok()) __builtin_trap();
  }
  // Keep the reads from being optimised away.
  volatile size_t keep = sink;
  (void)keep;
  return 0;
}
