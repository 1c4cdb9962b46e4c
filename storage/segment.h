// Segment: one piece of a partition log, in Kafka's file names and formats:
//   <base offset, 20 digits zero-padded>.log        the batches
//   <base offset, 20 digits zero-padded>.index      OffsetIndex (see offset_index.h)
//   <base offset, 20 digits zero-padded>.timeindex  TimeIndex (see time_index.h)
// (the segment's .txnindex, when it has aborted transactions, is PartitionLog's: see
// transaction_index.h).
//
// The .log file is RecordBatch v2 batches back to back and nothing else (no header, no
// padding), exactly as they go on the wire, with absolute offsets. Invariants: the first
// base offset is >= the segment's base offset, each batch starts after the previous one's
// last offset, every offset is within int32 of the base offset and the file is smaller
// than 2 GiB (the indexes hold int32 relative offsets and positions).
// Index entries are added per batch, when more than index_interval_bytes have been
// written since the start of the last indexed batch (Kafka's rule), so appending and
// rebuilding on open produce the same offset index.
// The indexes are memory-mapped files, preallocated to segment.index.bytes when created
// and trimmed to their entries when the segment rolls (OnBecomeInactive), closes, or has
// been rebuilt by Recover. A trimmed index is what a clean stop leaves, and what Load
// trusts; an untrimmed one (zeros after the entries) fails the sanity checks. In memory
// a segment keeps a few scalars and the .log descriptor (one per segment; the index
// files are reopened by path only to resize or fsync them).
// Reads return FileRanges that hold the .log File, so they stay readable after the
// segment is closed, rolled away or unlinked.
// Thread-compatible.
#ifndef RUNNEL_STORAGE_SEGMENT_H_
#define RUNNEL_STORAGE_SEGMENT_H_

