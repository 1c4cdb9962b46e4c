// PartitionLog: the log of one topic partition, a directory of Segments in Kafka's layout
//   <log.dir>/<topic>-<partition>/00000000000000000000.log, .index, .timeindex, ...
// (partition.metadata, written by LogManager, sits beside them).
//
// Invariants: segments are ordered by base offset and their offset ranges do not
// overlap; only the last one (the active segment) is appended to; log_start_offset() is
// the first segment's base offset and log_end_offset() the active segment's next offset.
// Append rewrites each batch's BaseOffset in place (the CRC does not cover it) and writes
// the bytes unchanged otherwise. A new segment, based at the log end offset, is rolled
// when the active one is non-empty and the append would take it past segment.bytes
// (Kafka's rule), when an index is full, or when offsets would overflow its indexes.
// Open recovers every segment (see Segment::Recover); a segment truncated by recovery
// also drops all the segments after it, since their offsets would no longer follow on.
// Reads return file ranges from a single segment, as Kafka's do; a consumer asks again
// from where the range ended. Nothing is fsynced until Flush() or Close().
// Thread-compatible: the broker's single event loop owns it.
#ifndef RUNNEL_STORAGE_PARTITION_LOG_H_
#define RUNNEL_STORAGE_PARTITION_LOG_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/file.h"
#include "storage/log_config.h"
#include "storage/segment.h"

namespace runnel::storage {

struct AppendInfo {
  int64_t base_offset;
  int64_t last_offset;
};

struct ReadInfo {
  std::vector<FileRange> ranges;
  uint64_t bytes = 0;
};

class PartitionLog {
 public:
  // Opens the log in `dir`, creating the directory and an empty segment at offset 0 if
  // there is none. Removes index files that have no .log.
  static absl::StatusOr<std::unique_ptr<PartitionLog>> Open(std::filesystem::path dir,
                                                            LogConfig config);
  ~PartitionLog();
  PartitionLog(const PartitionLog&) = delete;
  PartitionLog& operator=(const PartitionLog&) = delete;

  // `batches` holds one or more complete RecordBatch v2 batches, already validated by
  // the caller; their BaseOffsets are rewritten in place to consecutive offsets starting
  // at log_end_offset(). InvalidArgument if the bytes do not split into whole batches,
  // ResourceExhausted if they exceed segment.bytes (Kafka's RECORD_LIST_TOO_LARGE),
  // Internal on I/O errors (after which the log may hold the batches: a failed index write
  // does not undo the log write). The batches of one call always land in one segment.
  absl::StatusOr<AppendInfo> Append(char* batches, size_t size);

  // Whole batches from the one containing `offset`, at most max_bytes, none at or past
  // log_end_offset(), all from one segment. With min_one_batch the first batch comes
  // whole even if larger than max_bytes (KIP-74); without it such a read is empty.
  // Empty at log_end_offset(). OutOfRange when offset < log_start_offset() or
  // offset > log_end_offset().
  absl::StatusOr<ReadInfo> Read(int64_t offset, uint64_t max_bytes, bool min_one_batch);

  int64_t log_start_offset() const { return log_start_offset_; }
  int64_t log_end_offset() const;  // next offset to assign
  uint64_t size_bytes() const;

  // ListOffsets by timestamp: {offset, timestamp} of the first record whose timestamp is
  // >= ts (records are decoded here, so the offset is a record's, not a batch's);
  // nullopt if there is none.
  absl::StatusOr<std::optional<std::pair<int64_t, int64_t>>> OffsetForTimestamp(int64_t ts);
  // ListOffsets MAX_TIMESTAMP: {max timestamp, offset of the first record carrying it}
  // over the log; {-1,-1} when empty or without timestamps. The record offset is found by
  // reading one batch and cached until an append changes it (so this const method is not
  // safe to call concurrently); on a read error it falls back to the batch's last offset.
  std::pair<int64_t, int64_t> MaxTimestampAndOffset() const;

  // Applies to later appends and rolls.
  void SetConfig(LogConfig config);
  // fsyncs every segment written since the last Flush, and the directory after a roll.
  absl::Status Flush();
  // Flushes and releases the files; later calls fail with FailedPrecondition (the
  // offsets stay readable). FileRanges already handed out stay valid.
  absl::Status Close();

  const std::filesystem::path& dir() const { return dir_; }
  // For tests and tools: the segments, oldest first.
  size_t segment_count() const { return segments_.size(); }
  const Segment& segment(size_t i) const { return *segments_[i]; }

 private:
  PartitionLog(std::filesystem::path dir, LogConfig config)
      : dir_(std::move(dir)), config_(config) {}
  absl::Status Load();
  absl::Status Roll();
  absl::Status CheckOpen() const;
  Segment& active() { return *segments_.back(); }

  std::filesystem::path dir_;
  LogConfig config_;
  std::vector<std::unique_ptr<Segment>> segments_;
  int64_t log_start_offset_ = 0;
  int64_t closed_end_offset_ = 0;
  bool closed_ = false;
  bool dir_dirty_ = false;
  mutable std::optional<std::pair<int64_t, int64_t>> max_timestamp_cache_;
};

}  // namespace runnel::storage

#endif  // RUNNEL_STORAGE_PARTITION_LOG_H_
