// TransactionCoordinator: Kafka's transaction coordinator (TransactionCoordinator,
// TransactionStateManager, TransactionMetadata), for a single broker that coordinates every
// transactional id. It serves both the classic flow (client transaction version 0/1:
// AddPartitionsToTxn/AddOffsetsToTxn, EndTxn keeps the epoch) and KIP-890's transactions
// v2 (client transaction version 2: partitions added by Produce/TxnOffsetCommit, the epoch
// bumped at every EndTxn and returned with the producer id, a new producer id once the
// epoch is exhausted).
//
// Each transactional id has one TransactionRecord (transaction_log.h), with Kafka's states
// and transitions:
//   (new) --InitProducerId--> Empty --AddPartitions/AddOffsets/Produce v2--> Ongoing
//   Ongoing --EndTxn--> PrepareCommit/PrepareAbort --markers written--> CompleteCommit/Abort
//   Empty/Complete* --InitProducerId--> Empty (epoch + 1, or a new producer id at epoch 0
//       once the epoch reaches 32766)
//   Ongoing --InitProducerId, or its timeout--> (PrepareEpochFence, in memory: epoch + 1)
//       --> PrepareAbort (epoch + 1 again, transactions v2 rules: this broker's
//       transaction.version is 2) --> CompleteAbort
//   Empty/Complete* --transactions v2 EndTxn(abort)--> PrepareAbort
//   Empty/Complete* idle for transactional.id.expiration.ms --> removed (tombstone)
// Invariants: every transition is written to __transaction_state (TransactionLog) before
// the in-memory record changes and before the request is answered, so that the in-memory
// record is always the last one written for the id (as Kafka's completeTransitionTo, which
// copies the transit metadata). A Prepare* record is followed by a commit/abort marker in
// every partition of the transaction (TransactionMarkerWriter) and then by the Complete*
// record. Everything here is synchronous, so Kafka's "pending transition" never shows:
// where Kafka answers CONCURRENT_TRANSACTIONS while markers are in flight, the markers are
// written first and the request then answered as Kafka answers the client's retry; only
// markers that fail (a storage error) leave a transaction in Prepare*, retried by a timer,
// and CONCURRENT_TRANSACTIONS is then the answer, as Kafka's.
//
// Coordinator epoch: Kafka's is the leader epoch of the __transaction_state partition and
// changes when the partition moves between brokers. A single broker never gives it up, so
// it is always 0 here (markers carry 0; partitions compare it only to reject older
// coordinators).
//
// Single-threaded: every call, and every timer, runs on the broker's io_context.
#ifndef RUNNEL_BROKER_TRANSACTION_COORDINATOR_H_
#define RUNNEL_BROKER_TRANSACTION_COORDINATOR_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "asio.hpp"
#include "broker/producer_id_manager.h"
#include "broker/transaction_log.h"
#include "protocol/errors.h"

