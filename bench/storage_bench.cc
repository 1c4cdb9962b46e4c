// Google Benchmark figures for the storage engine, through the public PartitionLog API:
//   BM_AppendPageCache       Append of 16 KB batches (16 records x 1 KB) into the page cache
//   BM_AppendFsyncPerBatch   the same with PartitionLog::Flush (fsync) after every batch
//   BM_Read/hot, BM_Read/cold  sequential Read of a whole log of --records records, each
//                            returned FileRange pread into a buffer (cold: the log's pages
//                            are dropped from the page cache first, POSIX_FADV_DONTNEED)
//   BM_OffsetLookup          Read(random offset) on that log: index lookup and header reads
//   BM_TimestampLookup       OffsetForTimestamp(random timestamp) on that log
//   BM_Recovery/hot, /cold   PartitionLog::Open of that log, which re-scans and CRC-checks
//                            every batch and rebuilds both indexes
//
// The data go to a temp directory under --storage_dir=PATH (or $RUNNEL_BENCH_DIR; default
// the build directory, i.e. a real disk, not a tmpfs /tmp) and are deleted at exit.
// Sizes: --append_mb (page cache append, default 1024), --fsync_mb (default 16), --records
// (the read/lookup/recovery log, default 1000000, about 1 GB). Each append run writes a
// fresh log; its counters total_bytes and batches let run_storage_bench.sh have dd write
// the same bytes. Google Benchmark's own flags (--benchmark_filter, --benchmark_out, ...)
// work as usual.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/record_batch.h"
#include "storage/partition_log.h"

#ifndef RUNNEL_BENCH_DEFAULT_DIR
#define RUNNEL_BENCH_DEFAULT_DIR "."
#endif

