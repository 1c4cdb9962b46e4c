// Transaction markers: the control batches a transaction coordinator writes into each
// partition of a transaction when it commits or aborts (KIP-98), in the format of Kafka's
// EndTransactionMarker and ControlRecordType.
//
// A marker is one RecordBatch v2 (record_batch.h) whose attributes have the transactional
// (0x10) and control (0x20) bits, codec none, CreateTime, base sequence -1 and the
// producer id and epoch of the transaction, holding exactly one record:
//   key   (4 bytes): int16 version (0) | int16 type (0 = ABORT, 1 = COMMIT)
//   value (6 bytes): int16 version (0) | int32 coordinator epoch
// big-endian, with no headers. Readers accept any key or value version >= 0 and read the
// fields of version 0 (later versions may only add fields after them); a negative version,
// a short key or value, or another control type (Kafka's LEADER_CHANGE, SNAPSHOT_*, or one
// unknown) is not an end-transaction marker.
// Thread-safe (no state).
#ifndef RUNNEL_PROTOCOL_CONTROL_RECORD_H_
#define RUNNEL_PROTOCOL_CONTROL_RECORD_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace runnel::protocol {

// The control record types of transaction markers (Kafka's ControlRecordType).
enum class ControlRecordType : int16_t { kAbort = 0, kCommit = 1 };

struct EndTxnMarker {
  ControlRecordType type = ControlRecordType::kAbort;
  int32_t coordinator_epoch = 0;
  bool operator==(const EndTxnMarker&) const = default;
};

// One marker batch as above: base offset 0 (the log assigns the real one), partition
// leader epoch -1 (Kafka's NO_PARTITION_LEADER_EPOCH), its record and both batch
// timestamps timestamp_ms. Kafka's MemoryRecords.withEndTransactionMarker.
std::string BuildEndTxnMarkerBatch(int64_t producer_id, int16_t producer_epoch,
                                   const EndTxnMarker& marker, int64_t timestamp_ms);

// For a control batch: the marker its first record holds. nullopt when the bytes are not
// a whole control batch, it has no record, or its record is not an end-transaction marker
// (another or an unknown control type, a malformed key or value).
std::optional<EndTxnMarker> ParseEndTxnMarker(std::string_view batch);
// The same for one record of a control batch, by its key and value (null: none).
std::optional<EndTxnMarker> ParseEndTxnMarkerRecord(std::string_view key,
                                                    std::optional<std::string_view> value);

}  // namespace runnel::protocol

#endif  // RUNNEL_PROTOCOL_CONTROL_RECORD_H_
