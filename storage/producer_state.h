// ProducerStateManager: what one partition log knows of the idempotent and transactional
// producers writing to it, with the rules of Kafka's ProducerStateManager,
// ProducerStateEntry, ProducerAppendInfo and BatchMetadata.
//
// Per producer id it keeps the epoch and the metadata of the producer's last 5 batches
// (last sequence, last offset, offset delta, max timestamp), the epoch of the transaction
// coordinator that wrote its last marker, and the first offset of its ongoing transaction.
// A client append is checked before it is written:
//   - a batch whose epoch and sequence range equal one of those 5 is a duplicate: the
//     log answers with the original batch's offsets and writes nothing;
//   - an epoch below the producer's is INVALID_PRODUCER_EPOCH (Kafka answers that, not
//     PRODUCER_FENCED, since 2.7);
//   - a new epoch must start at sequence 0, unless the producer is unknown;
//   - otherwise the first sequence must follow the last one (INT32_MAX wraps to 0), or
//     the producer must be unknown to this log (no epoch): any sequence is then accepted,
//     as Kafka 2.5+ does (KIP-360 removed UNKNOWN_PRODUCER_ID from this path);
//   - a non-transactional batch while a transaction is open is INVALID_TXN_STATE (a
//     transactional one of a higher epoch continues the transaction, as in Kafka).
// Batches replayed from the log (recovery) are applied without checks; appends from the
// broker's own coordinators get the epoch check only (Kafka's AppendOrigin).
//
// Transactions: a transactional data batch of a producer without an open transaction
// opens one at the batch's first offset. An end-transaction marker (a control batch,
// protocol/control_record.h; only the coordinator or a replay writes them) is checked
// too: an epoch below the producer's is INVALID_PRODUCER_EPOCH, a coordinator epoch below
// the one of the producer's last marker is TRANSACTION_COORDINATOR_FENCED (Kafka's rules
// for transaction versions 0 and 1; version 2's stricter epoch rule needs the version,
// which the marker batch does not carry). It closes the open transaction, if any, as a
// CompletedTxn (first offset .. the marker's offset), and sets the producer's epoch
// (dropping its batches if that changes), coordinator epoch and last timestamp; without
// an open transaction it only does the latter (Kafka writes such markers too).
// The manager keeps the open transactions by first offset, so the first unstable offset
// (the oldest open transaction's first offset) is at hand; with one replica the high
// watermark is the log end, so a completed transaction is stable at once (no
// "unreplicated" transactions as in Kafka). Each completion comes with the last stable
// offset right after it (Kafka's lastStableOffset(completedTxn): the first offset of the
// oldest transaction still open by another producer, else the marker's offset + 1), which
// an aborted transaction's index entry records (transaction_index.h).
// Errors carry a ProducerError payload (ProducerErrorOf) for the broker to map to Kafka's
// codes; storage knows no wire codes.
// Expiration (producer.id.expiration.ms): a producer without an open transaction whose
// last batch's timestamp (the producer's clock, as in Kafka) is that old is forgotten, by
// the periodic check and when a snapshot is loaded. Producers whose records all went
// below the log start stay until then, as in Kafka.
//
// Snapshots: "<20-digit offset>.snapshot" in the partition directory holds the state of
// every producer after the batches below that offset, in Kafka's format (version 1),
// big-endian:
//   int16 version (1) | uint32 CRC-32C of every byte after this field |
//   int32 entry count | per entry (46 bytes): int64 producer id | int16 epoch |
//   int32 last sequence | int64 last offset | int32 offset delta | int64 timestamp |
//   int32 coordinator epoch | int64 current transaction first offset (-1: none)
// A producer without batches is written with last sequence -1, last offset -1 and offset
// delta 0; entries are written in producer id order (Kafka's follow its hash map's order;
// readers do not care). A snapshot restores one batch per producer, its last, as Kafka's.
// A snapshot is taken when a segment rolls, at a clean close and after a replay, only if
// the state moved past the latest one (Kafka's takeSnapshot). One that fails its checks
// is deleted and the previous one tried.
//
// Invariants: map_end_offset() is the log offset the in-memory state is complete up to;
// once the log is open every snapshot offset is <= it; a producer's batches are all of
// its current epoch, oldest first, at most 5; ongoing_txns() holds exactly the
// {current_txn_first_offset, producer id} of the producers with an open transaction
// (rebuilt from the entries when a snapshot is loaded).
// Thread-compatible: the owning PartitionLog's thread.
#ifndef RUNNEL_STORAGE_PRODUCER_STATE_H_
#define RUNNEL_STORAGE_PRODUCER_STATE_H_

#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "protocol/control_record.h"
#include "protocol/record_batch.h"