namespace runnel::storage {
namespace {

constexpr int kRecordsPerBatch = 16;
constexpr size_t kValueSize = 1000;  // with key and framing, ~1 KB a record, ~16 KB a batch
// Record timestamps are base_timestamp + offset, base_timestamp being the wall clock at
// start: timestamps far in the past would make segment.ms (7 days) roll segments.
int64_t base_timestamp = 0;

struct Options {
  std::filesystem::path dir;
  int64_t append_mb = 1024;
  int64_t fsync_mb = 16;
  int64_t records = 1000000;
};
Options options;
std::filesystem::path work_dir;  // <dir>/runnel-storage-bench.XXXXXX

[[noreturn]] void Die(std::string_view what) {
  std::fprintf(stderr, "storage_bench: %.*s\n", static_cast<int>(what.size()), what.data());
  std::exit(1);
}

void Check(const absl::Status& s, std::string_view what) {
  if (!s.ok()) Die(std::string(what) + ": " + s.ToString());
}

// One batch of 16 records whose timestamps are base_timestamp + offset, for a batch that
// will land at `base_offset`.
std::string MakeBatch(int64_t base_offset) {
  std::vector<protocol::RecordToAdd> records(kRecordsPerBatch);
  for (int i = 0; i < kRecordsPerBatch; ++i) {
    const int64_t offset = base_offset + i;
    records[i].key = "key-" + std::to_string(offset % 100000);
    records[i].value = std::string(kValueSize, static_cast<char>('a' + offset % 26));
    records[i].timestamp = base_timestamp + offset;
  }
  return protocol::BuildBatch(records);
}

std::unique_ptr<PartitionLog> OpenLog(const std::filesystem::path& dir) {
  absl::StatusOr<std::unique_ptr<PartitionLog>> log = PartitionLog::Open(dir, LogConfig{});
  if (!log.ok()) Die("open " + dir.string() + ": " + log.status().ToString());
  return *std::move(log);
}

// Writes back dirty pages and drops the directory's files from the page cache.
void DropFromPageCache(const std::filesystem::path& dir) {
  ::sync();
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    int fd = ::open(entry.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

// Appends `batches` copies of a 16-record batch to a fresh log, flushing after each one
// when `fsync_each`. One iteration writes the whole amount; Close (which fsyncs) is not
// timed.
void RunAppend(benchmark::State& state, int64_t batches, bool fsync_each, const char* name) {
  // A few distinct batches, cycled, so the bytes are not all identical.
  std::vector<std::string> templates;
  for (int i = 0; i < 8; ++i) templates.push_back(MakeBatch(i * kRecordsPerBatch));
  const uint64_t batch_bytes = templates[0].size();
  int run = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const std::filesystem::path dir = work_dir / (std::string(name) + "-" + std::to_string(run++));
    std::filesystem::remove_all(dir);
    std::unique_ptr<PartitionLog> log = OpenLog(dir);
    Check(log->Flush(), "flush");
    ::sync();
    state.ResumeTiming();
    for (int64_t i = 0; i < batches; ++i) {
      std::string& batch = templates[i % templates.size()];
      absl::StatusOr<AppendInfo> info = log->Append(batch.data(), batch.size());
      if (!info.ok()) Die("append: " + info.status().ToString());
      if (fsync_each) Check(log->Flush(), "flush");
    }
    state.PauseTiming();
    if (log->log_end_offset() != batches * kRecordsPerBatch) Die("wrong log end offset");
    Check(log->Close(), "close");
    log.reset();
    std::filesystem::remove_all(dir);
    state.ResumeTiming();
  }
  state.SetBytesProcessed(state.iterations() * batches * batch_bytes);
  state.SetItemsProcessed(state.iterations() * batches * kRecordsPerBatch);
  state.counters["total_bytes"] = static_cast<double>(batches * batch_bytes);
  state.counters["batches"] = static_cast<double>(batches);
  state.counters["batch_bytes"] = static_cast<double>(batch_bytes);
}

int64_t BatchesFor(int64_t mb) {
  const int64_t batch_bytes = static_cast<int64_t>(MakeBatch(0).size());
  return std::max<int64_t>(1, (mb << 20) / batch_bytes);
}

void BM_AppendPageCache(benchmark::State& state) {
  RunAppend(state, BatchesFor(options.append_mb), /*fsync_each=*/false, "append");
}

void BM_AppendFsyncPerBatch(benchmark::State& state) {
  RunAppend(state, BatchesFor(options.fsync_mb), /*fsync_each=*/true, "append-fsync");
}

// The shared log of options.records records (rounded up to whole batches), built once,
// closed (so fsynced) and reopened by each benchmark that needs it.
std::filesystem::path SharedLog() {
  static const std::filesystem::path dir = [] {
    std::filesystem::path d = work_dir / "shared-0";
    std::unique_ptr<PartitionLog> log = OpenLog(d);
    for (int64_t base = 0; base < options.records; base += kRecordsPerBatch) {
      std::string batch = MakeBatch(base);
      absl::StatusOr<AppendInfo> info = log->Append(batch.data(), batch.size());
      if (!info.ok()) Die("append: " + info.status().ToString());
      if (info->base_offset != base) Die("unexpected base offset");
    }
    Check(log->Close(), "close");
    return d;
  }();
  return dir;
}

int64_t SharedRecords() {
  return (options.records + kRecordsPerBatch - 1) / kRecordsPerBatch * kRecordsPerBatch;
}

// Reads [0, end) sequentially, 1 MiB per Read as a consumer's fetch would, and returns
// the bytes read.
uint64_t ReadAll(PartitionLog* log, std::string* buffer) {
  uint64_t total = 0;
  int64_t offset = 0;
  const int64_t end = log->log_end_offset();
  while (offset < end) {
    absl::StatusOr<ReadInfo> info = log->Read(offset, 1 << 20, /*min_one_batch=*/true);
    if (!info.ok()) Die("read: " + info.status().ToString());
    if (info->ranges.empty()) Die("empty read before the log end");
    for (const FileRange& range : info->ranges) {
      buffer->resize(range.length);
      size_t done = 0;
      while (done < range.length) {
        ssize_t n = ::pread(range.fd, buffer->data() + done, range.length - done,
                            static_cast<off_t>(range.position + done));
        if (n <= 0) Die("pread failed");
        done += static_cast<size_t>(n);
      }
      // The next offset follows the range's last batch.
      std::string_view rest(*buffer);
      protocol::BatchIterator it(rest);
      std::string_view batch;
      protocol::BatchHeader header;
      int64_t next = offset;
      while (it.Next(&batch, &header)) next = header.last_offset() + 1;
      if (next <= offset) Die("read made no progress");
      offset = next;
      total += range.length;
    }
  }
  return total;
}

void RunRead(benchmark::State& state, bool cold) {
  const std::filesystem::path dir = SharedLog();
  std::unique_ptr<PartitionLog> log = OpenLog(dir);
  std::string buffer;
  uint64_t bytes = 0;
  ReadAll(log.get(), &buffer);  // warm up (and, for cold, get the indexes written)
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      DropFromPageCache(dir);
      state.ResumeTiming();
    }
    bytes += ReadAll(log.get(), &buffer);
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.SetItemsProcessed(state.iterations() * SharedRecords());
  Check(log->Close(), "close");
}
void BM_ReadHot(benchmark::State& state) { RunRead(state, false); }
void BM_ReadCold(benchmark::State& state) { RunRead(state, true); }

void BM_OffsetLookup(benchmark::State& state) {
  std::unique_ptr<PartitionLog> log = OpenLog(SharedLog());
  const int64_t end = log->log_end_offset();
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> pick(0, end - 1);
  // Checked once, untimed: the returned range starts at the batch holding the offset.
  for (int i = 0; i < 1000; ++i) {
    const int64_t offset = pick(rng);
    absl::StatusOr<ReadInfo> info = log->Read(offset, 0, /*min_one_batch=*/true);
    if (!info.ok() || info->ranges.size() != 1) Die("lookup failed");
    char header[protocol::kBatchHeaderSize];
    if (::pread(info->ranges[0].fd, header, sizeof(header),
                static_cast<off_t>(info->ranges[0].position)) != sizeof(header)) {
      Die("pread failed");
    }
    absl::StatusOr<protocol::BatchHeader> h =
        protocol::ParseBatchHeader(std::string_view(header, sizeof(header)));
    if (!h.ok() || h->base_offset > offset || h->last_offset() < offset) {
      Die("lookup returned the wrong batch for offset " + std::to_string(offset));
    }
  }
  for (auto _ : state) {
    // max_bytes 0 with min_one_batch: exactly the batch holding the offset, so the cost is
    // the index lookup and the header reads that locate it.
    absl::StatusOr<ReadInfo> info = log->Read(pick(rng), 0, /*min_one_batch=*/true);
    benchmark::DoNotOptimize(info);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["records"] = static_cast<double>(end);
  Check(log->Close(), "close");
}

void BM_TimestampLookup(benchmark::State& state) {
  std::unique_ptr<PartitionLog> log = OpenLog(SharedLog());
  const int64_t end = log->log_end_offset();
  std::mt19937_64 rng(43);
  std::uniform_int_distribution<int64_t> pick(0, end - 1);
  for (int i = 0; i < 1000; ++i) {
    const int64_t offset = pick(rng);
    auto found = log->OffsetForTimestamp(base_timestamp + offset);
    if (!found.ok() || !found->has_value() || (*found)->first != offset ||
        (*found)->second != base_timestamp + offset) {
      Die("timestamp lookup returned the wrong record for offset " + std::to_string(offset));
    }
  }
  for (auto _ : state) {
    auto found = log->OffsetForTimestamp(base_timestamp + pick(rng));
    benchmark::DoNotOptimize(found);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["records"] = static_cast<double>(end);
  Check(log->Close(), "close");
}

void RunRecovery(benchmark::State& state, bool cold) {
  const std::filesystem::path dir = SharedLog();
  uint64_t bytes = 0;
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      DropFromPageCache(dir);
      state.ResumeTiming();
    }
    std::unique_ptr<PartitionLog> log = OpenLog(dir);
    state.PauseTiming();
    if (log->log_end_offset() != SharedRecords()) Die("recovery lost records");
    bytes += log->size_bytes();
    Check(log->Close(), "close");  // fsyncs the rebuilt indexes, untimed
    log.reset();
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.SetItemsProcessed(state.iterations() * SharedRecords());
  if (state.iterations() > 0) {
    const double gb = static_cast<double>(bytes) / state.iterations() / 1e9;
    state.counters["log_gb"] = gb;
  }
}
void BM_RecoveryHot(benchmark::State& state) { RunRecovery(state, false); }
void BM_RecoveryCold(benchmark::State& state) { RunRecovery(state, true); }

bool ParseFlag(std::string_view arg, std::string_view name, int64_t* value) {
  std::string prefix = "--" + std::string(name) + "=";
  if (arg.substr(0, prefix.size()) != prefix) return false;
  std::string_view digits = arg.substr(prefix.size());
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), *value);
  if (ec != std::errc() || end != digits.data() + digits.size() || *value <= 0) {
    Die("bad value in " + std::string(arg));
  }
  return true;
}

}  // namespace
}  // namespace runnel::storage

