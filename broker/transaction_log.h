// TransactionLog: the durable side of the transaction coordinator, Kafka's internal topic
// __transaction_state on an InternalTopic (internal_topic.h: <log.dir>/__transaction_state-<p>/,
// compacted, segment.bytes = transaction.state.log.segment.bytes). A transactional id
// lives in partition abs(javaStringHashCode(id)) % transaction.state.log.num.partitions.
//
// Records use Kafka's key/value formats (transaction-coordinator/src/main/resources/common/
// message/TransactionLog{Key,Value}.json), one record per batch, uncompressed; big-endian:
//   TransactionLogKey (version 0):  int16 0, string transactional id (int16 length)
//   TransactionLogValue (version 1, flexible; what Kafka 4.x writes with
//   transaction.version >= 1, the default being 2):
//     int16 1 | int64 producer id | int16 producer epoch | int32 timeout ms | int8 state |
//     compact nullable array of {compact string topic, compact array of int32 partition,
//       tagged fields (none)} (null for Empty) |
//     int64 last update ms | int64 start ms (-1 when none) |
//     tagged fields, each only when not its default: tag 0 int64 PreviousProducerId
//     (default -1), tag 1 int64 NextProducerId (-1), tag 2 int16 ClientTransactionVersion (0)
//   Version 0 (read only; Kafka with transaction.version 0 writes it): the same fields
//   without tags, with int16-length strings and int32-count arrays (-1 = null).
// A null value (tombstone) removes an expired transactional id. The last producer epoch
// is not stored (Kafka does not store it either); it reads back as -1.
//
// Invariant: Load() replays every partition in offset order; the last record for a key
// wins. Append() returns once the bytes are in the log (fsynced only when the log is
// flushed or closed, as Kafka's page cache). Single-threaded (the broker's io_context).
#ifndef RUNNEL_BROKER_TRANSACTION_LOG_H_
#define RUNNEL_BROKER_TRANSACTION_LOG_H_

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "broker/internal_topic.h"
#include "storage/partition_log.h"

namespace runnel::broker {

inline constexpr char kTransactionStateTopic[] = "__transaction_state";
// The topic id Metadata reports for __transaction_state: fixed and non-zero, as
// __consumer_offsets' (group_store.h): the first 16 bytes of its name, "__transaction_st".
inline constexpr std::array<uint8_t, 16> kTransactionStateTopicId = {
    0x5f, 0x5f, 0x74, 0x72, 0x61, 0x6e, 0x73, 0x61, 0x63, 0x74, 0x69, 0x6f, 0x6e, 0x5f, 0x73, 0x74};

// Kafka's TransactionState, with its ids as stored in the log.
enum class TransactionState : int8_t {
  kEmpty = 0,
  kOngoing = 1,
  kPrepareCommit = 2,
  kPrepareAbort = 3,
  kCompleteCommit = 4,
  kCompleteAbort = 5,
  kDead = 6,
  kPrepareEpochFence = 7,
};
// Kafka's names ("Empty", "PrepareCommit", ...), as DescribeTransactions returns them.
const char* TransactionStateName(TransactionState state);
std::optional<TransactionState> TransactionStateFromName(std::string_view name);

// One transactional id's metadata, as written to the log (Kafka's TxnTransitMetadata).
struct TransactionRecord {
  std::string transactional_id;
  int64_t producer_id = -1;
  int64_t previous_producer_id = -1;
  int64_t next_producer_id = -1;
  int16_t producer_epoch = -1;
  int16_t last_producer_epoch = -1;  // in memory only; not stored in the log
  int32_t timeout_ms = 0;
  TransactionState state = TransactionState::kEmpty;
  std::map<std::string, std::set<int32_t>> partitions;  // topic -> partition ids
  int64_t last_update_ms = -1;
  int64_t start_ms = -1;
  int16_t client_transaction_version = 0;

  bool operator==(const TransactionRecord&) const = default;
};

// The record's key and value bytes (value version 1).
std::string EncodeTransactionLogKey(const std::string& transactional_id);
std::string EncodeTransactionLogValue(const TransactionRecord& record);
// The transactional id of a key; nullopt for a key version this does not know (skipped,
// as Kafka skips them).
std::optional<std::string> DecodeTransactionLogKey(std::string_view key);
// Decodes a value of version 0 or 1 into *out (transactional_id untouched,
// last_producer_epoch -1). DataLoss on anything malformed or of another version.
absl::Status DecodeTransactionLogValue(std::string_view value, TransactionRecord* out);

class TransactionLog {
 public:
  TransactionLog(std::filesystem::path log_dir, int32_t partitions, int64_t segment_bytes);
  TransactionLog(const TransactionLog&) = delete;
  TransactionLog& operator=(const TransactionLog&) = delete;

  int32_t partitions() const { return topic_.partitions(); }
  int32_t PartitionFor(const std::string& transactional_id) const;

  // Opens every existing partition and returns the live records by transactional id.
  // Undecodable records are logged and skipped. clean_shutdown: as GroupStore::Load.
  absl::StatusOr<std::map<std::string, TransactionRecord>> Load(bool clean_shutdown);

  // Appends one record (a batch of one, timestamped now_ms) to the id's partition.
  absl::Status Append(const TransactionRecord& record, int64_t now_ms);
  // Appends one tombstone per id, a batch per partition; *written gets the ids whose
  // batch was appended (all of them unless an error is returned).
  absl::Status AppendTombstones(const std::vector<std::string>& transactional_ids, int64_t now_ms,
                                std::vector<std::string>* written);

  absl::Status Close();
  // Every __transaction_state partition log that exists (for the log cleaner, metrics).
  void ForEachLog(const std::function<void(int32_t, storage::PartitionLog&)>& fn) const {
    topic_.ForEachLog(fn);
  }

 private:
  InternalTopic topic_;
};

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_TRANSACTION_LOG_H_
