// RecordBatch v2 (magic 2): the unit of data in Produce and Fetch and on disk.
//
// Layout (big-endian; the CRC-32C covers bytes 21..end, so the broker may rewrite
// BaseOffset and PartitionLeaderEpoch without recomputing it):
//   0 BaseOffset int64 | 8 BatchLength int32 (bytes after this field) |
//  12 PartitionLeaderEpoch int32 | 16 Magic int8 (2) | 17 CRC uint32 | 21 Attributes int16 |
//  23 LastOffsetDelta int32 | 27 BaseTimestamp int64 | 35 MaxTimestamp int64 |
//  43 ProducerId int64 | 51 ProducerEpoch int16 | 53 BaseSequence int32 |
//  57 RecordsCount int32 | 61 Records (one compressed block when the codec is not none)
// Attributes: bits 0-2 codec, 3 timestamp type (1 = LogAppendTime), 4 transactional,
// 5 control, 6 delete horizon.
// Record: varint Length | int8 Attributes | varlong TimestampDelta | varint OffsetDelta |
//   varint KeyLength, Key | varint ValueLength, Value | varint HeadersCount |
//   per header: varint KeyLength, Key, varint ValueLength, Value (-1 = null).
#ifndef RUNNEL_PROTOCOL_RECORD_BATCH_H_
#define RUNNEL_PROTOCOL_RECORD_BATCH_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "protocol/compression.h"

namespace runnel::protocol {

inline constexpr size_t kBatchLogOverhead = 12;  // BaseOffset + BatchLength
inline constexpr size_t kBatchHeaderSize = 61;
inline constexpr int8_t kMagicV2 = 2;
inline constexpr size_t kMagicOffset = 16;
inline constexpr size_t kCrcOffset = 17;
inline constexpr size_t kAttributesOffset = 21;

// CRC-32C (Castagnoli), hardware-accelerated by ISA-L.
uint32_t Crc32c(const void* data, size_t size);

struct BatchHeader {
  int64_t base_offset = 0;
  int32_t batch_length = 0;
  int32_t partition_leader_epoch = -1;
  int8_t magic = kMagicV2;
  uint32_t crc = 0;
  int16_t attributes = 0;
  int32_t last_offset_delta = 0;
  int64_t base_timestamp = -1;
  int64_t max_timestamp = -1;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t base_sequence = -1;
  int32_t record_count = 0;

  Compression compression() const { return static_cast<Compression>(attributes & 0x7); }
  bool log_append_time() const { return attributes & 0x8; }
  bool is_transactional() const { return attributes & 0x10; }
  bool is_control() const { return attributes & 0x20; }
  int64_t last_offset() const { return base_offset + last_offset_delta; }
  size_t total_size() const { return kBatchLogOverhead + static_cast<size_t>(batch_length); }
};

// Writes `h` as the 61-byte header at the start of *batch, whose records must already
// follow it: BatchLength from the batch's size, magic 2, then the CRC-32C over the rest
// (h.batch_length, h.magic and h.crc are ignored).
void WriteBatchHeader(const BatchHeader& h, std::string* batch);

// Reads the 61-byte header at the start of `data`. Checks only that the bytes are
// there, that BatchLength covers the header, and that magic is 2; no CRC check.
absl::StatusOr<BatchHeader> ParseBatchHeader(std::string_view data);

// Validates one complete batch (exactly batch.size() bytes): header, CRC-32C, codec,
// and that the records parse, their count matches RecordsCount and their offset
// deltas are 0..n-1 with LastOffsetDelta = n-1. Records of a compressed batch are
// checked only when `scratch` is given: they are decompressed into it (at most
// max_decompressed bytes), as Kafka's broker does for every produced batch.
// Fails with DataLoss (Kafka's CORRUPT_MESSAGE) or InvalidArgument (INVALID_RECORD).
absl::Status ValidateBatch(std::string_view batch, std::string* scratch = nullptr,
                           size_t max_decompressed = 64 << 20);

// Splits a `records` field into batches. A truncated last batch (allowed at the end of
// a Fetch response) ends the iteration; Next() returns false then and at the end.
class BatchIterator {
 public:
  explicit BatchIterator(std::string_view records) : rest_(records) {}
  // On true, *batch holds the next whole batch and *header its parsed header.
  bool Next(std::string_view* batch, BatchHeader* header);
  // True when iteration stopped on bytes that are not a whole valid batch header.
  bool truncated() const { return truncated_; }

 private:
  std::string_view rest_;
  bool truncated_ = false;
};

// In-place rewrites of the fields the CRC does not cover.
void SetBaseOffset(char* batch, int64_t base_offset);
void SetPartitionLeaderEpoch(char* batch, int32_t epoch);
// Switches the batch to LogAppendTime with the given MaxTimestamp and recomputes the CRC.
void SetLogAppendTime(char* batch, size_t size, int64_t timestamp);

struct RecordHeader {
  std::string_view key;
  std::optional<std::string_view> value;
};

struct Record {
  int64_t offset = 0;
  int64_t timestamp = 0;
  std::optional<std::string_view> key;
  std::optional<std::string_view> value;
  std::vector<RecordHeader> headers;
};

// Decodes every record of one batch (decompressing if needed; the views point into
// the batch or into *scratch). max_decompressed bounds the decompressed size.
absl::StatusOr<std::vector<Record>> ReadRecords(std::string_view batch, std::string* scratch,
                                                size_t max_decompressed = 64 << 20);

struct RecordToAdd {
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<std::pair<std::string, std::optional<std::string>>> headers;
  int64_t timestamp = 0;
};

// Builds one batch (base offset 0, leader epoch -1) with a valid CRC.
struct BatchOptions {
  Compression compression = Compression::kNone;
  int64_t base_offset = 0;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t base_sequence = -1;
  bool transactional = false;
  bool control = false;
};
std::string BuildBatch(const std::vector<RecordToAdd>& records, const BatchOptions& options = {});

}  // namespace runnel::protocol

#endif  // RUNNEL_PROTOCOL_RECORD_BATCH_H_
