#include "protocol/control_record.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "protocol/record_batch.h"
#include "protocol/wire.h"

namespace runnel::protocol {
namespace {

constexpr int16_t kControlKeyVersion = 0;    // ControlRecordType.CURRENT_CONTROL_RECORD_KEY_VERSION
constexpr int16_t kEndTxnMarkerVersion = 0;  // EndTransactionMarker's value version
constexpr size_t kKeySize = 4;
constexpr size_t kValueSize = 6;

std::string BigEndian(uint64_t value, size_t n) {
  std::string out(n, '\0');
  PutBigEndian(out.data(), value, n);
  return out;
}

}  // namespace

std::string BuildEndTxnMarkerBatch(int64_t producer_id, int16_t producer_epoch,
                                   const EndTxnMarker& marker, int64_t timestamp_ms) {
  RecordToAdd record;
  record.key = BigEndian(static_cast<uint16_t>(kControlKeyVersion), 2) +
               BigEndian(static_cast<uint16_t>(marker.type), 2);
  record.value = BigEndian(static_cast<uint16_t>(kEndTxnMarkerVersion), 2) +
                 BigEndian(static_cast<uint32_t>(marker.coordinator_epoch), 4);
  record.timestamp = timestamp_ms;
  BatchOptions options;
  options.producer_id = producer_id;
  options.producer_epoch = producer_epoch;
  options.base_sequence = -1;
  options.transactional = true;
  options.control = true;
  std::vector<RecordToAdd> records;
  records.push_back(std::move(record));
  return BuildBatch(records, options);
}

std::optional<EndTxnMarker> ParseEndTxnMarker(std::string_view batch) {
  absl::StatusOr<BatchHeader> h = ParseBatchHeader(batch);
  if (!h.ok() || !h->is_control() || h->total_size() > batch.size()) return std::nullopt;
  std::string scratch;
  absl::StatusOr<std::vector<Record>> records =
      ReadRecords(batch.substr(0, h->total_size()), &scratch);
  if (!records.ok() || records->empty()) return std::nullopt;
  const Record& r = records->front();
  if (!r.key.has_value()) return std::nullopt;
  return ParseEndTxnMarkerRecord(*r.key, r.value);
}

std::optional<EndTxnMarker> ParseEndTxnMarkerRecord(std::string_view key,
                                                    std::optional<std::string_view> value) {
  if (key.size() < kKeySize || !value.has_value() || value->size() < kValueSize) {
    return std::nullopt;
  }
  const int16_t key_version = static_cast<int16_t>(GetBigEndian(key.data(), 2));
  const int16_t type = static_cast<int16_t>(GetBigEndian(key.data() + 2, 2));
  const int16_t value_version = static_cast<int16_t>(GetBigEndian(value->data(), 2));
  if (key_version < 0 || value_version < 0) return std::nullopt;
  if (type != static_cast<int16_t>(ControlRecordType::kAbort) &&
      type != static_cast<int16_t>(ControlRecordType::kCommit)) {
    return std::nullopt;
  }
  return EndTxnMarker{static_cast<ControlRecordType>(type),
                      static_cast<int32_t>(GetBigEndian(value->data() + 2, 4))};
}

}  // namespace runnel::protocol
