#include "protocol/record_batch.h"

#include <isa-l/crc.h>

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "protocol/wire.h"

namespace runnel::protocol {
namespace {

// Offsets of the header fields not named in record_batch.h.
constexpr size_t kBatchLengthOffset = 8;
constexpr size_t kLeaderEpochOffset = 12;
constexpr size_t kLastOffsetDeltaOffset = 23;
constexpr size_t kBaseTimestampOffset = 27;
constexpr size_t kMaxTimestampOffset = 35;
constexpr size_t kProducerIdOffset = 43;
constexpr size_t kProducerEpochOffset = 51;
constexpr size_t kBaseSequenceOffset = 53;
constexpr size_t kRecordsCountOffset = 57;
// The smallest record: length, attributes, timestamp delta, offset delta, key length,
// value length and header count, one byte each. Bounds reservations for hostile counts.
constexpr size_t kMinRecordSize = 7;

constexpr int16_t kCodecMask = 0x7;
constexpr int16_t kLogAppendTimeFlag = 0x8;
constexpr int16_t kTransactionalFlag = 0x10;
constexpr int16_t kControlFlag = 0x20;

// Two's complement addition: hostile deltas must not be signed overflow (UB).
int64_t WrapAdd(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}

int64_t WrapSub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}

void WriteCrc(char* batch, size_t size) {
  PutBigEndian(batch + kCrcOffset, Crc32c(batch + kAttributesOffset, size - kAttributesOffset), 4);
}

// Parses one record at r into *rec (reusing its headers vector). Mirrors Kafka's
// DefaultRecord.readFrom: a negative key or value length is null, a negative header
// count or header key length is invalid, and the fields must fill Length exactly.
absl::Status ParseRecord(Reader& r, const BatchHeader& h, Record* rec) {
  int32_t length = r.Varint();
  if (!r.ok() || length < 0 || static_cast<size_t>(length) > r.remaining()) {
    return absl::InvalidArgumentError("invalid record length");
  }
  Reader body(r.Bytes(static_cast<size_t>(length)));
  body.Int8();  // attributes, unused
  int64_t timestamp_delta = body.Varlong();
  int32_t offset_delta = body.Varint();
  rec->offset = WrapAdd(h.base_offset, offset_delta);
  rec->timestamp =
      h.log_append_time() ? h.max_timestamp : WrapAdd(h.base_timestamp, timestamp_delta);
  auto nullable = [&body]() -> std::optional<std::string_view> {
    int32_t n = body.Varint();
    if (n < 0) return std::nullopt;
    return body.Bytes(static_cast<size_t>(n));
  };
  rec->key = nullable();
  rec->value = nullable();
  int32_t header_count = body.Varint();
  if (!body.ok()) return absl::InvalidArgumentError("malformed record");
  // Each header takes at least two bytes.
  if (header_count < 0 || static_cast<size_t>(header_count) > body.remaining() / 2) {
    return absl::InvalidArgumentError("invalid record header count");
  }
  rec->headers.clear();
  rec->headers.reserve(static_cast<size_t>(header_count));
  for (int32_t i = 0; i < header_count; ++i) {
    int32_t key_length = body.Varint();
    if (key_length < 0) return absl::InvalidArgumentError("negative record header key length");
    RecordHeader header;
    header.key = body.Bytes(static_cast<size_t>(key_length));
    header.value = nullable();
    if (!body.ok()) return absl::InvalidArgumentError("malformed record header");
    rec->headers.push_back(header);
  }
  if (!body.ok()) return absl::InvalidArgumentError("malformed record");
  if (body.remaining() != 0) {
    return absl::InvalidArgumentError("record length does not match its fields");
  }
  return absl::OkStatus();
}

// Calls fn(index, record) for each of h.record_count records in `records`, which must
// hold exactly that many.
template <typename Fn>
absl::Status ForEachRecord(std::string_view records, const BatchHeader& h, Fn fn) {
  Reader r(records);
  Record rec;
  for (int32_t i = 0; i < h.record_count; ++i) {
    if (r.remaining() == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("batch declares ", h.record_count, " records but holds ", i));
    }
    absl::Status s = ParseRecord(r, h, &rec);
    if (!s.ok()) return s;
    s = fn(i, rec);
    if (!s.ok()) return s;
  }
  if (r.remaining() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch holds more than its declared ", h.record_count, " records"));
  }
  return absl::OkStatus();
}

