// Segment: one piece of a partition log, in Kafka's file names and formats:
//   <base offset, 20 digits zero-padded>.log        the batches
//   <base offset, 20 digits zero-padded>.index      OffsetIndex (see offset_index.h)
//   <base offset, 20 digits zero-padded>.timeindex  TimeIndex (see time_index.h)
//
// The .log file is RecordBatch v2 batches back to back and nothing else (no header, no
// padding), exactly as they go on the wire, with absolute offsets. Invariants: the first
// base offset is >= the segment's base offset, each batch starts after the previous one's
// last offset, every offset is within int32 of the base offset and the file is smaller
// than 2 GiB (the indexes hold int32 relative offsets and positions).
// Index entries are added per batch, when more than index_interval_bytes have been
// written since the start of the last indexed batch (Kafka's rule), so appending and
// rebuilding on open produce the same offset index.
// Reads return FileRanges that hold the .log File, so they stay readable after the
// segment is closed, rolled away or unlinked.
// Thread-compatible.
#ifndef RUNNEL_STORAGE_SEGMENT_H_
#define RUNNEL_STORAGE_SEGMENT_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "protocol/record_batch.h"
#include "storage/file.h"
#include "storage/log_config.h"
#include "storage/offset_index.h"
#include "storage/time_index.h"

namespace runnel::storage {

class Segment {
 public:
  // "00000000000000000042.log" for (42, ".log").
  static std::string FileName(int64_t base_offset, std::string_view suffix);
  // The base offset named by "<20 digits><suffix>", or nullopt.
  static std::optional<int64_t> ParseFileName(std::string_view name, std::string_view suffix);

  // Creates an empty segment, replacing any files of that name.
  static absl::StatusOr<std::unique_ptr<Segment>> Create(const std::filesystem::path& dir,
                                                         int64_t base_offset,
                                                         const LogConfig& config);
  // Opens an existing .log, scans every batch to rebuild the in-memory state and both
  // index files, and truncates the file at the first invalid byte: a short or malformed
  // header, a batch running past the end of the file, a CRC-32C mismatch, or offsets out
  // of order. Sets *truncated_bytes to the number of bytes cut off.
  static absl::StatusOr<std::unique_ptr<Segment>> Recover(const std::filesystem::path& dir,
                                                          int64_t base_offset,
                                                          const LogConfig& config,
                                                          uint64_t* truncated_bytes);

  int64_t base_offset() const { return base_offset_; }
  // The offset after the last batch's last offset; base_offset() when empty.
  int64_t next_offset() const { return next_offset_; }
  uint64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // The largest batch MaxTimestamp, and the last offset of the first batch carrying it
  // (Kafka's "shallow" offset); both -1 when no batch has a timestamp >= 0.
  int64_t max_timestamp() const { return max_timestamp_; }
  int64_t offset_of_max_timestamp() const { return offset_of_max_timestamp_; }

  // Whether an append of `bytes` whose last offset is `last_offset` must go to a new
  // segment: this one is non-empty and would exceed segment.bytes, an index is full, or
  // the offset does not fit the indexes.
  bool ShouldRoll(uint64_t bytes, int64_t last_offset) const;

  // Appends `size` bytes of whole batches; `batches` are their parsed headers, in order,
  // with their final (already assigned) base offsets.
  absl::Status Append(const char* data, size_t size,
                      const std::vector<protocol::BatchHeader>& batches);

  struct BatchLocation {
    uint64_t position = 0;
    protocol::BatchHeader header;
  };
  // The first batch whose last offset is >= `offset`: the index gives the greatest
  // entry <= offset, then headers are read (pread, 61 bytes) from there. nullopt if none.
  absl::StatusOr<std::optional<BatchLocation>> FindBatch(int64_t offset) const;

  // Whole batches from the one FindBatch(offset) returns, at most max_bytes together,
  // except that with min_one_batch the first batch is returned whole even if larger
  // (KIP-74). nullopt when no batch here holds an offset >= `offset`; a range of length
  // 0 when the first batch does not fit.
  absl::StatusOr<std::optional<FileRange>> Read(int64_t offset, uint64_t max_bytes,
                                                bool min_one_batch) const;

  // {offset, timestamp} of the first record with timestamp >= ts and offset >=
  // start_offset, found through the time index and then by decoding the records of the
  // first batch whose MaxTimestamp >= ts. LogAppendTime batches give every record the
  // batch MaxTimestamp, as Kafka does.
  absl::StatusOr<std::optional<std::pair<int64_t, int64_t>>> FindOffsetByTimestamp(
      int64_t ts, int64_t start_offset) const;
  // The offset of the first record carrying max_timestamp() (ListOffsets MAX_TIMESTAMP,
  // KIP-734), read from the batch that holds it; -1 when there is none.
  absl::StatusOr<int64_t> OffsetOfMaxTimestampRecord() const;

  void SetConfig(const LogConfig& config);
  // Called when the segment stops being the active one (roll, close): writes the final
  // time index entry, the segment's max timestamp, as Kafka does.
  absl::Status OnBecomeInactive();
  // fsyncs the .log and both indexes if anything was written since the last Flush.
  absl::Status Flush();
  // Unlinks the three files. FileRanges already handed out stay readable.
  absl::Status Delete();

  const OffsetIndex& offset_index() const { return *offset_index_; }
  const TimeIndex& time_index() const { return *time_index_; }
  const std::filesystem::path& log_path() const { return log_->path(); }

 private:
  Segment(int64_t base_offset, const LogConfig& config, std::shared_ptr<File> log,
          std::unique_ptr<OffsetIndex> offset_index, std::unique_ptr<TimeIndex> time_index);
  static absl::StatusOr<std::unique_ptr<Segment>> Open(const std::filesystem::path& dir,
                                                       int64_t base_offset, const LogConfig& config,
                                                       bool create);
  absl::Status Rebuild(uint64_t* truncated_bytes);
  absl::StatusOr<protocol::BatchHeader> ReadHeader(uint64_t position) const;
  absl::StatusOr<std::string> ReadBatch(uint64_t position, size_t size) const;

  const int64_t base_offset_;
  LogConfig config_;
  std::shared_ptr<File> log_;
  std::unique_ptr<OffsetIndex> offset_index_;
  std::unique_ptr<TimeIndex> time_index_;

  uint64_t size_ = 0;
  int64_t next_offset_;
  uint64_t bytes_since_last_index_entry_ = 0;
  int64_t max_timestamp_ = -1;
  int64_t offset_of_max_timestamp_ = -1;
  uint64_t position_of_max_timestamp_ = 0;
  bool dirty_ = false;
};

}  // namespace runnel::storage

#endif  // RUNNEL_STORAGE_SEGMENT_H_
