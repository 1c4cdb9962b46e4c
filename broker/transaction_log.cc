#include "broker/transaction_log.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "broker/group_store.h"
#include "broker/log.h"
#include "protocol/record_batch.h"
#include "protocol/wire.h"

namespace runnel::broker {
namespace {

constexpr int16_t kKeyVersion = 0;
constexpr int16_t kValueVersion = 1;  // flexible

constexpr uint32_t kTagPreviousProducerId = 0;
constexpr uint32_t kTagNextProducerId = 1;
constexpr uint32_t kTagClientTransactionVersion = 2;

constexpr const char* kStateNames[] = {"Empty",        "Ongoing",          "PrepareCommit",
                                       "PrepareAbort", "CompleteCommit",   "CompleteAbort",
                                       "Dead",         "PrepareEpochFence"};

// Kafka's settings for __transaction_state: compacted, uncompressed.
storage::LogConfig TransactionTopicLogConfig(int64_t segment_bytes) {
  storage::LogConfig c;
  c.delete_policy = false;
  c.compact_policy = true;
  c.segment_bytes = segment_bytes;
  return c;
}

}  // namespace

const char* TransactionStateName(TransactionState state) {
  auto i = static_cast<size_t>(state);
  return i < std::size(kStateNames) ? kStateNames[i] : "Unknown";
}

std::optional<TransactionState> TransactionStateFromName(std::string_view name) {
  for (size_t i = 0; i < std::size(kStateNames); ++i) {
    if (name == kStateNames[i]) return static_cast<TransactionState>(i);
  }
  return std::nullopt;
}

std::string EncodeTransactionLogKey(const std::string& transactional_id) {
  protocol::Writer w;
  w.Int16(kKeyVersion);
  w.String(transactional_id, false);
  return std::move(w.buffer());
}

std::string EncodeTransactionLogValue(const TransactionRecord& r) {
  protocol::Writer w;
  w.Int16(kValueVersion);
  w.Int64(r.producer_id);
  w.Int16(r.producer_epoch);
  w.Int32(r.timeout_ms);
  w.Int8(static_cast<int8_t>(r.state));
  if (r.state == TransactionState::kEmpty) {
    w.ArrayLength(-1, true);  // Kafka writes no partitions for Empty
  } else {
    w.ArrayLength(static_cast<int64_t>(r.partitions.size()), true);
    for (const auto& [topic, ids] : r.partitions) {
      w.String(topic, true);
      w.ArrayLength(static_cast<int64_t>(ids.size()), true);
      for (int32_t id : ids) w.Int32(id);
      w.UnsignedVarint(0);  // no tagged fields
    }
  }
  w.Int64(r.last_update_ms);
  w.Int64(r.start_ms);
  // Tagged fields, ascending, each only when it differs from its default (as Kafka's
  // generated writers do).
  uint32_t tags = (r.previous_producer_id != -1) + (r.next_producer_id != -1) +
                  (r.client_transaction_version != 0);
  w.UnsignedVarint(tags);
  if (r.previous_producer_id != -1) {
    w.UnsignedVarint(kTagPreviousProducerId);
    w.UnsignedVarint(8);
    w.Int64(r.previous_producer_id);
  }
  if (r.next_producer_id != -1) {
    w.UnsignedVarint(kTagNextProducerId);
    w.UnsignedVarint(8);
    w.Int64(r.next_producer_id);
  }
  if (r.client_transaction_version != 0) {
    w.UnsignedVarint(kTagClientTransactionVersion);
    w.UnsignedVarint(2);
    w.Int16(r.client_transaction_version);
  }
  return std::move(w.buffer());
}

std::optional<std::string> DecodeTransactionLogKey(std::string_view key) {
  protocol::Reader k(key);
  if (k.Int16() != kKeyVersion) return std::nullopt;
  std::string id = k.String(false);
  if (!k.ok()) return std::nullopt;
  return id;
}

absl::Status DecodeTransactionLogValue(std::string_view value, TransactionRecord* out) {
  protocol::Reader v(value);
  int16_t version = v.Int16();
  if (!v.ok() || version < 0 || version > kValueVersion) {
    return absl::DataLossError(
        absl::StrCat("unknown version ", version, " of a __transaction_state value"));
  }
  const bool flexible = version >= 1;
  out->producer_id = v.Int64();
  out->previous_producer_id = -1;
  out->next_producer_id = -1;
  out->producer_epoch = v.Int16();
  out->last_producer_epoch = -1;
  out->timeout_ms = v.Int32();
  int8_t state = v.Int8();
  if (state < 0 || state > static_cast<int8_t>(TransactionState::kPrepareEpochFence)) {
    return absl::DataLossError(absl::StrCat("unknown transaction state id ", state));
  }
  out->state = static_cast<TransactionState>(state);
  out->partitions.clear();
  int64_t topics = v.ArrayLength(flexible);
  for (int64_t i = 0; i < topics && v.ok(); ++i) {
    std::string topic = v.String(flexible);
    int64_t n = v.ArrayLength(flexible);
    std::set<int32_t> ids;
    for (int64_t j = 0; j < n && v.ok(); ++j) ids.insert(v.Int32());
    if (flexible) v.SkipTaggedFields();
    // Kafka ignores the partitions of an Empty record.
    if (out->state != TransactionState::kEmpty) {
      out->partitions[topic].insert(ids.begin(), ids.end());
    }
  }
  out->last_update_ms = v.Int64();
  out->start_ms = v.Int64();
  out->client_transaction_version = 0;
  if (flexible) {
    uint32_t count = v.UnsignedVarint();
    for (uint32_t i = 0; i < count && v.ok(); ++i) {
      uint32_t tag = v.UnsignedVarint();
      uint32_t size = v.UnsignedVarint();
      protocol::Reader field(v.Bytes(size));
      switch (tag) {
        case kTagPreviousProducerId:
          out->previous_producer_id = field.Int64();
          break;
        case kTagNextProducerId:
          out->next_producer_id = field.Int64();
          break;
        case kTagClientTransactionVersion:
          out->client_transaction_version = field.Int16();
          break;
        default:
          break;  // a tag from a later Kafka: skipped
      }
      if (!field.ok()) v.Fail();
    }
  }
  if (!v.ok()) return absl::DataLossError("malformed __transaction_state value");
  return absl::OkStatus();
}

TransactionLog::TransactionLog(std::filesystem::path log_dir, int32_t partitions,
                               int64_t segment_bytes)
    : topic_(std::move(log_dir), kTransactionStateTopic, partitions,
             TransactionTopicLogConfig(segment_bytes)) {}

int32_t TransactionLog::PartitionFor(const std::string& transactional_id) const {
  int64_t h = JavaStringHashCode(transactional_id);
  return static_cast<int32_t>(std::llabs(h) % topic_.partitions());
}

absl::StatusOr<std::map<std::string, TransactionRecord>> TransactionLog::Load(bool clean_shutdown) {
  std::map<std::string, TransactionRecord> live;
  absl::Status s =
      topic_.Load(clean_shutdown, [&live](int32_t partition, const protocol::BatchHeader& header,
                                          const std::vector<protocol::Record>& records) {
        if (header.is_control()) return;
        for (const protocol::Record& r : records) {
          if (!r.key) continue;
          std::optional<std::string> id = DecodeTransactionLogKey(*r.key);
          if (!id) continue;
          if (!r.value) {
            live.erase(*id);
            continue;
          }
          TransactionRecord record;
          if (absl::Status d = DecodeTransactionLogValue(*r.value, &record); !d.ok()) {
            LogError("Skipping the record of transactional id ", *id, " at offset ", r.offset,
                     " of ", kTransactionStateTopic, "-", partition, ": ", d.ToString());
            continue;
          }
          record.transactional_id = *id;
          live[*id] = std::move(record);
        }
      });
  if (!s.ok()) return s;
  return live;
}

absl::Status TransactionLog::Append(const TransactionRecord& record, int64_t now_ms) {
  protocol::RecordToAdd r;
  r.key = EncodeTransactionLogKey(record.transactional_id);
  r.value = EncodeTransactionLogValue(record);
  r.timestamp = now_ms;
  auto appended = topic_.Append(PartitionFor(record.transactional_id), protocol::BuildBatch({r}),
                                storage::AppendOrigin::kCoordinator);
  return appended.ok() ? absl::OkStatus() : appended.status();
}

absl::Status TransactionLog::AppendTombstones(const std::vector<std::string>& transactional_ids,
                                              int64_t now_ms, std::vector<std::string>* written) {
  std::map<int32_t, std::vector<std::string>> by_partition;
  for (const std::string& id : transactional_ids) by_partition[PartitionFor(id)].push_back(id);
  absl::Status result;
  for (const auto& [partition, ids] : by_partition) {
    std::vector<protocol::RecordToAdd> records;
    for (const std::string& id : ids) {
      protocol::RecordToAdd r;
      r.key = EncodeTransactionLogKey(id);
      r.timestamp = now_ms;
      records.push_back(std::move(r));
    }
    auto appended = topic_.Append(partition, protocol::BuildBatch(records),
                                  storage::AppendOrigin::kCoordinator);
    if (!appended.ok()) {
      result.Update(appended.status());
      continue;
    }
    written->insert(written->end(), ids.begin(), ids.end());
  }
  return result;
}

absl::Status TransactionLog::Close() { return topic_.Close(); }

}  // namespace runnel::broker