namespace runnel::broker {

using protocol::ErrorCode;

struct TransactionCoordinatorConfig {
  int32_t max_timeout_ms = 900000;                     // transaction.max.timeout.ms
  int64_t transactional_id_expiration_ms = 604800000;  // transactional.id.expiration.ms
  // transaction.abort.timed.out.transaction.cleanup.interval.ms
  int64_t abort_timed_out_interval_ms = 10000;
  // transaction.remove.expired.transaction.cleanup.interval.ms
  int64_t remove_expired_interval_ms = 3600000;
  int32_t log_partitions = 50;            // transaction.state.log.num.partitions
  int64_t log_segment_bytes = 104857600;  // transaction.state.log.segment.bytes
  // Reads the keys above from broker properties, with Kafka's defaults.
  static TransactionCoordinatorConfig FromProperties(
      const std::map<std::string, std::string>& props);
};

// Implemented by the broker: where commit/abort markers go.
// KIP-588: a client older than the request version that brought PRODUCER_FENCED
// (InitProducerId 4, AddPartitionsToTxn/AddOffsetsToTxn/EndTxn 2, TxnOffsetCommit 3) gets
// INVALID_PRODUCER_EPOCH instead, as Kafka's KafkaApis answers.
inline ErrorCode FencedErrorFor(ErrorCode error, int16_t version, int16_t first_fenced_version) {
  return error == ErrorCode::kProducerFenced && version < first_fenced_version
             ? ErrorCode::kInvalidProducerEpoch
             : error;
}

// What a Produce or TxnOffsetCommit version lets the verification of its partitions do
// (Kafka's TransactionSupportedOperation): Produce v12+ / TxnOffsetCommit v5+ add the
// partition (kAdd), Produce v11 / TxnOffsetCommit v4 understand TRANSACTION_ABORTABLE
// (kVerifyGenericError), older versions get INVALID_TXN_STATE instead (kVerify).
enum class VerifyOperation { kVerify, kVerifyGenericError, kAdd };
inline VerifyOperation ProduceVerifyOperation(int16_t version) {
  return version > 11   ? VerifyOperation::kAdd
         : version > 10 ? VerifyOperation::kVerifyGenericError
                        : VerifyOperation::kVerify;
}
inline VerifyOperation TxnOffsetCommitVerifyOperation(int16_t version) {
  return version > 4   ? VerifyOperation::kAdd
         : version > 3 ? VerifyOperation::kVerifyGenericError
                       : VerifyOperation::kVerify;
}

class TransactionMarkerWriter {
 public:
  virtual ~TransactionMarkerWriter() = default;
  // Appends a commit/abort marker to a data partition (topic != "__consumer_offsets") for
  // the producer; returns the Kafka error (NONE on success; UNKNOWN_TOPIC_OR_PARTITION if
  // the partition vanished, which the coordinator treats as done, as Kafka does).
  // __consumer_offsets partitions are handled by the same call (topic "__consumer_offsets"):
  // the broker routes them to the group coordinator.
  virtual ErrorCode WriteMarker(const std::string& topic, int32_t partition, int64_t producer_id,
                                int16_t producer_epoch, int32_t coordinator_epoch, bool commit) = 0;
  virtual bool PartitionExists(const std::string& topic, int32_t partition) = 0;
};

class TransactionCoordinator {
 public:
  struct InitProducerIdResult {
    ErrorCode error = ErrorCode::kNone;
    int64_t producer_id = -1;
    int16_t producer_epoch = -1;
  };
  struct EndTxnResult {
    ErrorCode error = ErrorCode::kNone;
    int64_t producer_id = -1;  // transactions v2: the producer id and epoch to use next
    int16_t producer_epoch = -1;
  };
  struct TransactionDescription {
    ErrorCode error = ErrorCode::kNone;
    std::string state;  // Kafka's state names, TransactionStateName()
    int64_t producer_id = -1;
    int16_t producer_epoch = -1;
    int32_t timeout_ms = 0;
    int64_t start_ms = -1;  // -1 when none
    std::vector<std::pair<std::string, std::vector<int32_t>>> partitions;
  };
  struct TransactionListing {
    std::string transactional_id;
    int64_t producer_id = -1;
    std::string state;
  };

  TransactionCoordinator(asio::io_context* io, TransactionCoordinatorConfig config,
                         std::filesystem::path log_dir, ProducerIdManager* producer_ids,
                         TransactionMarkerWriter* markers);
  ~TransactionCoordinator();
  TransactionCoordinator(const TransactionCoordinator&) = delete;
  TransactionCoordinator& operator=(const TransactionCoordinator&) = delete;

  // Replays __transaction_state; transactions found in PrepareCommit/PrepareAbort are
  // completed (markers written, then Complete* recorded); Ongoing ones keep their timeout,
  // counted from their start time in the log. Starts the periodic checks.
  // clean_shutdown: as GroupStore::Load.
  absl::Status Load(bool clean_shutdown);
  absl::Status Close();

