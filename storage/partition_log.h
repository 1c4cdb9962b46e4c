// PartitionLog: the log of one topic partition, a directory of Segments in Kafka's layout
//   <log.dir>/<topic>-<partition>/00000000000000000000.log, .index, .timeindex, .txnindex,
//   <offset>.snapshot, ...
// (partition.metadata, written by LogManager, sits beside them).
//
// Invariants: segments are ordered by base offset and their offset ranges do not
// overlap; only the last one (the active segment) is appended to, and it is never
// deleted; log_start_offset() is at least the first segment's base offset (DeleteRecords
// may raise it into a segment) and at most log_end_offset(), the active segment's next
// offset; recovery_point() <= log_end_offset() is the offset below which every byte was
// fsynced.
// Append rewrites each batch's BaseOffset in place (the CRC does not cover it) and writes
// the bytes unchanged otherwise. A new segment, based at the log end offset, is rolled
// when the active one is non-empty and the append would take it past segment.bytes
// (Kafka's rule), when an index is full, or when offsets would overflow its indexes.
// Open recovers (see Segment::Recover) the segments from the one holding the recovery
// point on, or none after a clean shutdown; a segment truncated by recovery also drops
// all the segments after it, since their offsets would no longer follow on.
// Rolls also happen by age (segment.ms, on append, as Kafka). Retention deletes whole
// inactive segments, oldest first (DeleteExpiredSegments). Flushes happen on Flush(),
// after flush.messages appended messages, or from MaybeFlush once flush.ms has passed.
// Reads return file ranges from a single segment, as Kafka's do; a consumer asks again
// from where the range ended.
// Producer state (producer_state.h, Kafka's ProducerStateManager): Append checks the
// batches of idempotent producers before writing anything and answers a duplicate of one
// of a producer's last 5 batches with that batch's offsets, writing nothing. Snapshots
// ("<offset>.snapshot") are taken when a segment rolls (not fsynced until the next
// Flush, as Kafka since 3.6) and at Close; a deleted segment takes the snapshot at its
// base offset with it, and Flush keeps only the snapshots from the segment before the
// active one (Kafka's rule with the recovery point at the log end). Open loads the latest
// snapshot at or below the recovered log end (deleting those above it, and those at or
// below the log start) and replays the batches after it; after a clean stop that is
// none. A clean stop that left no snapshot (a log written before snapshots existed) has
// no producer state: empty snapshots at the last two segment bases and the log end then
// spare a later recovery the full scan, as Kafka does.
// Transactions (the storage half of KIP-98, as Kafka's UnifiedLog and LogSegment): the
// producer state tracks the open transactions; end-transaction markers (control batches,
// protocol/control_record.h) come from the transaction coordinator (AppendTxnMarker, or
// Append with origin kCoordinator) or a replay, never from a client (InvalidArgument:
// INVALID_RECORD). The last stable offset is the first offset of the oldest open
// transaction (not below the log start), else the log end (the high watermark of a single
// replica). An ABORT marker that closes a transaction adds an AbortedTxn (its producer,
// first offset, the marker's offset and the LSO right after it) to the transaction index
// of the segment the marker went to, "<base>.txnindex" (transaction_index.h), created by
// its first entry; every entry is also in memory, so AbortedTransactions reads no file.
// Invariant: the indexes hold their entries in marker order, none at or past the log end;
// a segment never compacted holds one for each of its ABORT markers that closed an open
// transaction, a compacted one those the cleaner retained (ReplaceSegments): the
// transactions whose markers it kept because batches of theirs were still there (Kafka's
// CleanedTransactionMetadata; an ABORT marker it keeps without an entry has no data of its
// transaction left, so read_committed needs none). Open keeps them in step with the
// recovered log: entries at or past each segment's end are truncated away, the markers
// replayed after the producer snapshot add the entries missing (those after the last one
// indexed), and a segment dropped or deleted (recovery, retention, DeleteRecords) takes
// its .txnindex with it. ReplaceSegments writes the cleaned segment's index beside it as
// "<base>.txnindex.swap" before the swap and renames it in the swap (Open finishes that).
// Thread-compatible: the broker's single event loop owns it.
#ifndef RUNNEL_STORAGE_PARTITION_LOG_H_
#define RUNNEL_STORAGE_PARTITION_LOG_H_

#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "protocol/control_record.h"
#include "storage/compactor.h"
#include "storage/file.h"
#include "storage/log_config.h"
#include "storage/producer_state.h"
#include "storage/segment.h"
#include "storage/transaction_index.h"

