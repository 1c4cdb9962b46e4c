// The record-level core of Kafka's log cleaner (cleanup.policy=compact), independent of
// PartitionLog: an OffsetMap of key -> latest offset built from the dirty part of a log, and
// Clean(), which writes the retained contents of a run of immutable segments to a new file.
// Scheduling (dirty ratio, min.compaction.lag.ms, grouping of segments), the .cleaned/.swap
// file discipline, indexes and the cleaner checkpoint belong to the caller.
//
// A round, as Kafka's Cleaner.doClean runs it (log_cleaner.cc):
//   // first_uncleanable_offset is never past the log's last stable offset: every
//   // transaction below it is decided, so the transaction indexes know the aborted ones.
//   OffsetMap map(dedupe_buffer_bytes);
//   BuildOffsetMap(dirty segments, first_dirty_offset, first_uncleanable_offset,
//                  aborted transactions of [first_dirty_offset, first_uncleanable_offset),
//                  &map) -> end;       // end.end_offset: first offset not covered
//   CleanerTransactions txns;          // one per round, shared by its groups
//   txns.AddAbortedTransactions(aborted transactions of the segments to clean);
//   for each group of consecutive segments with base offset < end.end_offset (from the log
//       start, clean ones included), oldest first:
//     Clean(group, map, {now_ms, delete_retention_ms, first_uncleanable_offset,
//           last records of the active producers}, &txns, "<group base>.log.cleaned")
//         -> result;
//     Segment::Recover the .cleaned file (it rebuilds the indexes), swap it in with
//     result.retained_aborted_transactions as its transaction index.
//   checkpoint end.end_offset as the new first dirty offset.
// "Aborted transactions of a range" are the index entries with last offset >= its start
// and first offset < its end (PartitionLog::AbortedTransactions, Kafka's
// collectAbortedTransactions).
//
// Record rules (Kafka's Cleaner.shouldRetainRecord, MemoryRecords.filterTo):
//  - a record with offset > map.latest_offset() (not covered by the map) is kept;
//  - a keyed record is kept iff offset >= map.Get(key) (the latest for its key, or its key is
//    absent), and either it has a value or it is a tombstone whose batch carries no delete
//    horizon yet or now_ms < the horizon;
//  - a covered record with a null key is removed (Kafka counts it as invalid: compacted
//    topics refuse such records on produce);
//  - records of a control batch are kept; records of aborted transactions are removed.
// Batch rules:
//  - a batch whose records are all kept and that needs no new delete horizon is copied byte
//    for byte;
//  - otherwise it is rebuilt with the same base offset, last offset delta, leader epoch,
//    codec, timestamp type, transactional/control flags, producer id/epoch and base
//    sequence; MaxTimestamp becomes the largest kept timestamp (CreateTime) or stays
//    (LogAppendTime); BaseTimestamp becomes the first kept record's timestamp, or the delete
//    horizon when one is set (attributes bit 0x40); record offset deltas stay relative to the
//    base offset and timestamp deltas are recomputed from the new BaseTimestamp, so every
//    record keeps its absolute offset and timestamp;
//  - the delete horizon (now_ms + delete_retention_ms) is set the first time a kept batch
//    holds a tombstone, or is a transaction marker that may go; a batch that already has one
//    keeps it;
//  - a batch left with no records is dropped, except (kept as a bare 61-byte header, codec
//    none, count 0) the batch holding the last data offset of an active producer, the marker
//    carrying an active producer's last epoch, and the batch ending at upper_bound_offset;
//  - a COMMIT marker goes once no batch of its transaction was seen, an ABORT marker once
//    every batch of its transaction is gone, each only after its delete horizon passed.
//
// Memory: sources are read batch by batch (pread), decompression is bounded by
// max_decompressed_bytes, output is buffered in chunks. The map holds whole keys (so a hash
// collision can never drop a record) and counts their memory against its budget.
// Thread-compatible.
#ifndef RUNNEL_STORAGE_COMPACTOR_H_
#define RUNNEL_STORAGE_COMPACTOR_H_

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/transaction_index.h"  // AbortedTxn

namespace runnel::storage {

// An immutable segment to read: its .log file holds v2 batches back to back with absolute
// offsets, all within [base_offset, next_offset).
struct CompactionSource {
  int64_t base_offset = 0;
  int64_t next_offset = 0;  // one past its last offset
  std::filesystem::path log_path;
  int64_t largest_timestamp = -1;  // informational
};

// The last record of a producer that is still active (Kafka's LastRecord in
// UnifiedLog.lastRecordsOfActiveProducers): its last data offset, if any, and its epoch.
struct ProducerLastRecord {
  std::optional<int64_t> last_data_offset;
  int16_t producer_epoch = -1;
};

// key -> latest offset for the keys of the dirty range, bounded by a memory budget
// (log.cleaner.dedupe.buffer.size x log.cleaner.io.buffer.load.factor).
class OffsetMap {
 public:
  static constexpr size_t kDefaultBufferBytes = 134217728;  // log.cleaner.dedupe.buffer.size
  static constexpr double kDefaultLoadFactor = 0.9;         // log.cleaner.io.buffer.load.factor
  // Accounted cost of one entry besides its key bytes: the hash node and its bucket.
  static constexpr size_t kEntryOverhead = 80;

  explicit OffsetMap(size_t buffer_bytes = kDefaultBufferBytes,
                     double load_factor = kDefaultLoadFactor);

  // Sets the offset for `key`. Returns false, changing nothing, when the key is new and its
  // entry would take the map past its budget.
  bool Put(std::string_view key, int64_t offset);
  // The offset stored for `key`, or -1.
  int64_t Get(std::string_view key) const;
  // Drops `key` (used to undo a partly mapped batch).
  void Erase(std::string_view key);
  void Clear();