namespace runnel::storage {

// Kafka's RecordBatch.NO_* values.
inline constexpr int64_t kNoProducerId = -1;
inline constexpr int16_t kNoProducerEpoch = -1;
inline constexpr int32_t kNoSequence = -1;
// ProducerStateEntry.NUM_BATCHES_TO_RETAIN: also the most requests a producer may have
// in flight with idempotence.
inline constexpr size_t kProducerBatchesToRetain = 5;
inline constexpr int16_t kProducerSnapshotVersion = 1;
inline constexpr std::string_view kProducerSnapshotSuffix = ".snapshot";

// Sequence arithmetic of DefaultRecordBatch: sequences wrap from INT32_MAX to 0.
int32_t IncrementSequence(int32_t sequence, int32_t increment);
int32_t DecrementSequence(int32_t sequence, int32_t decrement);

// Kafka's BatchMetadata: one appended batch of a producer.
struct ProducerBatch {
  int32_t last_seq = kNoSequence;
  int64_t last_offset = -1;
  int32_t offset_delta = 0;  // last offset - first offset
  int64_t timestamp = -1;    // the batch's MaxTimestamp

  int32_t first_seq() const { return DecrementSequence(last_seq, offset_delta); }
  int64_t first_offset() const { return last_offset - offset_delta; }
  bool operator==(const ProducerBatch&) const = default;
};

// Kafka's ProducerStateEntry.
struct ProducerEntry {
  int16_t epoch = kNoProducerEpoch;
  int32_t coordinator_epoch = -1;
  int64_t last_timestamp = -1;
  int64_t current_txn_first_offset = -1;  // -1: no transaction open
  std::deque<ProducerBatch> batches;      // oldest first, at most kProducerBatchesToRetain

  int32_t last_seq() const { return batches.empty() ? kNoSequence : batches.back().last_seq; }
  int64_t last_data_offset() const { return batches.empty() ? -1 : batches.back().last_offset; }
  int32_t last_offset_delta() const { return batches.empty() ? 0 : batches.back().offset_delta; }
  // Kafka's addBatch: a new epoch drops the old epoch's batches; the oldest goes past 5.
  void AddBatch(int16_t batch_epoch, const ProducerBatch& batch);
  bool operator==(const ProducerEntry&) const = default;
};

using ProducerMap = std::map<int64_t, ProducerEntry>;  // by producer id

// Why an append was refused; the broker answers OUT_OF_ORDER_SEQUENCE_NUMBER,
// INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE or TRANSACTION_COORDINATOR_FENCED.
enum class ProducerError {
  kOutOfOrderSequence,
  kInvalidProducerEpoch,
  kInvalidTxnState,
  kTransactionCoordinatorFenced,
};
// The ProducerError a status carries, if it is one of them.
std::optional<ProducerError> ProducerErrorOf(const absl::Status& status);

// Who is appending (Kafka's AppendOrigin; kReplay is its REPLICATION, used for recovery).
enum class AppendOrigin { kClient, kCoordinator, kReplay };

// A transaction closed by its end marker (Kafka's CompletedTxn).
struct CompletedTxn {
  int64_t producer_id = kNoProducerId;
  int64_t first_offset = -1;  // its first batch's base offset
  int64_t last_offset = -1;   // the marker's offset
  bool is_aborted = false;
  bool operator==(const CompletedTxn&) const = default;
};

// A completed transaction once applied, with the last stable offset right after it.
struct TxnCompletion {
  CompletedTxn txn;
  int64_t last_stable_offset = -1;
  bool operator==(const TxnCompletion&) const = default;
};

// The snapshot file format above; Decode fails with DataLoss on any mismatch.
std::string EncodeProducerSnapshot(const ProducerMap& producers);
absl::StatusOr<ProducerMap> DecodeProducerSnapshot(std::string_view bytes);

class ProducerStateManager {
 public:
  // `dir` is the partition directory, which the caller owns and keeps alive (a log has
  // one of these; a pointer, not a copy, keeps idle partitions small).
  ProducerStateManager(const std::filesystem::path* dir, int64_t expiration_ms)
      : dir_(dir), expiration_ms_(expiration_ms) {}
  // The snapshot files present in the directory, as the caller listed it at open.
  void set_snapshot_files(std::set<int64_t> offsets) { snapshots_ = std::move(offsets); }

  // The changes of one append, checked batch by batch and applied (Apply) only once the
  // batches are written, so that a refused append changes nothing.
  class Update {
   public:
    // Checks one batch with a producer id (its offsets already assigned) against the
    // state and the earlier batches of this append, as ProducerAppendInfo does for
    // `origin`, and records it. On error the Update must be dropped.
    absl::Status AddBatch(const protocol::BatchHeader& batch, AppendOrigin origin);
    // Checks one end-transaction marker (`batch` is its control batch, offsets assigned)
    // as above and records it; on error the Update must be dropped.
    absl::Status AddMarker(const protocol::BatchHeader& batch, const protocol::EndTxnMarker& marker,
                           AppendOrigin origin);
    bool empty() const { return updated_.empty(); }
    // The transactions the markers added so far close, in order.
    const std::vector<CompletedTxn>& completed_txns() const { return completed_; }