namespace runnel::storage {

struct AppendInfo {
  int64_t base_offset;
  int64_t last_offset;
  // Set when the batch duplicates one of its producer's last 5: nothing was written, and
  // base_offset/last_offset are the original batch's.
  std::optional<ProducerBatch> duplicate;
};

struct ReadInfo {
  std::vector<FileRange> ranges;
  uint64_t bytes = 0;
  // Where the next read would start: the base offset of the batch after those returned
  // (one past the last one returned, unless compaction removed the offsets between), or
  // the offset read from when nothing was returned. Bounds AbortedTransactions.
  int64_t next_offset = 0;
};

// What the log manager's checkpoints say about a log being opened.
struct LogCheckpoint {
  int64_t recovery_point = 0;    // recovery-point-offset-checkpoint
  int64_t log_start_offset = 0;  // log-start-offset-checkpoint
  bool clean_shutdown = false;   // the log dir's clean-shutdown marker was present
};

class PartitionLog {
 public:
  // Opens the log in `dir`, creating the directory and an empty segment at offset 0 if
  // there is none. Removes index files that have no .log.
  static absl::StatusOr<std::unique_ptr<PartitionLog>> Open(std::filesystem::path dir,
                                                            LogConfig config,
                                                            LogCheckpoint checkpoint = {});
  ~PartitionLog();
  PartitionLog(const PartitionLog&) = delete;
  PartitionLog& operator=(const PartitionLog&) = delete;

  // `batches` holds one or more complete RecordBatch v2 batches, already validated by
  // the caller; their BaseOffsets are rewritten in place to consecutive offsets starting
  // at log_end_offset(). InvalidArgument if the bytes do not split into whole batches,
  // ResourceExhausted if they exceed segment.bytes (Kafka's RECORD_LIST_TOO_LARGE),
  // Internal on I/O errors (after which the log may hold the batches: a failed index write
  // does not undo the log write). The batches of one call always land in one segment.
  // Batches with a producer id are checked first as `origin` requires (producer_state.h):
  // a refusal carries a ProducerError (ProducerErrorOf) and writes nothing. Control batches
  // are refused (InvalidArgument) from kClient; from kCoordinator each must be an
  // end-transaction marker with a producer id, and goes through the marker checks (a
  // replay skips control batches that are not markers).
  absl::StatusOr<AppendInfo> Append(char* batches, size_t size,
                                    AppendOrigin origin = AppendOrigin::kClient);
  // Builds the marker batch (BuildEndTxnMarkerBatch) and appends it as the coordinator;
  // errors as Append's (INVALID_PRODUCER_EPOCH, TRANSACTION_COORDINATOR_FENCED as
  // ProducerErrors).
  absl::StatusOr<AppendInfo> AppendTxnMarker(int64_t producer_id, int16_t producer_epoch,
                                             const protocol::EndTxnMarker& marker,
                                             int64_t timestamp_ms);

  // Whole batches from the one containing `offset`, at most max_bytes, none at or past
  // log_end_offset(), none whose base offset is >= max_offset (read_committed passes the
  // last stable offset), all from one segment. With min_one_batch the first batch comes
  // whole even if larger than max_bytes (KIP-74); without it such a read is empty; the
  // max_offset bound holds even then. Empty at log_end_offset(). OutOfRange when offset <
  // log_start_offset() or offset > log_end_offset().
  absl::StatusOr<ReadInfo> Read(int64_t offset, uint64_t max_bytes, bool min_one_batch,
                                int64_t max_offset = std::numeric_limits<int64_t>::max());

  // The first offset of the oldest open transaction (at least log_start_offset()), else
  // log_end_offset().
  int64_t last_stable_offset() const;
  // Kafka's collectAbortedTransactions: the aborted transactions with last offset >=
  // start_offset and first offset < upper_bound_offset, in marker order. From memory.
  std::vector<AbortedTxn> AbortedTransactions(int64_t start_offset,
                                              int64_t upper_bound_offset) const;

  int64_t log_start_offset() const { return log_start_offset_; }
  int64_t log_end_offset() const;  // next offset to assign
  int64_t recovery_point() const { return recovery_point_; }
  uint64_t size_bytes() const;
  // The first segment's base offset: a log start offset above it must be checkpointed.
  int64_t first_segment_base() const;