  // Kafka's handleInitProducerId for a non-null transactional id. expected_producer_id /
  // expected_epoch: the request's (KIP-360; -1 when absent).
  InitProducerIdResult InitProducerId(const std::string& transactional_id,
                                      int32_t transaction_timeout_ms, int64_t expected_producer_id,
                                      int16_t expected_epoch);
  // Kafka's handleAddPartitionsToTransaction (AddPartitionsToTxn v0-3, and v4+ without
  // verify_only). Fills *per_partition with one error per partition, in order, and returns
  // the first error (NONE when all were added).
  ErrorCode AddPartitions(const std::string& transactional_id, int64_t producer_id,
                          int16_t producer_epoch,
                          const std::vector<std::pair<std::string, int32_t>>& partitions,
                          std::vector<ErrorCode>* per_partition);
  // KIP-890's check on the produce path (Produce, TxnOffsetCommit) that the partition is in
  // the producer's ongoing transaction; with kAdd (transactions v2) it is added as
  // AddPartitions would. Returns the error the response carries, as Kafka's
  // AddPartitionsToTxnManager and ReplicaManager translate the coordinator's:
  // INVALID_PRODUCER_ID_MAPPING, INVALID_PRODUCER_EPOCH (the coordinator's
  // PRODUCER_FENCED), TRANSACTION_ABORTABLE when not in the transaction (INVALID_TXN_STATE
  // for kVerify's older clients), CONCURRENT_TRANSACTIONS (kAdd, while the transaction
  // completes) or NOT_ENOUGH_REPLICAS (the retriable coordinator errors otherwise).
  ErrorCode VerifyPartition(const std::string& transactional_id, int64_t producer_id,
                            int16_t producer_epoch, const std::string& topic, int32_t partition,
                            VerifyOperation operation);
  // The coordinator's own answer to a verify-only AddPartitionsToTxn (v4+, sent by other
  // brokers): INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED, CONCURRENT_TRANSACTIONS or
  // TRANSACTION_ABORTABLE, untranslated (Kafka's handleVerifyPartitionsInTransaction).
  ErrorCode VerifyPartitionInTransaction(const std::string& transactional_id, int64_t producer_id,
                                         int16_t producer_epoch, const std::string& topic,
                                         int32_t partition);
  // AddOffsetsToTxn: adds __consumer_offsets-<offsets_partition> (the group's partition).
  ErrorCode AddOffsets(const std::string& transactional_id, int64_t producer_id,
                       int16_t producer_epoch, const std::string& group_id,
                       int32_t offsets_partition);
  // Kafka's handleEndTransaction; is_transaction_v2: EndTxn v5+. Writes Prepare*, the
  // markers and Complete* before answering.
  EndTxnResult EndTxn(const std::string& transactional_id, int64_t producer_id,
                      int16_t producer_epoch, bool commit, bool is_transaction_v2);

  // DescribeTransactions: TRANSACTIONAL_ID_NOT_FOUND when unknown.
  TransactionDescription Describe(const std::string& transactional_id) const;
  // ListTransactions v0-1: every transaction (sorted by id) whose state name is one of
  // state_filters (unless empty; unknown names match nothing), whose producer id is one of
  // producer_id_filters (unless empty), and, when duration_filter_ms >= 0, that has been
  // running longer than that (now - start time > duration).
  std::vector<TransactionListing> List(const std::vector<std::string>& state_filters,
                                       const std::vector<int64_t>& producer_id_filters,
                                       int64_t duration_filter_ms) const;

  // The periodic checks, public for tests (run by timers every
  // transaction.abort.timed.out.transaction.cleanup.interval.ms and
  // transaction.remove.expired.transaction.cleanup.interval.ms):
  // Kafka's abortTimedOutTransactions: every Ongoing transaction whose start time plus
  // timeout is before now_ms is aborted with its producer fenced (epoch + 1, then the
  // abort's own bump: the old epoch gets PRODUCER_FENCED from the coordinator and
  // INVALID_PRODUCER_EPOCH from the partitions). Also retries pending markers.
  void AbortTimedOutTransactions(int64_t now_ms);
  // Kafka's removeExpiredTransactionalIds: Empty/CompleteCommit/CompleteAbort ids last
  // updated transactional.id.expiration.ms or more before now_ms are tombstoned and
  // forgotten.
  void RemoveExpiredTransactionalIds(int64_t now_ms);

  int32_t PartitionFor(const std::string& transactional_id) const {
    return log_.PartitionFor(transactional_id);
  }
  // transaction.state.log.num.partitions, for describing __transaction_state.
  int32_t transaction_state_partitions() const { return config_.log_partitions; }
  // Each __transaction_state partition log, for the log cleaner.
  void ForEachTransactionLog(const std::function<void(int32_t, storage::PartitionLog&)>& fn) {
    log_.ForEachLog(fn);
  }

