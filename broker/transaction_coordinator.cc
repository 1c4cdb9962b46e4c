#include "broker/transaction_coordinator.h"

#include <algorithm>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "broker/group_store.h"
#include "broker/log.h"
#include "broker/properties.h"

namespace runnel::broker {
namespace {

// See the header: a single broker keeps the __transaction_state partitions forever.
constexpr int32_t kCoordinatorEpoch = 0;
constexpr int16_t kMaxEpoch = std::numeric_limits<int16_t>::max();
// The transaction.version this broker finalizes (api_versions_handler.cc): the coordinator's
// own aborts (fencing, timeouts) follow the transactions v2 rules, as Kafka's do with
// txnManager.transactionVersionLevel().
constexpr int16_t kServerTransactionVersion = 2;
constexpr int64_t kMarkerRetryBackoffMs = 1000;

// Kafka's TransactionMetadata.isEpochExhausted: 32766 is the last epoch a client gets, so
// that the coordinator can always fence it.
bool EpochExhausted(int16_t epoch) { return epoch >= kMaxEpoch - 1; }

bool IsComplete(TransactionState s) {
  return s == TransactionState::kCompleteCommit || s == TransactionState::kCompleteAbort;
}
bool IsPrepare(TransactionState s) {
  return s == TransactionState::kPrepareCommit || s == TransactionState::kPrepareAbort;
}

// The fields every transition starts from (Kafka's prepareTransitionTo): the previous
// producer id becomes the current one, and there is no next one unless the transition says.
TransactionRecord Transit(const TransactionRecord& current, TransactionState state) {
  TransactionRecord next = current;
  next.state = state;
  next.previous_producer_id = current.producer_id;
  next.next_producer_id = -1;
  return next;
}

}  // namespace

TransactionCoordinatorConfig TransactionCoordinatorConfig::FromProperties(
    const std::map<std::string, std::string>& props) {
  TransactionCoordinatorConfig c;
  c.max_timeout_ms =
      std::max(1, IntProperty(props, "transaction.max.timeout.ms", c.max_timeout_ms));
  c.transactional_id_expiration_ms = std::max<int64_t>(
      1, LongProperty(props, "transactional.id.expiration.ms", c.transactional_id_expiration_ms));
  c.abort_timed_out_interval_ms = std::max<int64_t>(
      1, LongProperty(props, "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                      c.abort_timed_out_interval_ms));
  c.remove_expired_interval_ms = std::max<int64_t>(
      1, LongProperty(props, "transaction.remove.expired.transaction.cleanup.interval.ms",
                      c.remove_expired_interval_ms));
  c.log_partitions =
      std::max(1, IntProperty(props, "transaction.state.log.num.partitions", c.log_partitions));
  c.log_segment_bytes = std::max<int64_t>(
      1, LongProperty(props, "transaction.state.log.segment.bytes", c.log_segment_bytes));
  return c;
}

TransactionCoordinator::TransactionCoordinator(asio::io_context* io,
                                               TransactionCoordinatorConfig config,
                                               std::filesystem::path log_dir,
                                               ProducerIdManager* producer_ids,
                                               TransactionMarkerWriter* markers)
    : io_(io),
      config_(config),
      log_(std::move(log_dir), config.log_partitions, config.log_segment_bytes),
      producer_ids_(producer_ids),
      markers_(markers),
      clock_([] { return absl::ToUnixMillis(absl::Now()); }) {}

TransactionCoordinator::~TransactionCoordinator() = default;

absl::Status TransactionCoordinator::Load(bool clean_shutdown) {
  auto loaded = log_.Load(clean_shutdown);
  if (!loaded.ok()) return loaded.status();
  txns_.clear();
  pending_markers_.clear();
  for (auto& [id, record] : *loaded) {
    // Kafka never writes these two (Dead ends in a tombstone, PrepareEpochFence is a
    // transient in-memory state); a record in either names no live transaction.
    if (record.state == TransactionState::kDead ||
        record.state == TransactionState::kPrepareEpochFence) {
      continue;
    }
    if (IsPrepare(record.state)) pending_markers_[id] = record.partitions;
    txns_.emplace(id, std::move(record));
  }
  // Kafka's loadTransactionsForTxnTopicPartition: decided transactions are completed.
  std::vector<std::string> pending;
  for (const auto& [id, unused] : pending_markers_) pending.push_back(id);
  for (const std::string& id : pending) CompleteTransaction(id);
  RunEvery(&abort_timer_, config_.abort_timed_out_interval_ms,
           [this] { AbortTimedOutTransactions(Now()); });
  RunEvery(&expiry_timer_, config_.remove_expired_interval_ms,
           [this] { RemoveExpiredTransactionalIds(Now()); });
  return absl::OkStatus();
}

absl::Status TransactionCoordinator::Close() {
  abort_timer_.reset();
  expiry_timer_.reset();
  marker_retry_timer_.reset();
  return log_.Close();
}

const TransactionRecord* TransactionCoordinator::Find(const std::string& transactional_id) const {
  auto it = txns_.find(transactional_id);
  return it == txns_.end() ? nullptr : &it->second;
}

ErrorCode TransactionCoordinator::Persist(const TransactionRecord& next) {
  absl::Status s = log_.Append(next, Now());
  if (!s.ok()) {
    LogError("Appending the state of transactional id ", next.transactional_id, " to ",
             kTransactionStateTopic, " failed: ", s.ToString());
    // As Kafka maps append errors: too large is UNKNOWN_SERVER_ERROR, a storage error
    // NOT_COORDINATOR (the client rediscovers the coordinator and retries).
    return s.code() == absl::StatusCode::kResourceExhausted ? ErrorCode::kUnknownServerError
                                                            : ErrorCode::kNotCoordinator;
  }
  txns_[next.transactional_id] = next;
  return ErrorCode::kNone;
}

TransactionRecord TransactionCoordinator::PrepareEnd(const TransactionRecord& current, bool commit,
                                                     int16_t client_transaction_version,
                                                     int64_t next_producer_id,
                                                     bool no_partition_added) const {
  TransactionRecord next =
      Transit(current, commit ? TransactionState::kPrepareCommit : TransactionState::kPrepareAbort);
  if (client_transaction_version >= 2) {
    // Transactions v2 bump the epoch at every end; an abort at the very last epoch (only
    // reachable by fencing) stays there, as Kafka's.
    if (!(current.producer_epoch == kMaxEpoch && !commit)) {
      next.producer_epoch = static_cast<int16_t>(current.producer_epoch + 1);
    }
    next.last_producer_epoch = current.producer_epoch;
  }
  // With v2 a transaction may end without partitions; its start is then the end.
  if (no_partition_added) next.start_ms = Now();
  next.next_producer_id = next_producer_id;
  next.last_update_ms = Now();
  next.client_transaction_version = client_transaction_version;
  return next;
}

TransactionRecord TransactionCoordinator::PrepareComplete(const TransactionRecord& current) const {
  TransactionRecord next = Transit(current, current.state == TransactionState::kPrepareCommit
                                                ? TransactionState::kCompleteCommit
                                                : TransactionState::kCompleteAbort);
  // An exhausted epoch moves to the next producer id (epoch 0) once the markers are out;
  // the last epoch stays the one the client last saw.
  if (current.client_transaction_version >= 2 && current.next_producer_id != -1) {
    next.producer_id = current.next_producer_id;
    next.producer_epoch = 0;
  }
  next.partitions.clear();
  next.last_update_ms = Now();
  return next;
}

bool TransactionCoordinator::CompleteTransaction(const std::string& transactional_id) {
  auto it = txns_.find(transactional_id);
  auto pending = pending_markers_.find(transactional_id);
  if (it == txns_.end() || pending == pending_markers_.end() || !IsPrepare(it->second.state)) {
    pending_markers_.erase(transactional_id);
    return true;
  }
  const TransactionRecord& txn = it->second;
  const bool commit = txn.state == TransactionState::kPrepareCommit;
  Partitions& remaining = pending->second;
  for (auto topic = remaining.begin(); topic != remaining.end();) {
    for (auto p = topic->second.begin(); p != topic->second.end();) {
      ErrorCode error = markers_->WriteMarker(topic->first, *p, txn.producer_id, txn.producer_epoch,
                                              kCoordinatorEpoch, commit);
      bool done = false;
      switch (error) {
        case ErrorCode::kNone:
          done = true;
          break;
        case ErrorCode::kUnknownTopicOrPartition:
          // Kafka skips partitions without a leader: deleted, nobody reads them.
          done = true;
          break;
        case ErrorCode::kInvalidProducerEpoch:
        case ErrorCode::kTransactionCoordinatorFenced:
          // Kafka abandons the markers here (a newer producer or coordinator owns the
          // partition's state); a single coordinator would then wait forever, so the
          // partition is skipped instead.
          LogWarn("Skipping the ", commit ? "commit" : "abort", " marker of transactional id ",
                  transactional_id, " for ", topic->first, "-", *p, ": error ",
                  protocol::Code(error));
          done = true;
          break;
        default:
          LogWarn("Writing the ", commit ? "commit" : "abort", " marker of transactional id ",
                  transactional_id, " to ", topic->first, "-", *p, " failed with error ",
                  protocol::Code(error), "; retrying");
          break;
      }
      p = done ? topic->second.erase(p) : std::next(p);
    }
    topic = topic->second.empty() ? remaining.erase(topic) : std::next(topic);
  }
  if (!remaining.empty() || Persist(PrepareComplete(txn)) != ErrorCode::kNone) {
    ScheduleMarkerRetry();
    return false;
  }
  pending_markers_.erase(pending);
  return true;
}

void TransactionCoordinator::RetryPendingMarkers(const std::string& transactional_id) {
  if (pending_markers_.count(transactional_id)) CompleteTransaction(transactional_id);
}

ErrorCode TransactionCoordinator::EndWith(const TransactionRecord& prepare) {
  if (ErrorCode error = Persist(prepare); error != ErrorCode::kNone) return error;
  pending_markers_[prepare.transactional_id] = prepare.partitions;
  CompleteTransaction(prepare.transactional_id);
  return ErrorCode::kNone;
}

ErrorCode TransactionCoordinator::FenceAndAbort(const std::string& transactional_id) {
  const TransactionRecord& current = txns_.at(transactional_id);
  // prepareFenceProducerEpoch: the epoch is bumped in memory and never returned...
  TransactionRecord fenced = current;
  if (fenced.producer_epoch < kMaxEpoch) ++fenced.producer_epoch;
  fenced.last_producer_epoch = -1;
  // ...then endTransaction(ABORT, isFromClient = false) with the broker's transaction
  // version bumps it again in the PrepareAbort record. No new producer id while fencing.
  return EndWith(PrepareEnd(fenced, /*commit=*/false, kServerTransactionVersion,
                            /*next_producer_id=*/-1, /*no_partition_added=*/false));
}

ErrorCode TransactionCoordinator::PrepareInit(const TransactionRecord& current, int32_t timeout_ms,
                                              bool has_expected, int64_t expected_producer_id,
                                              int16_t expected_epoch, TransactionRecord* next,
                                              bool* fence_first) {
  *fence_first = false;
  // KIP-360: a producer that names its id and epoch is fenced unless the id is new
  // (epoch -1), is the current producer id (the epoch is checked below), or is the previous
  // one at an exhausted epoch (a retry after a rotation whose answer was lost).
  if (has_expected &&
      !(current.producer_epoch == -1 || expected_producer_id == current.producer_id ||
        (expected_producer_id == current.previous_producer_id && EpochExhausted(expected_epoch)))) {
    return ErrorCode::kProducerFenced;
  }
  switch (current.state) {
    case TransactionState::kPrepareCommit:
    case TransactionState::kPrepareAbort:
      return ErrorCode::kConcurrentTransactions;  // markers still pending: retry later
    case TransactionState::kOngoing:
      *fence_first = true;
      return ErrorCode::kNone;
    case TransactionState::kEmpty:
    case TransactionState::kCompleteCommit:
    case TransactionState::kCompleteAbort:
      break;
    case TransactionState::kDead:
    case TransactionState::kPrepareEpochFence:
      return ErrorCode::kUnknownServerError;  // never stored (Kafka: IllegalStateException)
  }
  *next = Transit(current, TransactionState::kEmpty);
  next->timeout_ms = timeout_ms;
  next->partitions.clear();
  next->start_ms = -1;
  next->last_update_ms = Now();
  if (EpochExhausted(current.producer_epoch)) {
    if (has_expected && expected_epoch != current.producer_epoch) {
      // Kafka throws here (prepareIncrementProducerEpoch on an exhausted epoch); the
      // producer holds an epoch that is not the current one, so it is fenced.
      return ErrorCode::kProducerFenced;
    }
    // prepareProducerIdRotation.
    absl::StatusOr<int64_t> id = producer_ids_->Next();
    if (!id.ok()) {
      LogError("Cannot allocate a producer id: ", id.status().ToString());
      return ErrorCode::kUnknownServerError;
    }
    next->producer_id = *id;
    next->producer_epoch = 0;
    next->last_producer_epoch = has_expected ? current.producer_epoch : int16_t{-1};
    return ErrorCode::kNone;
  }
  // prepareIncrementProducerEpoch.
  const auto bumped = static_cast<int16_t>(current.producer_epoch + 1);
  if (!has_expected) {
    next->producer_epoch = bumped;
    next->last_producer_epoch = -1;
  } else if (current.producer_epoch == -1 || expected_epoch == current.producer_epoch) {
    // The producer continues after an error, and nobody else initialized since.
    next->producer_epoch = bumped;
    next->last_producer_epoch = current.producer_epoch;
  } else if (expected_epoch == current.last_producer_epoch) {
    // A retry of a bump whose answer was lost: the same epoch again.
    next->producer_epoch = current.producer_epoch;
    next->last_producer_epoch = current.last_producer_epoch;
  } else {
    return ErrorCode::kProducerFenced;
  }
  return ErrorCode::kNone;
}

TransactionCoordinator::InitProducerIdResult TransactionCoordinator::InitProducerId(
    const std::string& transactional_id, int32_t transaction_timeout_ms,
    int64_t expected_producer_id, int16_t expected_epoch) {
  auto fail = [](ErrorCode error) { return InitProducerIdResult{error, -1, -1}; };
  if (transactional_id.empty()) return fail(ErrorCode::kInvalidRequest);
  if (transaction_timeout_ms <= 0 || transaction_timeout_ms > config_.max_timeout_ms) {
    return fail(ErrorCode::kInvalidTransactionTimeout);
  }
  const bool has_expected = expected_producer_id != -1;
  TransactionRecord fresh;
  const TransactionRecord* current = Find(transactional_id);
  if (current == nullptr) {
    // A new id: a fresh producer id, at epoch -1 until the Empty record bumps it to 0.
    absl::StatusOr<int64_t> id = producer_ids_->Next();
    if (!id.ok()) {
      LogError("Cannot allocate a producer id: ", id.status().ToString());
      return fail(ErrorCode::kUnknownServerError);
    }
    fresh.transactional_id = transactional_id;
    fresh.producer_id = *id;
    fresh.timeout_ms = transaction_timeout_ms;
    fresh.state = TransactionState::kEmpty;
    fresh.last_update_ms = Now();
    current = &fresh;
  } else {
    RetryPendingMarkers(transactional_id);
  }
  // At most twice: Kafka answers an Ongoing transaction by fencing and aborting it with
  // CONCURRENT_TRANSACTIONS, and the client retries once the abort is complete. Here the
  // abort completes within the call, so the retry's answer is given at once.
  for (int attempt = 0; attempt < 2; ++attempt) {
    TransactionRecord next;
    bool fence_first = false;
    ErrorCode error = PrepareInit(*current, transaction_timeout_ms, has_expected,
                                  expected_producer_id, expected_epoch, &next, &fence_first);
    if (error != ErrorCode::kNone) return fail(error);
    if (!fence_first) {
      if (error = Persist(next); error != ErrorCode::kNone) return fail(error);
      LogInfo("Initialized transactionalId ", transactional_id, " with producerId ",
              next.producer_id, " and producer epoch ", next.producer_epoch, " on partition ",
              kTransactionStateTopic, "-", PartitionFor(transactional_id));
      return {ErrorCode::kNone, next.producer_id, next.producer_epoch};
    }
    if (error = FenceAndAbort(transactional_id); error != ErrorCode::kNone) return fail(error);
    current = Find(transactional_id);
    // Markers that could not be written leave it PrepareAbort: the client retries.
    if (IsPrepare(current->state)) return fail(ErrorCode::kConcurrentTransactions);
  }
  return fail(ErrorCode::kConcurrentTransactions);
}

ErrorCode TransactionCoordinator::FindForProducer(const std::string& transactional_id,
                                                  int64_t producer_id, int16_t producer_epoch,
                                                  const TransactionRecord** current) {
  if (transactional_id.empty()) return ErrorCode::kInvalidRequest;
  RetryPendingMarkers(transactional_id);
  *current = Find(transactional_id);
  if (*current == nullptr || (*current)->producer_id != producer_id) {
    return ErrorCode::kInvalidProducerIdMapping;
  }
  if ((*current)->producer_epoch != producer_epoch) return ErrorCode::kProducerFenced;
  if (IsPrepare((*current)->state)) return ErrorCode::kConcurrentTransactions;
  return ErrorCode::kNone;
}

ErrorCode TransactionCoordinator::AddToTransaction(const std::string& transactional_id,
                                                   int64_t producer_id, int16_t producer_epoch,
                                                   const Partitions& partitions,
                                                   int16_t client_transaction_version) {
  const TransactionRecord* current = nullptr;
  if (ErrorCode e = FindForProducer(transactional_id, producer_id, producer_epoch, &current);
      e != ErrorCode::kNone) {
    return e;
  }
  if (current->state == TransactionState::kDead ||
      current->state == TransactionState::kPrepareEpochFence) {
    return ErrorCode::kUnknownServerError;  // never stored
  }
  bool all_present = true;
  for (const auto& [topic, ids] : partitions) {
    auto have = current->partitions.find(topic);
    if (have == current->partitions.end() ||
        !std::includes(have->second.begin(), have->second.end(), ids.begin(), ids.end())) {
      all_present = false;
    }
  }
  // Kafka's shortcut: nothing new to persist.
  if (current->state == TransactionState::kOngoing && all_present) return ErrorCode::kNone;
  // prepareAddPartitions: a transaction starts with its first partition.
  TransactionRecord next = Transit(*current, TransactionState::kOngoing);
  if (current->state != TransactionState::kOngoing) next.start_ms = Now();
  for (const auto& [topic, ids] : partitions) next.partitions[topic].insert(ids.begin(), ids.end());
  next.last_update_ms = Now();
  next.client_transaction_version = client_transaction_version;
  return Persist(next);
}

ErrorCode TransactionCoordinator::AddPartitions(
    const std::string& transactional_id, int64_t producer_id, int16_t producer_epoch,
    const std::vector<std::pair<std::string, int32_t>>& partitions,
    std::vector<ErrorCode>* per_partition) {
  per_partition->clear();
  // As KafkaApis, before the coordinator: partitions that do not exist fail the request,
  // the others are not attempted.
  bool unknown = false;
  for (const auto& [topic, p] : partitions) {
    bool exists = markers_->PartitionExists(topic, p);
    unknown |= !exists;
    per_partition->push_back(exists ? ErrorCode::kOperationNotAttempted
                                    : ErrorCode::kUnknownTopicOrPartition);
  }
  if (unknown) return ErrorCode::kUnknownTopicOrPartition;
  Partitions wanted;
  for (const auto& [topic, p] : partitions) wanted[topic].insert(p);
  // AddPartitionsToTxn from a client is the classic flow (Kafka:
  // transactionVersionForAddPartitionsToTxn gives TV_0 below v5).
  ErrorCode error =
      AddToTransaction(transactional_id, producer_id, producer_epoch, wanted, /*tv=*/0);
  per_partition->assign(partitions.size(), error);
  return error;
}

ErrorCode TransactionCoordinator::VerifyPartitionInTransaction(const std::string& transactional_id,
                                                               int64_t producer_id,
                                                               int16_t producer_epoch,
                                                               const std::string& topic,
                                                               int32_t partition) {
  const TransactionRecord* current = nullptr;
  if (ErrorCode e = FindForProducer(transactional_id, producer_id, producer_epoch, &current);
      e != ErrorCode::kNone) {
    return e;
  }
  auto have = current->partitions.find(topic);
  return have != current->partitions.end() && have->second.count(partition)
             ? ErrorCode::kNone
             : ErrorCode::kTransactionAbortable;
}

ErrorCode TransactionCoordinator::VerifyPartition(const std::string& transactional_id,
                                                  int64_t producer_id, int16_t producer_epoch,
                                                  const std::string& topic, int32_t partition,
                                                  VerifyOperation operation) {
  // Transactions v2 send the partition to the coordinator to be added (AddPartitionsToTxn
  // v5, verifyOnly false); older producers only have it checked.
  const bool add = operation == VerifyOperation::kAdd;
  ErrorCode error =
      add ? AddToTransaction(transactional_id, producer_id, producer_epoch, {{topic, {partition}}},
                             /*tv=*/2)
          : VerifyPartitionInTransaction(transactional_id, producer_id, producer_epoch, topic,
                                         partition);
  // AddPartitionsToTxnManager, then ReplicaManager.appendRecords, translate for producers.
  switch (error) {
    case ErrorCode::kProducerFenced:
      return ErrorCode::kInvalidProducerEpoch;
    case ErrorCode::kTransactionAbortable:
      return operation == VerifyOperation::kVerify ? ErrorCode::kInvalidTxnState : error;
    case ErrorCode::kConcurrentTransactions:
      return add ? error : ErrorCode::kNotEnoughReplicas;
    case ErrorCode::kNotCoordinator:
    case ErrorCode::kCoordinatorNotAvailable:
    case ErrorCode::kCoordinatorLoadInProgress:
      return ErrorCode::kNotEnoughReplicas;
    default:
      return error;
  }
}

ErrorCode TransactionCoordinator::AddOffsets(const std::string& transactional_id,
                                             int64_t producer_id, int16_t producer_epoch,
                                             const std::string& group_id,
                                             int32_t offsets_partition) {
  (void)group_id;  // the partition stands for the group, as in KafkaApis
  return AddToTransaction(transactional_id, producer_id, producer_epoch,
                          {{kConsumerOffsetsTopic, {offsets_partition}}}, /*tv=*/0);
}

TransactionCoordinator::EndTxnResult TransactionCoordinator::EndTxn(
    const std::string& transactional_id, int64_t producer_id, int16_t producer_epoch, bool commit,
    bool is_transaction_v2) {
  if (transactional_id.empty()) return {ErrorCode::kInvalidRequest, -1, -1};
  RetryPendingMarkers(transactional_id);
  const TransactionRecord* current = Find(transactional_id);
  if (current == nullptr) return {ErrorCode::kInvalidProducerIdMapping, -1, -1};
  return is_transaction_v2 ? EndTxnV2(*current, producer_id, producer_epoch, commit)
                           : EndTxnClassic(*current, producer_id, producer_epoch, commit);
}

// Kafka's endTransactionWithTV1 for a client request.
TransactionCoordinator::EndTxnResult TransactionCoordinator::EndTxnClassic(
    const TransactionRecord& current, int64_t producer_id, int16_t producer_epoch, bool commit) {
  auto answer = [](ErrorCode error) { return EndTxnResult{error, -1, -1}; };
  if (current.producer_id != producer_id) return answer(ErrorCode::kInvalidProducerIdMapping);
  // Strict equality: a client never bumps its own epoch.
  if (current.producer_epoch != producer_epoch) return answer(ErrorCode::kProducerFenced);
  switch (current.state) {
    case TransactionState::kOngoing:
      return answer(EndWith(PrepareEnd(current, commit, /*tv=*/0, /*next_producer_id=*/-1,
                                       /*no_partition_added=*/false)));
    case TransactionState::kCompleteCommit:  // a retry of the EndTxn that completed it
      return answer(commit ? ErrorCode::kNone : ErrorCode::kInvalidTxnState);
    case TransactionState::kCompleteAbort:
      return answer(commit ? ErrorCode::kInvalidTxnState : ErrorCode::kNone);
    case TransactionState::kPrepareCommit:
      return answer(commit ? ErrorCode::kConcurrentTransactions : ErrorCode::kInvalidTxnState);
    case TransactionState::kPrepareAbort:
      return answer(commit ? ErrorCode::kInvalidTxnState : ErrorCode::kConcurrentTransactions);
    case TransactionState::kEmpty:
      return answer(ErrorCode::kInvalidTxnState);
    case TransactionState::kDead:
    case TransactionState::kPrepareEpochFence:
      break;
  }
  return answer(ErrorCode::kUnknownServerError);  // never stored
}

// Kafka's endTransaction for transactions v2 (a client request). Retries carry the epoch
// before the bump the first attempt made:
//                  Abort: retry / current     Commit: retry / current
//   Empty          PRODUCER_FENCED / bump     PRODUCER_FENCED / INVALID_TXN_STATE
//   CompleteAbort  NONE / bump                INVALID_TXN_STATE / INVALID_TXN_STATE
//   CompleteCommit INVALID_TXN_STATE / bump   NONE / INVALID_TXN_STATE
TransactionCoordinator::EndTxnResult TransactionCoordinator::EndTxnV2(
    const TransactionRecord& current, int64_t producer_id, int16_t producer_epoch, bool commit) {
  auto answer = [](ErrorCode error) { return EndTxnResult{error, -1, -1}; };
  // A retry after the epoch overflowed: the client still holds the old id at 32766.
  const bool retry_on_overflow = current.previous_producer_id == producer_id &&
                                 producer_epoch == kMaxEpoch - 1 && current.producer_epoch == 0;
  // A retry after a bump: the client still holds the epoch before it.
  const bool retry_on_bump = current.producer_epoch == producer_epoch + 1;
  const bool is_retry = retry_on_bump || retry_on_overflow;
  bool valid_epoch = false;
  switch (current.state) {
    case TransactionState::kPrepareCommit:
    case TransactionState::kPrepareAbort:
      valid_epoch = retry_on_bump;
      break;
    case TransactionState::kCompleteCommit:
    case TransactionState::kCompleteAbort:
      valid_epoch = is_retry || producer_epoch == current.producer_epoch;
      break;
    default:
      valid_epoch = producer_epoch == current.producer_epoch;
      break;
  }
  if (current.producer_id != producer_id && !retry_on_overflow) {
    return answer(ErrorCode::kInvalidProducerIdMapping);
  }
  if (!valid_epoch) return answer(ErrorCode::kProducerFenced);

  auto end = [&](bool end_commit, bool no_partition_added) -> EndTxnResult {
    int64_t next_producer_id = -1;
    if (EpochExhausted(current.producer_epoch)) {
      absl::StatusOr<int64_t> id = producer_ids_->Next();
      if (!id.ok()) {
        LogError("Cannot allocate a producer id: ", id.status().ToString());
        return answer(ErrorCode::kUnknownServerError);
      }
      next_producer_id = *id;
    }
    TransactionRecord prepare =
        PrepareEnd(current, end_commit, /*tv=*/2, next_producer_id, no_partition_added);
    if (ErrorCode error = EndWith(prepare); error != ErrorCode::kNone) return answer(error);
    // The producer id and epoch of the Complete* record (Kafka answers with them).
    TransactionRecord complete = PrepareComplete(prepare);
    return {ErrorCode::kNone, complete.producer_id, complete.producer_epoch};
  };
  auto already_done = [&]() {
    return EndTxnResult{ErrorCode::kNone, current.producer_id, current.producer_epoch};
  };
  switch (current.state) {
    case TransactionState::kOngoing:
      return end(commit, /*no_partition_added=*/false);
    case TransactionState::kCompleteCommit:
      if (commit) return is_retry ? already_done() : answer(ErrorCode::kInvalidTxnState);
      return is_retry ? answer(ErrorCode::kInvalidTxnState) : end(false, true);
    case TransactionState::kCompleteAbort:
      if (!commit) return is_retry ? already_done() : end(false, true);
      return answer(ErrorCode::kInvalidTxnState);
    case TransactionState::kPrepareCommit:
      return answer(commit ? ErrorCode::kConcurrentTransactions : ErrorCode::kInvalidTxnState);
    case TransactionState::kPrepareAbort:
      return answer(commit ? ErrorCode::kInvalidTxnState : ErrorCode::kConcurrentTransactions);
    case TransactionState::kEmpty:
      return commit ? answer(ErrorCode::kInvalidTxnState) : end(false, true);
    case TransactionState::kDead:
    case TransactionState::kPrepareEpochFence:
      break;
  }
  return answer(ErrorCode::kUnknownServerError);  // never stored
}

TransactionCoordinator::TransactionDescription TransactionCoordinator::Describe(
    const std::string& transactional_id) const {
  TransactionDescription d;
  if (transactional_id.empty()) {
    d.error = ErrorCode::kInvalidRequest;
    return d;
  }
  const TransactionRecord* txn = Find(transactional_id);
  if (txn == nullptr || txn->state == TransactionState::kDead) {
    d.error = ErrorCode::kTransactionalIdNotFound;
    return d;
  }
  d.state = TransactionStateName(txn->state);
  d.producer_id = txn->producer_id;
  d.producer_epoch = txn->producer_epoch;
  d.timeout_ms = txn->timeout_ms;
  d.start_ms = txn->start_ms;
  // While markers are pending, Kafka shows the partitions still waiting for one.
  auto pending = pending_markers_.find(transactional_id);
  const Partitions& partitions =
      pending != pending_markers_.end() ? pending->second : txn->partitions;
  for (const auto& [topic, ids] : partitions) {
    d.partitions.emplace_back(topic, std::vector<int32_t>(ids.begin(), ids.end()));
  }
  return d;
}

std::vector<TransactionCoordinator::TransactionListing> TransactionCoordinator::List(
    const std::vector<std::string>& state_filters, const std::vector<int64_t>& producer_id_filters,
    int64_t duration_filter_ms) const {
  const int64_t now = Now();
  std::vector<TransactionListing> out;
  for (const auto& [id, txn] : txns_) {
    if (txn.state == TransactionState::kDead) continue;  // being expired
    const char* state = TransactionStateName(txn.state);
    if (!state_filters.empty() &&
        std::find(state_filters.begin(), state_filters.end(), state) == state_filters.end()) {
      continue;
    }
    if (!producer_id_filters.empty() &&
        std::find(producer_id_filters.begin(), producer_id_filters.end(), txn.producer_id) ==
            producer_id_filters.end()) {
      continue;
    }
    if (duration_filter_ms >= 0 && now - txn.start_ms <= duration_filter_ms) continue;
    out.push_back({id, txn.producer_id, state});
  }
  return out;
}

void TransactionCoordinator::AbortTimedOutTransactions(int64_t now_ms) {
  std::vector<std::string> timed_out;
  for (const auto& [id, txn] : txns_) {
    if (txn.state == TransactionState::kOngoing && txn.start_ms + txn.timeout_ms < now_ms) {
      timed_out.push_back(id);
    }
  }
  for (const std::string& id : timed_out) {
    LogInfo("Aborting transactionalId ", id, ": open longer than its timeout of ",
            txns_.at(id).timeout_ms, " ms");
    if (ErrorCode error = FenceAndAbort(id); error != ErrorCode::kNone) {
      LogWarn("Rollback of ongoing transaction for transactionalId ", id, " failed due to error ",
              protocol::Code(error));
    }
  }
  std::vector<std::string> pending;
  for (const auto& [id, unused] : pending_markers_) pending.push_back(id);
  for (const std::string& id : pending) CompleteTransaction(id);
}

void TransactionCoordinator::RemoveExpiredTransactionalIds(int64_t now_ms) {
  std::vector<std::string> expired;
  for (const auto& [id, txn] : txns_) {
    bool expiration_allowed = txn.state == TransactionState::kEmpty || IsComplete(txn.state);
    if (expiration_allowed &&
        txn.last_update_ms <= now_ms - config_.transactional_id_expiration_ms) {
      expired.push_back(id);
    }
  }
  if (expired.empty()) return;
  std::vector<std::string> written;
  if (absl::Status s = log_.AppendTombstones(expired, Now(), &written); !s.ok()) {
    LogWarn("Writing transactionalId tombstones failed: ", s.ToString());
  }
  for (const std::string& id : written) {
    LogInfo("Removed expired transactionalId ", id);
    txns_.erase(id);
  }
}

void TransactionCoordinator::RunEvery(std::unique_ptr<asio::steady_timer>* timer,
                                      int64_t interval_ms, std::function<void()> check) {
  if (io_ == nullptr) return;
  if (!*timer) *timer = std::make_unique<asio::steady_timer>(*io_);
  (*timer)->expires_after(std::chrono::milliseconds(interval_ms));
  (*timer)->async_wait([this, timer, interval_ms, check](const asio::error_code& ec) {
    if (ec == asio::error::operation_aborted) return;
    check();
    RunEvery(timer, interval_ms, check);
  });
}

void TransactionCoordinator::ScheduleMarkerRetry() {
  if (io_ == nullptr) return;
  if (!marker_retry_timer_) marker_retry_timer_ = std::make_unique<asio::steady_timer>(*io_);
  // One retry for all pending transactions; an earlier schedule stands.
  if (marker_retry_timer_->expiry() > asio::steady_timer::clock_type::now()) return;
  marker_retry_timer_->expires_after(std::chrono::milliseconds(kMarkerRetryBackoffMs));
  marker_retry_timer_->async_wait([this](const asio::error_code& ec) {
    if (ec == asio::error::operation_aborted) return;
    std::vector<std::string> pending;
    for (const auto& [id, unused] : pending_markers_) pending.push_back(id);
    for (const std::string& id : pending) CompleteTransaction(id);
  });
}

}  // namespace runnel::broker