  // DeleteRecords: raises the log start offset to `offset` (no-op if already there) and
  // deletes the segments wholly below it; returns the new log start offset. OutOfRange
  // beyond log_end_offset().
  absl::StatusOr<int64_t> DeleteRecordsBefore(int64_t offset);
  // Deletes the inactive segments, oldest first, that retention.ms (by their largest
  // timestamp) or retention.bytes (while the rest stays that big) let go under the delete
  // policy, and those wholly below the log start offset under any policy. Returns how
  // many were deleted.
  absl::StatusOr<size_t> DeleteExpiredSegments(int64_t now_ms);
  // Forgets the producers idle for producer.id.expiration.ms (the periodic check of
  // producer.id.expiration.check.interval.ms); returns how many.
  size_t RemoveExpiredProducers(int64_t now_ms);
  const ProducerStateManager& producer_state() const { return producer_state_; }
  // Flushes if flush.ms has passed since the last flush and something is unflushed.
  absl::Status MaybeFlush(int64_t now_ms);
  bool has_unflushed() const { return unflushed_messages_ > 0 || dir_dirty_; }

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
  const LogConfig& config() const { return config_; }

  // For the log cleaner: the inactive segments, oldest first.
  std::vector<CompactionSource> InactiveSegments() const;
  // Replaces the `count` consecutive segments from the one based at `first_base` by the
  // cleaned .log file `cleaned` (in dir(), "<first_base>.log.cleaned", fsynced), with
  // Kafka's swap discipline: rename it to ".log.swap", delete the old segments, rename it
  // to ".log", then index it. `aborted_transactions` becomes the cleaned segment's whole
  // transaction index (the compactor's CleanResult::retained_aborted_transactions; the old
  // segments' entries go); InvalidArgument, changing nothing, unless their last offsets
  // increase and lie in [first_base, base of the segment after the replaced ones). Open
  // finishes a swap a crash interrupted and removes leftover ".cleaned" files, so a crash
  // at any point loses nothing.
  absl::Status ReplaceSegments(int64_t first_base, size_t count,
                               const std::filesystem::path& cleaned,
                               const std::vector<AbortedTxn>& aborted_transactions);
  // fsyncs every segment written since the last Flush, the producer snapshots written
  // since, and the directory after a roll; then recovery_point() is log_end_offset().
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
      : dir_(std::move(dir)),
        config_(config),
        producer_state_(&dir_, config.producer_id_expiration_ms) {}
  absl::Status Load(const LogCheckpoint& checkpoint);
  // Loads or rebuilds the producer state once the segments are open (see above).
  absl::Status LoadProducerState(bool clean_shutdown);
  absl::Status FinishInterruptedCleaning();
  absl::Status Roll();
  // segment.ms, as Kafka's LogSegment.shouldRoll: the incoming batches' max timestamp
  // minus the active segment's first batch timestamp, or, without timestamps, the time
  // since the segment was created.
  bool ShouldRollByAge(int64_t incoming_timestamp, int64_t now_ms) const;
  // Deletes the first `count` segments (never the active one).
  absl::Status DeleteOldestSegments(size_t count);
  // Adds an entry to the transaction index of the segment based at `segment_base`.
  absl::Status AppendAbortedTxn(int64_t segment_base, const AbortedTxn& txn);
  // Deletes the transaction index of the segment based at `segment_base`, if any.
  absl::Status DeleteTxnIndex(int64_t segment_base);
  // The last offset of the last indexed aborted transaction; -1 if none.
  int64_t LastIndexedAbortOffset() const;
  absl::Status CheckOpen() const;
  Segment& active() { return *segments_.back(); }

  std::filesystem::path dir_;
  LogConfig config_;
  std::vector<std::unique_ptr<Segment>> segments_;
  // Segment base offset -> its transaction index, for the segments that have one.
  std::map<int64_t, std::unique_ptr<TransactionIndex>> txn_indexes_;
  ProducerStateManager producer_state_;
  int64_t log_start_offset_ = 0;
  int64_t recovery_point_ = 0;
  int64_t closed_end_offset_ = 0;
  int64_t closed_first_base_ = 0;
  // The active segment's first batch MaxTimestamp (-1: empty, or no timestamps) and when
  // the segment was created or opened.
  int64_t active_first_timestamp_ = -1;
  int64_t active_created_ms_ = 0;
  int64_t unflushed_messages_ = 0;
  int64_t last_flush_ms_ = 0;
  bool closed_ = false;
  bool dir_dirty_ = false;
  // Created by Open and not yet synced (neither dir_ nor its entry in the parent).
  bool created_unsynced_ = false;
  mutable std::optional<std::pair<int64_t, int64_t>> max_timestamp_cache_;
};

}  // namespace runnel::storage

#endif  // RUNNEL_STORAGE_PARTITION_LOG_H_