   private:
    friend class ProducerStateManager;
    explicit Update(const ProducerStateManager* manager) : manager_(manager) {}
    // The entry this append builds for `producer_id`, created from the current one.
    ProducerEntry& Updated(int64_t producer_id);
    const ProducerStateManager* manager_;
    ProducerMap updated_;  // per producer: its fields after this append, only its new batches
    std::vector<std::pair<int64_t, int64_t>> started_;  // {first offset, producer id}
    std::vector<CompletedTxn> completed_;
  };
  Update BeginUpdate() const { return Update(this); }
  // Applies the update: the producers' entries, then the transactions it opened, then
  // those it completed, in order, each with the last stable offset right after it.
  std::vector<TxnCompletion> Apply(Update update);

  // The first offset of the oldest open transaction (Kafka's firstUnstableOffset with
  // the high watermark at the log end); nullopt when none is open.
  std::optional<int64_t> first_unstable_offset() const {
    if (ongoing_txns_.empty()) return std::nullopt;
    return ongoing_txns_.begin()->first;
  }
  // The open transactions: first offset -> producer id.
  const std::map<int64_t, int64_t>& ongoing_txns() const { return ongoing_txns_; }

  // The retained batch with exactly this batch's epoch and sequence range, if any.
  std::optional<ProducerBatch> FindDuplicate(const protocol::BatchHeader& batch) const;

  int64_t map_end_offset() const { return map_end_offset_; }
  void set_map_end_offset(int64_t offset) { map_end_offset_ = offset; }
  const ProducerMap& producers() const { return producers_; }
  const ProducerEntry* Find(int64_t producer_id) const;

  // Producers whose last batch's timestamp is at least producer.id.expiration.ms old and
  // that have no open transaction are forgotten; returns how many.
  size_t RemoveExpiredProducers(int64_t now_ms);
  void set_expiration_ms(int64_t ms) { expiration_ms_ = ms; }

  // Writes "<map end offset>.snapshot" unless the latest snapshot is already there
  // (Kafka's takeSnapshot). With sync=false the file is not fsynced until SyncSnapshots.
  absl::Status TakeSnapshot(bool sync);
  // fsyncs the snapshots written with sync=false; true if there were any (the caller
  // then fsyncs the directory).
  absl::StatusOr<bool> SyncSnapshots();
  // Kafka's truncateAndReload, at open: deletes the snapshots above log_end or at or
  // below log_start; unless the state already reaches log_end, replaces it with the
  // latest snapshot left (corrupt ones deleted, expired producers dropped) or, without
  // one, with nothing as of log_start. Batches from map_end_offset() to log_end are then
  // the caller's to replay (ReplayBatch).
  absl::Status TruncateAndReload(int64_t log_start, int64_t log_end, int64_t now_ms);
  // Applies one batch read back from the log (no checks) and moves the map end past it.
  // For a control batch `marker` is its end-transaction marker (null: the batch is not
  // one, or is empty, and only moves the map end); returns the transaction it completes.
  std::optional<TxnCompletion> ReplayBatch(const protocol::BatchHeader& batch,
                                           const protocol::EndTxnMarker* marker = nullptr);
  // DeleteRecords or retention moved the log start: the state stays (producers below the
  // log start live until they expire, as in Kafka); the map end does not fall behind it.
  void OnLogStartOffsetIncremented(int64_t log_start);

  // Deletes the snapshot at `offset` (its segment is being deleted), if there is one.
  absl::Status DeleteSnapshot(int64_t offset);
  // Deletes every snapshot below `offset`.
  absl::Status DeleteSnapshotsBefore(int64_t offset);
  const std::set<int64_t>& snapshot_offsets() const { return snapshots_; }
  std::filesystem::path SnapshotPath(int64_t offset) const;

 private:
  bool Expired(const ProducerEntry& entry, int64_t now_ms) const;
  // Kafka's lastStableOffset(completedTxn) and completeTxn.
  int64_t LastStableOffset(const CompletedTxn& txn) const;
  void RebuildOngoingTxns();

  const std::filesystem::path* dir_;
  int64_t expiration_ms_;
  ProducerMap producers_;
  std::map<int64_t, int64_t> ongoing_txns_;  // first offset -> producer id
  std::set<int64_t> snapshots_;
  std::vector<int64_t> unsynced_snapshots_;
  int64_t map_end_offset_ = 0;
  int64_t last_snapshot_offset_ = 0;
};

}  // namespace runnel::storage

#endif  // RUNNEL_STORAGE_PRODUCER_STATE_H_