  // For tests: the wall clock (ms) used for timestamps and checks, and the record of an
  // id (nullptr if unknown).
  void SetClockForTesting(std::function<int64_t()> clock) { clock_ = std::move(clock); }
  const TransactionRecord* Find(const std::string& transactional_id) const;

 private:
  using Partitions = std::map<std::string, std::set<int32_t>>;

  int64_t Now() const { return clock_(); }
  // Writes `next` to the log, then makes it the id's record. The Kafka error for a failed
  // write (as TransactionStateManager.appendTransactionToLog maps storage errors).
  ErrorCode Persist(const TransactionRecord& next);
  // Writes the markers of a Prepare* transaction still missing them and then its Complete*
  // record. True once the transaction is complete; false leaves it for the retry timer.
  bool CompleteTransaction(const std::string& transactional_id);
  // The Prepare* record of an EndTxn (Kafka's prepareAbortOrCommit) and the Complete* one
  // (prepareComplete).
  TransactionRecord PrepareEnd(const TransactionRecord& current, bool commit,
                               int16_t client_transaction_version, int64_t next_producer_id,
                               bool no_partition_added) const;
  TransactionRecord PrepareComplete(const TransactionRecord& current) const;
  // Persists the Prepare* record and completes the transaction. NONE once the Prepare*
  // record is written (as Kafka answers EndTxn then).
  ErrorCode EndWith(const TransactionRecord& prepare);
  // Fences the producer of an Ongoing transaction and aborts it (Kafka's
  // prepareFenceProducerEpoch + endTransaction(isFromClient = false)).
  ErrorCode FenceAndAbort(const std::string& transactional_id);
  // Kafka's prepareInitProducerIdTransit: the Empty record to write, or an error;
  // *fence_first when the ongoing transaction must be aborted first.
  ErrorCode PrepareInit(const TransactionRecord& current, int32_t timeout_ms, bool has_expected,
                        int64_t expected_producer_id, int16_t expected_epoch,
                        TransactionRecord* next, bool* fence_first);
  // handleAddPartitionsToTransaction once the partitions are known to exist.
  // The checks a producer's request to its transaction starts with: the id's record, its
  // producer id and epoch, and no transaction being completed. On kNone *current is set.
  ErrorCode FindForProducer(const std::string& transactional_id, int64_t producer_id,
                            int16_t producer_epoch, const TransactionRecord** current);
  ErrorCode AddToTransaction(const std::string& transactional_id, int64_t producer_id,
                             int16_t producer_epoch, const Partitions& partitions,
                             int16_t client_transaction_version);
  EndTxnResult EndTxnClassic(const TransactionRecord& current, int64_t producer_id,
                             int16_t producer_epoch, bool commit);
  EndTxnResult EndTxnV2(const TransactionRecord& current, int64_t producer_id,
                        int16_t producer_epoch, bool commit);
  // A transaction left in Prepare* by failed markers gets another try (synchronously,
  // before a request looks at it).
  void RetryPendingMarkers(const std::string& transactional_id);

  // Runs `check` every interval_ms on *timer (created on first use) until it is reset.
  void RunEvery(std::unique_ptr<asio::steady_timer>* timer, int64_t interval_ms,
                std::function<void()> check);
  void ScheduleMarkerRetry();

  asio::io_context* io_;
  TransactionCoordinatorConfig config_;
  TransactionLog log_;
  ProducerIdManager* producer_ids_;
  TransactionMarkerWriter* markers_;
  std::function<int64_t()> clock_;
  std::map<std::string, TransactionRecord> txns_;
  // Prepare* transactions whose markers are not all written: the partitions still missing
  // one (empty once only the Complete* record is missing).
  std::map<std::string, Partitions> pending_markers_;
  std::unique_ptr<asio::steady_timer> abort_timer_;
  std::unique_ptr<asio::steady_timer> expiry_timer_;
  std::unique_ptr<asio::steady_timer> marker_retry_timer_;
};

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_TRANSACTION_COORDINATOR_H_