void WriteNullable(Writer& w, const std::optional<std::string>& s) {
  if (!s) {
    w.Varint(-1);
    return;
  }
  w.Varint(static_cast<int32_t>(s->size()));
  w.Raw(*s);
}

}  // namespace

uint32_t Crc32c(const void* data, size_t size) {
  // Kafka's CRC-32C is the reflected Castagnoli CRC with inverted input and output;
  // crc32_iscsi takes the running (uninverted) value and chains across calls.
  const unsigned char* p = static_cast<const unsigned char*>(data);
  uint32_t crc = 0xFFFFFFFFu;
  while (size > 0) {
    size_t n = std::min<size_t>(size, std::numeric_limits<int>::max());
    crc = crc32_iscsi(const_cast<unsigned char*>(p), static_cast<int>(n), crc);
    p += n;
    size -= n;
  }
  return crc ^ 0xFFFFFFFFu;
}

absl::StatusOr<BatchHeader> ParseBatchHeader(std::string_view data) {
  if (data.size() < kBatchHeaderSize) {
    return absl::DataLossError(absl::StrCat("record batch header truncated at ", data.size(),
                                            " of ", kBatchHeaderSize, " bytes"));
  }
  Reader r(data.substr(0, kBatchHeaderSize));
  BatchHeader h;
  h.base_offset = r.Int64();
  h.batch_length = r.Int32();
  h.partition_leader_epoch = r.Int32();
  h.magic = r.Int8();
  h.crc = r.Uint32();
  h.attributes = r.Int16();
  h.last_offset_delta = r.Int32();
  h.base_timestamp = r.Int64();
  h.max_timestamp = r.Int64();
  h.producer_id = r.Int64();
  h.producer_epoch = r.Int16();
  h.base_sequence = r.Int32();
  h.record_count = r.Int32();
  // Kafka reports legacy (magic 0 and 1) message sets in a v3+ Produce as
  // INVALID_RECORD, and any other magic as CORRUPT_MESSAGE.
  if (h.magic == 0 || h.magic == 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported record batch magic ", h.magic, ", only 2 is accepted"));
  }
  if (h.magic != kMagicV2) {
    return absl::DataLossError(absl::StrCat("invalid record batch magic ", h.magic));
  }
  if (h.batch_length < static_cast<int32_t>(kBatchHeaderSize - kBatchLogOverhead)) {
    return absl::DataLossError(
        absl::StrCat("record batch length ", h.batch_length, " is smaller than the batch header"));
  }
  return h;
}