#include <cstdint>
#include <filesystem>
#include <functional>
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
  // index files (trimmed), and truncates the file at the first invalid byte: a short or
  // malformed header, a batch running past the end of the file, a CRC-32C mismatch, or
  // offsets out of order. Sets *truncated_bytes to the number of bytes cut off.
  static absl::StatusOr<std::unique_ptr<Segment>> Recover(const std::filesystem::path& dir,
                                                          int64_t base_offset,
                                                          const LogConfig& config,
                                                          uint64_t* truncated_bytes);

  struct LoadInfo {
    bool recovered = false;        // the fast path failed and Recover() ran
    uint64_t truncated_bytes = 0;  // cut off by Recover()
    std::string reason;            // why the fast path failed, for the log
  };
  // Opens an existing segment without scanning its whole .log (Kafka's path for segments
  // below the recovery point): takes both index files as they are, checks them (see
  // OffsetIndex::SanityCheck, TimeIndex::SanityCheck; the time index's last offset must
  // be in the log), then reads only the batches from the last offset index entry's
  // position to the end of the .log, checking their headers and CRCs, to find size(),
  // next_offset() and (with the time index's last entry) max_timestamp(). If a check
  // fails, an index file is missing, or the tail holds an invalid batch, falls back to
  // Recover() and says so in *info (which may be null). I/O errors are returned.
  // The segment can be appended to; its indexes grow back to segment.index.bytes on their
  // next entry.
  static absl::StatusOr<std::unique_ptr<Segment>> Load(const std::filesystem::path& dir,
                                                       int64_t base_offset, const LogConfig& config,
                                                       LoadInfo* info);

  int64_t base_offset() const { return base_offset_; }
  // The offset after the last batch's last offset; base_offset() when empty.
  int64_t next_offset() const { return next_offset_; }
  uint64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // The largest batch MaxTimestamp, and the last offset of the first batch carrying it
  // (Kafka's "shallow" offset); both -1 when no batch has a timestamp >= 0.
  int64_t max_timestamp() const { return max_timestamp_; }
  int64_t offset_of_max_timestamp() const { return offset_of_max_timestamp_; }
  // segment.ms's clock (Kafka's rollingBasedTimestamp): the MaxTimestamp of the first
  // batch if it is >= 0, else the wall-clock time (ms) this object was created or opened.
  // Reads the first batch header once for a loaded segment.
  int64_t rolling_timestamp() const;
  // retention.ms's clock (Kafka's LogSegment.largestTimestamp): max_timestamp() if >= 0,
  // else the .log file's last-modified time in ms (0 if it cannot be read).
  int64_t largest_timestamp() const;
  // The wall-clock time (ms) this object was created or opened.
  int64_t created_ms() const { return created_ms_; }

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
  // 0 when the first batch does not fit. With a range, *next_offset (if given) is set to
  // the base offset of the batch right after it, or next_offset() at the segment's end
  // (for an empty range, the first batch's base offset).
  absl::StatusOr<std::optional<FileRange>> Read(int64_t offset, uint64_t max_bytes,
                                                bool min_one_batch,
                                                int64_t* next_offset = nullptr) const;

  // Calls fn with the header of every batch from the one FindBatch(offset) returns to
  // the end, in order (producer state is rebuilt from these); stops at fn's first error.
  absl::Status ForEachBatchFrom(
      int64_t offset, const std::function<absl::Status(const protocol::BatchHeader&)>& fn) const;

  // {offset, timestamp} of the first record with timestamp >= ts and offset >=
  // start_offset, found through the time index and then by decoding the records of the
  // first batch whose MaxTimestamp >= ts. LogAppendTime batches give every record the
  // batch MaxTimestamp, as Kafka does.
  absl::StatusOr<std::optional<std::pair<int64_t, int64_t>>> FindOffsetByTimestamp(
      int64_t ts, int64_t start_offset) const;
  // The offset of the first record carrying max_timestamp() (ListOffsets MAX_TIMESTAMP,
  // KIP-734), read from the batch that holds it; -1 when there is none.
  absl::StatusOr<int64_t> OffsetOfMaxTimestampRecord() const;

  // Applies to later appends; existing index files keep their length.
  void SetConfig(const LogConfig& config);
  // Called when the segment stops being the active one (roll, close): writes the final
  // time index entry, the segment's max timestamp, and trims both index files to their
  // entries, as Kafka does. Appending afterwards is allowed (the indexes grow again).
  absl::Status OnBecomeInactive();
  // Makes what was written since the last Flush durable: fsyncs the .log if it was
  // written or truncated; the indexes (msync, or fsync after a resize) only once
  // OnBecomeInactive has finished them. An active segment's indexes need no fsync: it
  // is always recovered (indexes rebuilt) after an unclean stop, so a flush on the
  // produce path costs one fsync.
  absl::Status Flush();
  // OnBecomeInactive(), Flush(), then releases the mappings and the .log descriptor.
  // Afterwards only the accessors work (reads and appends fail with
  // FailedPrecondition). FileRanges already handed out stay valid. Idempotent.
  absl::Status Close();
  bool closed() const { return log_ == nullptr; }
  // Unlinks the three files. FileRanges already handed out stay readable.
  absl::Status Delete();

  const OffsetIndex& offset_index() const { return *offset_index_; }
  const TimeIndex& time_index() const { return *time_index_; }
  std::filesystem::path log_path() const { return log_path_; }

 private:
  static constexpr uint64_t kUnknownPosition = ~uint64_t{0};

  Segment(int64_t base_offset, const LogConfig& config, std::string log_path,
          std::shared_ptr<File> log, std::unique_ptr<OffsetIndex> offset_index,
          std::unique_ptr<TimeIndex> time_index);
  static absl::StatusOr<std::unique_ptr<Segment>> Open(const std::filesystem::path& dir,
                                                       int64_t base_offset, const LogConfig& config,
                                                       bool create);
  absl::Status Rebuild(uint64_t* truncated_bytes);
  // Load's fast path; sets *corrupt (and returns OK) when Recover must take over.
  absl::Status LoadTail(std::string* corrupt);
  absl::Status CheckOpen() const;
  absl::StatusOr<protocol::BatchHeader> ReadHeader(uint64_t position) const;
  absl::StatusOr<std::string> ReadBatch(uint64_t position, size_t size) const;

  const int64_t base_offset_;
  LogConfig config_;
  std::string log_path_;       // not a std::filesystem::path, which costs ~4 times the memory
  std::shared_ptr<File> log_;  // null once closed
  std::unique_ptr<OffsetIndex> offset_index_;
  std::unique_ptr<TimeIndex> time_index_;

  uint64_t size_ = 0;
  int64_t next_offset_;
  uint64_t bytes_since_last_index_entry_ = 0;
  int64_t max_timestamp_ = -1;
  int64_t offset_of_max_timestamp_ = -1;
  // Where the batch holding the max timestamp starts; kUnknownPosition after Load took
  // the max from the time index (found through the offset index when needed).
  uint64_t position_of_max_timestamp_ = kUnknownPosition;
  int64_t created_ms_;
  // The first batch's MaxTimestamp, once known (set by the first append, or read).
  mutable std::optional<int64_t> first_batch_timestamp_;
  bool dirty_ = false;          // anything to fsync
  bool log_dirty_ = false;      // the .log itself (index-only changes do not fsync it)
  bool indexes_final_ = false;  // OnBecomeInactive ran and nothing was appended since
};

}  // namespace runnel::storage

#endif  // RUNNEL_STORAGE_SEGMENT_H_