  // The last offset the map covers (every record up to it was scanned); -1 when empty.
  int64_t latest_offset() const { return latest_offset_; }
  void UpdateLatestOffset(int64_t offset);

  size_t size() const { return map_.size(); }
  size_t memory_bytes() const { return memory_bytes_; }
  size_t budget_bytes() const { return budget_bytes_; }
  double utilization() const {
    return budget_bytes_ == 0 ? 1.0 : static_cast<double>(memory_bytes_) / budget_bytes_;
  }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  struct Eq {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const { return a == b; }
  };

  size_t budget_bytes_;
  size_t memory_bytes_ = 0;
  int64_t latest_offset_ = -1;
  std::unordered_map<std::string, int64_t, Hash, Eq> map_;
};

// Kafka's CleanedTransactionMetadata: tracks the transactions a cleaning round passes
// through to decide which batches are aborted and which markers may go. One per round
// (BuildOffsetMap uses its own).
class CleanerTransactions {
 public:
  // Aborted transactions (from the transaction index) of the range being read; any order.
  void AddAbortedTransactions(const std::vector<AbortedTxn>& aborted);
  // A data batch: true when it belongs to an aborted transaction (it may be discarded).
  bool OnDataBatch(int64_t producer_id, bool transactional, int64_t last_offset);
  // A control batch whose first record has key `first_key` (nullopt when it has none): true
  // when the marker may be discarded. An ABORT marker that is kept records its transaction
  // in retained().
  bool OnControlBatch(int64_t producer_id, int64_t last_offset,
                      std::optional<std::string_view> first_key);
  // Aborted transactions whose markers were kept since the last TakeRetained (the entries
  // of the cleaned segment's transaction index).
  std::vector<AbortedTxn> TakeRetained();

 private:
  void ConsumeUpTo(int64_t offset);

  struct Ongoing {
    AbortedTxn txn;
    std::optional<int64_t> last_observed_batch_offset;
  };
  std::vector<AbortedTxn> pending_;  // sorted by first offset, consumed from next_pending_
  size_t next_pending_ = 0;
  std::unordered_map<int64_t, Ongoing> ongoing_aborted_;
  std::unordered_set<int64_t> ongoing_committed_;
  std::vector<AbortedTxn> retained_;
};

struct OffsetMapBuildResult {
  // The first offset the map does not cover (map.latest_offset() + 1): clean only below it.
  int64_t end_offset = 0;
  bool full = false;  // the budget stopped the scan before end
  int64_t batches_read = 0;
  int64_t records_read = 0;
  uint64_t bytes_read = 0;
};

struct CompactorLimits {
  // Bound on one batch's decompressed records (Kafka 4's max decompressed message bytes).
  size_t max_decompressed_bytes = 64 << 20;
};

// Kafka's Cleaner.buildOffsetMap: clears `map`, then puts key -> offset for every keyed
// record with start_offset <= offset < end_offset of `dirty` (the segments overlapping that
// range, oldest first), skipping control batches and aborted transactions. When the budget
// fills it stops at the last whole batch. ResourceExhausted when not even one batch fits.
absl::StatusOr<OffsetMapBuildResult> BuildOffsetMap(const std::vector<CompactionSource>& dirty,
                                                    int64_t start_offset, int64_t end_offset,
                                                    const std::vector<AbortedTxn>& aborted,
                                                    OffsetMap* map,
                                                    const CompactorLimits& limits = {});

struct CleanOptions {
  int64_t now_ms = 0;
  int64_t delete_retention_ms = 86400000;  // delete.retention.ms
  // The end (exclusive) of the whole round, Kafka's firstUncleanableOffset: the batch
  // ending right before it is kept even when emptied, so the log end offset survives.
  int64_t upper_bound_offset = 0;
  // UnifiedLog.lastRecordsOfActiveProducers: producer id -> its last record.
  std::unordered_map<int64_t, ProducerLastRecord> active_producers;
  CompactorLimits limits;
};

struct CleanResult {
  int64_t batches_read = 0;
  int64_t records_read = 0;  // records inspected (batches discarded whole are not)
  uint64_t bytes_read = 0;
  int64_t batches_written = 0;
  int64_t batches_copied = 0;         // written byte for byte
  int64_t empty_batches_written = 0;  // header only
  int64_t records_written = 0;
  uint64_t bytes_written = 0;
  int64_t tombstones_removed = 0;
  int64_t null_key_records_removed = 0;
  int64_t aborted_records_removed = 0;
  int64_t markers_removed = 0;
  // Offsets of the written batches (first base offset, last last offset); -1 if none.
  int64_t first_offset = -1;
  int64_t last_offset = -1;
  // The largest batch MaxTimestamp written and the last offset of the first batch with it.
  int64_t max_timestamp = -1;
  int64_t offset_of_max_timestamp = -1;
  // The cleaned segment's whole transaction index: the aborted transactions whose ABORT
  // markers this Clean kept (in marker order), i.e. those with batches still seen by the
  // round (Kafka's CleanedTransactionMetadata.cleanedIndex). Entries of markers it removed,
  // or kept only for a delete horizon, are not in it.
  std::vector<AbortedTxn> retained_aborted_transactions;
};

// Writes the retained contents of `sources` (consecutive segments, oldest first) to
// `output` (created or truncated, fsynced before returning; removed on failure). `map` must
// have been built for this round; `txns` carries transaction state across the round's
// groups (may be null when the log has no transactions).
absl::StatusOr<CleanResult> Clean(const std::vector<CompactionSource>& sources,
                                  const OffsetMap& map, const CleanOptions& options,
                                  CleanerTransactions* txns, const std::filesystem::path& output);

}  // namespace runnel::storage

#endif  // RUNNEL_STORAGE_COMPACTOR_H_