absl::Status ValidateBatch(std::string_view batch, std::string* scratch, size_t max_decompressed) {
  absl::StatusOr<BatchHeader> parsed = ParseBatchHeader(batch);
  if (!parsed.ok()) return parsed.status();
  const BatchHeader& h = *parsed;
  if (h.total_size() != batch.size()) {
    return absl::DataLossError(absl::StrCat("record batch length ", h.batch_length,
                                            " does not match its ", batch.size(), " bytes"));
  }
  uint32_t crc = Crc32c(batch.data() + kAttributesOffset, batch.size() - kAttributesOffset);
  if (crc != h.crc) {
    return absl::DataLossError(
        absl::StrCat("record batch CRC mismatch: stored ", h.crc, ", computed ", crc));
  }
  if (static_cast<int>(h.compression()) > static_cast<int>(Compression::kZstd)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown compression codec ", static_cast<int>(h.compression())));
  }
  // Kafka rejects batches from clients whose offset range disagrees with their count,
  // and empty ones.
  if (h.record_count <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid record count ", h.record_count, " in record batch"));
  }
  if (static_cast<int64_t>(h.last_offset_delta) != static_cast<int64_t>(h.record_count) - 1) {
    return absl::InvalidArgumentError(absl::StrCat("record batch last offset delta ",
                                                   h.last_offset_delta, " does not match its ",
                                                   h.record_count, " records"));
  }
  std::string_view records = batch.substr(kBatchHeaderSize);
  if (h.compression() != Compression::kNone) {
    if (scratch == nullptr) return absl::OkStatus();
    absl::StatusOr<std::string> plain = Decompress(h.compression(), records, max_decompressed);
    if (!plain.ok()) {
      return absl::DataLossError(
          absl::StrCat("record batch does not decompress: ", plain.status().message()));
    }
    *scratch = std::move(*plain);
    records = *scratch;
  }
  return ForEachRecord(records, h, [&h](int32_t i, const Record& rec) {
    if (rec.offset != WrapAdd(h.base_offset, i)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "record ", i, " has offset delta ", WrapSub(rec.offset, h.base_offset), ", not ", i));
    }
    return absl::OkStatus();
  });
}

bool BatchIterator::Next(std::string_view* batch, BatchHeader* header) {
  if (rest_.empty()) return false;
  absl::StatusOr<BatchHeader> h = ParseBatchHeader(rest_);
  if (!h.ok() || h->total_size() > rest_.size()) {
    truncated_ = true;
    rest_ = {};
    return false;
  }
  *header = *h;
  *batch = rest_.substr(0, h->total_size());
  rest_.remove_prefix(h->total_size());
  return true;
}

void SetBaseOffset(char* batch, int64_t base_offset) {
  PutBigEndian(batch, static_cast<uint64_t>(base_offset), 8);
}

void SetPartitionLeaderEpoch(char* batch, int32_t epoch) {
  PutBigEndian(batch + kLeaderEpochOffset, static_cast<uint32_t>(epoch), 4);
}

void SetLogAppendTime(char* batch, size_t size, int64_t timestamp) {
  if (size < kBatchHeaderSize) return;
  uint16_t attributes = static_cast<uint16_t>(GetBigEndian(batch + kAttributesOffset, 2));
  PutBigEndian(batch + kAttributesOffset, attributes | kLogAppendTimeFlag, 2);
  PutBigEndian(batch + kMaxTimestampOffset, static_cast<uint64_t>(timestamp), 8);
  WriteCrc(batch, size);
}