int main(int argc, char** argv) {
  using namespace runnel::storage;  // NOLINT(build/namespaces)
  benchmark::Initialize(&argc, argv);
  base_timestamp = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const char* env = std::getenv("RUNNEL_BENCH_DIR");
  options.dir = env != nullptr && *env != '\0' ? env : RUNNEL_BENCH_DEFAULT_DIR;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.substr(0, 14) == "--storage_dir=") {
      options.dir = std::string(arg.substr(14));
    } else if (!ParseFlag(arg, "append_mb", &options.append_mb) &&
               !ParseFlag(arg, "fsync_mb", &options.fsync_mb) &&
               !ParseFlag(arg, "records", &options.records)) {
      Die("unknown flag " + std::string(arg) +
          " (own flags: --storage_dir=PATH --append_mb=N --fsync_mb=N --records=N)");
    }
  }
  std::string tmpl = (options.dir / "runnel-storage-bench.XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) Die("mkdtemp in " + options.dir.string() + " failed");
  work_dir = tmpl;
  std::fprintf(stderr, "storage_bench: data in %s\n", work_dir.c_str());

  benchmark::RegisterBenchmark("BM_AppendPageCache", BM_AppendPageCache)
      ->Iterations(1)
      ->Repetitions(3)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_AppendFsyncPerBatch", BM_AppendFsyncPerBatch)
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_Read/hot", BM_ReadHot)
      ->Iterations(3)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_Read/cold", BM_ReadCold)
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_OffsetLookup", BM_OffsetLookup)->UseRealTime();
  benchmark::RegisterBenchmark("BM_TimestampLookup", BM_TimestampLookup)->UseRealTime();
  benchmark::RegisterBenchmark("BM_Recovery/hot", BM_RecoveryHot)
      ->Iterations(3)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_Recovery/cold", BM_RecoveryCold)
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::error_code ignored;
  std::filesystem::remove_all(work_dir, ignored);
  return 0;
}