absl::StatusOr<std::vector<Record>> ReadRecords(std::string_view batch, std::string* scratch,
                                                size_t max_decompressed) {
  absl::StatusOr<BatchHeader> parsed = ParseBatchHeader(batch);
  if (!parsed.ok()) return parsed.status();
  const BatchHeader& h = *parsed;
  if (h.total_size() > batch.size()) {
    return absl::DataLossError(
        absl::StrCat("record batch truncated: ", batch.size(), " of ", h.total_size(), " bytes"));
  }
  if (h.record_count < 0) {
    return absl::InvalidArgumentError(absl::StrCat("negative record count ", h.record_count));
  }
  std::string_view records = batch.substr(kBatchHeaderSize, h.total_size() - kBatchHeaderSize);
  if (h.compression() != Compression::kNone) {
    absl::StatusOr<std::string> plain = Decompress(h.compression(), records, max_decompressed);
    if (!plain.ok()) return plain.status();
    *scratch = *std::move(plain);
    records = *scratch;
  }
  std::vector<Record> out;
  out.reserve(
      std::min<size_t>(static_cast<size_t>(h.record_count), records.size() / kMinRecordSize));
  absl::Status s = ForEachRecord(records, h, [&out](int32_t, const Record& rec) {
    out.push_back(rec);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

std::string BuildBatch(const std::vector<RecordToAdd>& records, const BatchOptions& options) {
  int64_t base_timestamp = records.empty() ? -1 : records.front().timestamp;
  int64_t max_timestamp = -1;
  Writer w;
  w.buffer().reserve(kBatchHeaderSize + records.size() * 32);
  w.buffer().resize(kBatchHeaderSize);  // filled in below
  Encoded scratch;                      // one record's body, reused
  for (size_t i = 0; i < records.size(); ++i) {
    const RecordToAdd& rec = records[i];
    max_timestamp = std::max(max_timestamp, rec.timestamp);
    scratch.bytes.clear();
    Writer body(&scratch);
    body.Int8(0);
    body.Varlong(WrapSub(rec.timestamp, base_timestamp));
    body.Varint(static_cast<int32_t>(i));
    WriteNullable(body, rec.key);
    WriteNullable(body, rec.value);
    body.Varint(static_cast<int32_t>(rec.headers.size()));
    for (const auto& [key, value] : rec.headers) {
      body.Varint(static_cast<int32_t>(key.size()));
      body.Raw(key);
      WriteNullable(body, value);
    }
    w.Varint(static_cast<int32_t>(body.size()));
    w.Raw(body.buffer());
  }

  Compression codec = options.compression;
  std::string out = std::move(w.buffer());
  if (codec != Compression::kNone) {
    absl::StatusOr<std::string> packed =
        Compress(codec, std::string_view(out).substr(kBatchHeaderSize));
    if (packed.ok()) {
      out.resize(kBatchHeaderSize);
      out += *packed;
    } else {
      codec = Compression::kNone;  // an unknown codec: store the records plainly
    }
  }

  BatchHeader h;
  h.base_offset = options.base_offset;
  h.attributes = static_cast<int16_t>(static_cast<int16_t>(codec) & kCodecMask);
  if (options.transactional) h.attributes |= kTransactionalFlag;
  if (options.control) h.attributes |= kControlFlag;
  h.last_offset_delta = static_cast<int32_t>(records.size()) - 1;
  h.base_timestamp = base_timestamp;
  h.max_timestamp = max_timestamp;
  h.producer_id = options.producer_id;
  h.producer_epoch = options.producer_epoch;
  h.base_sequence = options.base_sequence;
  h.record_count = static_cast<int32_t>(records.size());
  WriteBatchHeader(h, &out);
  return out;
}

void WriteBatchHeader(const BatchHeader& h, std::string* batch) {
  char* p = batch->data();
  PutBigEndian(p, static_cast<uint64_t>(h.base_offset), 8);
  PutBigEndian(p + kBatchLengthOffset, batch->size() - kBatchLogOverhead, 4);
  PutBigEndian(p + kLeaderEpochOffset, static_cast<uint32_t>(h.partition_leader_epoch), 4);
  p[kMagicOffset] = static_cast<char>(kMagicV2);
  PutBigEndian(p + kAttributesOffset, static_cast<uint16_t>(h.attributes), 2);
  PutBigEndian(p + kLastOffsetDeltaOffset, static_cast<uint32_t>(h.last_offset_delta), 4);
  PutBigEndian(p + kBaseTimestampOffset, static_cast<uint64_t>(h.base_timestamp), 8);
  PutBigEndian(p + kMaxTimestampOffset, static_cast<uint64_t>(h.max_timestamp), 8);
  PutBigEndian(p + kProducerIdOffset, static_cast<uint64_t>(h.producer_id), 8);
  PutBigEndian(p + kProducerEpochOffset, static_cast<uint16_t>(h.producer_epoch), 2);
  PutBigEndian(p + kBaseSequenceOffset, static_cast<uint32_t>(h.base_sequence), 4);
  PutBigEndian(p + kRecordsCountOffset, static_cast<uint32_t>(h.record_count), 4);
  WriteCrc(p, batch->size());
}

}  // namespace runnel::protocol
