// RecordBatch v2: golden bytes built by hand from the layout, header rewrites,
// validation failures with Kafka's error classes, compressed batches and iteration.
#include "protocol/record_batch.h"

#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace runnel::protocol {
namespace {

std::string Bytes(std::initializer_list<uint8_t> b) { return std::string(b.begin(), b.end()); }

// Two records, laid out by hand:
//   offset 0, ts 1000, key "k", value "v1", no headers
//   offset 1, ts 1005, null key, value "hello", headers h="x" and n=null
const std::string kGolden =
    Bytes({// BaseOffset 0
           0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
           // BatchLength 78 = 90 - 12
           0x00, 0x00, 0x00, 0x4e,
           // PartitionLeaderEpoch -1
           0xff, 0xff, 0xff, 0xff,
           // Magic 2
           0x02,
           // CRC-32C of bytes 21..89 (computed independently)
           0x6c, 0xa3, 0x33, 0x40,
           // Attributes: no codec, CreateTime
           0x00, 0x00,
           // LastOffsetDelta 1
           0x00, 0x00, 0x00, 0x01,
           // BaseTimestamp 1000
           0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8,
           // MaxTimestamp 1005
           0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xed,
           // ProducerId -1, ProducerEpoch -1, BaseSequence -1
           0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
           // RecordsCount 2
           0x00, 0x00, 0x00, 0x02,
           // Record 0: Length 9 (zigzag 0x12), attributes 0, ts delta 0, offset delta 0,
           // key length 1 (0x02) "k", value length 2 (0x04) "v1", 0 headers.
           0x12, 0x00, 0x00, 0x00, 0x02, 'k', 0x04, 'v', '1', 0x00,
           // Record 1: Length 18 (0x24), attributes 0, ts delta 5 (0x0a), offset delta 1 (0x02),
           // key length -1 (0x01), value length 5 (0x0a) "hello", 2 headers (0x04):
           // "h" (0x02) -> "x" (0x02), "n" (0x02) -> null (0x01).
           0x24, 0x00, 0x0a, 0x02, 0x01, 0x0a, 'h', 'e', 'l', 'l', 'o', 0x04, 0x02, 'h', 0x02, 'x',
           0x02, 'n', 0x01});

std::vector<RecordToAdd> GoldenRecords() {
  std::vector<RecordToAdd> records(2);
  records[0].key = "k";
  records[0].value = "v1";
  records[0].timestamp = 1000;
  records[1].value = "hello";
  records[1].headers = {{"h", "x"}, {"n", std::nullopt}};
  records[1].timestamp = 1005;
  return records;
}

void Put32(std::string* b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*b)[at + i] = static_cast<char>(v >> (24 - 8 * i));
}

void FixCrc(std::string* b) {
  Put32(b, kCrcOffset, Crc32c(b->data() + kAttributesOffset, b->size() - kAttributesOffset));
}

absl::StatusCode ValidateCode(std::string_view b) { return ValidateBatch(b).code(); }

std::vector<RecordToAdd> ManyRecords(int n) {
  std::vector<RecordToAdd> records(n);
  for (int i = 0; i < n; ++i) {
    records[i].key = "key-" + std::to_string(i % 7);
    records[i].value = "value number " + std::to_string(i) + std::string(i % 50, 'x');
    if (i % 3 == 0) records[i].headers = {{"trace", "t" + std::to_string(i)}};
    if (i % 11 == 0) records[i].value.reset();
    records[i].timestamp = 1700000000000 + i * 3 - (i % 4);
  }
  return records;
}

void ExpectRecordsEqual(const std::vector<Record>& got, const std::vector<RecordToAdd>& want,
                        int64_t base_offset) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].offset, base_offset + static_cast<int64_t>(i));
    EXPECT_EQ(got[i].timestamp, want[i].timestamp);
    EXPECT_EQ(got[i].key.has_value(), want[i].key.has_value());
    if (got[i].key && want[i].key) {
      EXPECT_EQ(*got[i].key, *want[i].key);
    }
    EXPECT_EQ(got[i].value.has_value(), want[i].value.has_value());
    if (got[i].value && want[i].value) {
      EXPECT_EQ(*got[i].value, *want[i].value);
    }
    ASSERT_EQ(got[i].headers.size(), want[i].headers.size());
    for (size_t j = 0; j < got[i].headers.size(); ++j) {
      EXPECT_EQ(got[i].headers[j].key, want[i].headers[j].first);
      EXPECT_EQ(got[i].headers[j].value.has_value(), want[i].headers[j].second.has_value());
      if (got[i].headers[j].value && want[i].headers[j].second) {
        EXPECT_EQ(*got[i].headers[j].value, *want[i].headers[j].second);
      }
    }
  }
}

TEST(Crc32c, MatchesKnownVectors) {
  EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(Crc32c("", 0), 0u);
  // RFC 3720 B.4: 32 bytes of zeros.
  std::string zeros(32, '\0');
  EXPECT_EQ(Crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
}

TEST(RecordBatch, BuildBatchMatchesGoldenBytes) {
  ASSERT_EQ(kGolden.size(), 90u);
  std::string built = BuildBatch(GoldenRecords());
  EXPECT_EQ(built, kGolden);
  EXPECT_EQ(Crc32c(kGolden.data() + 21, kGolden.size() - 21), 0x6ca33340u);
  EXPECT_TRUE(ValidateBatch(kGolden).ok());
}

TEST(RecordBatch, ParsesGoldenHeader) {
  absl::StatusOr<BatchHeader> h = ParseBatchHeader(kGolden);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->base_offset, 0);
  EXPECT_EQ(h->batch_length, 78);
  EXPECT_EQ(h->partition_leader_epoch, -1);
  EXPECT_EQ(h->magic, 2);
  EXPECT_EQ(h->crc, 0x6ca33340u);
  EXPECT_EQ(h->attributes, 0);
  EXPECT_EQ(h->compression(), Compression::kNone);
  EXPECT_EQ(h->last_offset_delta, 1);
  EXPECT_EQ(h->base_timestamp, 1000);
  EXPECT_EQ(h->max_timestamp, 1005);
  EXPECT_EQ(h->producer_id, -1);
  EXPECT_EQ(h->producer_epoch, -1);
  EXPECT_EQ(h->base_sequence, -1);
  EXPECT_EQ(h->record_count, 2);
  EXPECT_EQ(h->total_size(), 90u);
}

TEST(RecordBatch, ReadsGoldenRecords) {
  std::string scratch;
  absl::StatusOr<std::vector<Record>> records = ReadRecords(kGolden, &scratch);
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 2u);
  const Record& a = (*records)[0];
  EXPECT_EQ(a.offset, 0);
  EXPECT_EQ(a.timestamp, 1000);
  ASSERT_TRUE(a.key.has_value());
  EXPECT_EQ(*a.key, "k");
  EXPECT_EQ(*a.value, "v1");
  EXPECT_TRUE(a.headers.empty());
  const Record& b = (*records)[1];
  EXPECT_EQ(b.offset, 1);
  EXPECT_EQ(b.timestamp, 1005);
  EXPECT_FALSE(b.key.has_value());
  EXPECT_EQ(*b.value, "hello");
  ASSERT_EQ(b.headers.size(), 2u);
  EXPECT_EQ(b.headers[0].key, "h");
  EXPECT_EQ(*b.headers[0].value, "x");
  EXPECT_EQ(b.headers[1].key, "n");
  EXPECT_FALSE(b.headers[1].value.has_value());
  // Uncompressed: the views point into the batch itself.
  EXPECT_EQ(b.value->data(), kGolden.data() + 77);
}

TEST(RecordBatch, BuildBatchWritesOptions) {
  BatchOptions options;
  options.base_offset = 1234567890123;
  options.producer_id = 77;
  options.producer_epoch = 3;
  options.base_sequence = 42;
  options.transactional = true;
  std::string batch = BuildBatch(GoldenRecords(), options);
  absl::StatusOr<BatchHeader> h = ParseBatchHeader(batch);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->base_offset, 1234567890123);
  EXPECT_EQ(h->producer_id, 77);
  EXPECT_EQ(h->producer_epoch, 3);
  EXPECT_EQ(h->base_sequence, 42);
  EXPECT_TRUE(h->is_transactional());
  EXPECT_FALSE(h->is_control());
  EXPECT_EQ(h->attributes, 0x10);
  EXPECT_EQ(h->last_offset(), 1234567890124);
  // The CRC does not cover BaseOffset, so the records part equals the golden batch's.
  EXPECT_EQ(batch.substr(61), kGolden.substr(61));
  EXPECT_TRUE(ValidateBatch(batch).ok());

  options = BatchOptions();
  options.control = true;
  h = ParseBatchHeader(BuildBatch(GoldenRecords(), options));
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->is_control());
  EXPECT_EQ(h->attributes, 0x20);
}

TEST(RecordBatch, TimestampsMayDecrease) {
  std::vector<RecordToAdd> records(3);
  records[0].timestamp = 500;
  records[1].timestamp = 900;
  records[2].timestamp = 100;  // negative delta
  std::string batch = BuildBatch(records);
  absl::StatusOr<BatchHeader> h = ParseBatchHeader(batch);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->base_timestamp, 500);
  EXPECT_EQ(h->max_timestamp, 900);
  std::string scratch;
  absl::StatusOr<std::vector<Record>> read = ReadRecords(batch, &scratch);
  ASSERT_TRUE(read.ok());
  ExpectRecordsEqual(*read, records, 0);
  EXPECT_FALSE((*read)[0].key.has_value());
  EXPECT_FALSE((*read)[0].value.has_value());
}

TEST(RecordBatch, RewritesOffsetAndEpochWithoutTouchingCrc) {
  std::string batch = kGolden;
  SetBaseOffset(batch.data(), 0x0102030405060708);
  SetPartitionLeaderEpoch(batch.data(), 9);
  EXPECT_EQ(batch.substr(0, 8), Bytes({1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(batch.substr(12, 4), Bytes({0, 0, 0, 9}));
  EXPECT_EQ(batch.substr(16), kGolden.substr(16));
  EXPECT_TRUE(ValidateBatch(batch).ok());
  std::string scratch;
  absl::StatusOr<std::vector<Record>> read = ReadRecords(batch, &scratch);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ((*read)[0].offset, 0x0102030405060708);
  EXPECT_EQ((*read)[1].offset, 0x0102030405060709);
}

TEST(RecordBatch, SetLogAppendTime) {
  std::string batch = kGolden;
  SetLogAppendTime(batch.data(), batch.size(), 5000);
  absl::StatusOr<BatchHeader> h = ParseBatchHeader(batch);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->log_append_time());
  EXPECT_EQ(h->attributes, 0x08);
  EXPECT_EQ(h->max_timestamp, 5000);
  EXPECT_EQ(h->base_timestamp, 1000);
  EXPECT_NE(h->crc, 0x6ca33340u);
  EXPECT_TRUE(ValidateBatch(batch).ok());
  std::string scratch;
  absl::StatusOr<std::vector<Record>> read = ReadRecords(batch, &scratch);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ((*read)[0].timestamp, 5000);
  EXPECT_EQ((*read)[1].timestamp, 5000);
}

TEST(RecordBatch, SetLogAppendTimeKeepsCodecAndFlags) {
  BatchOptions options;
  options.compression = Compression::kLz4;
  options.transactional = true;
  std::string batch = BuildBatch(ManyRecords(5), options);
  SetLogAppendTime(batch.data(), batch.size(), 42);
  absl::StatusOr<BatchHeader> h = ParseBatchHeader(batch);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->attributes, 0x10 | 0x08 | 3);
  EXPECT_TRUE(ValidateBatch(batch).ok());
}

// ---- validation failures ----

TEST(RecordBatchValidation, FlippedByteIsCrcError) {
  for (size_t at : {size_t{21}, size_t{30}, size_t{60}, size_t{75}, kGolden.size() - 1}) {
    std::string batch = kGolden;
    batch[at] ^= 0x01;
    absl::Status s = ValidateBatch(batch);
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << at << " " << s;
  }
  std::string batch = kGolden;
  batch[kCrcOffset + 2] ^= 0x80;  // the stored CRC itself
  EXPECT_EQ(ValidateCode(batch), absl::StatusCode::kDataLoss);
}

TEST(RecordBatchValidation, BadMagic) {
  std::string batch = kGolden;
  batch[kMagicOffset] = 1;  // a legacy message set: INVALID_RECORD in Kafka
  EXPECT_EQ(ParseBatchHeader(batch).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateCode(batch), absl::StatusCode::kInvalidArgument);
  batch[kMagicOffset] = 3;  // no such format: CORRUPT_MESSAGE
  EXPECT_EQ(ParseBatchHeader(batch).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ValidateCode(batch), absl::StatusCode::kDataLoss);
}

TEST(RecordBatchValidation, BatchLengthTooShortOrWrong) {
  std::string batch = kGolden;
  Put32(&batch, 8, 48);  // less than the 49 header bytes after BatchLength
  EXPECT_EQ(ParseBatchHeader(batch).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ValidateCode(batch), absl::StatusCode::kDataLoss);
  Put32(&batch, 8, 0xFFFFFFF0);  // negative
  EXPECT_EQ(ParseBatchHeader(batch).status().code(), absl::StatusCode::kDataLoss);
  Put32(&batch, 8, 77);  // one byte short of the data
  EXPECT_EQ(ValidateCode(batch), absl::StatusCode::kDataLoss);
  Put32(&batch, 8, 79);  // one byte past it
  EXPECT_EQ(ValidateCode(batch), absl::StatusCode::kDataLoss);
  std::string scratch;
  EXPECT_EQ(ReadRecords(batch, &scratch).status().code(), absl::StatusCode::kDataLoss);
  // Fewer bytes than a header.
  EXPECT_EQ(ParseBatchHeader(std::string_view(kGolden).substr(0, 60)).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(ValidateCode(std::string_view(kGolden).substr(0, 20)), absl::StatusCode::kDataLoss);
}

TEST(RecordBatchValidation, RecordCountMismatch) {
  std::string batch = kGolden;
  Put32(&batch, 57, 3);  // declares 3, holds 2
  Put32(&batch, 23, 2);
  FixCrc(&batch);
  EXPECT_EQ(ValidateCode(batch), absl::StatusCode::kInvalidArgument);
  std::string scratch;
  EXPECT_EQ(ReadRecords(batch, &scratch).status().code(), absl::StatusCode::kInvalidArgument);

  batch = kGolden;
  Put32(&batch, 57, 1);  // declares 1, holds 2
  Put32(&batch, 23, 0);
  FixCrc(&batch);
  EXPECT_EQ(ValidateCode(batch), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadRecords(batch, &scratch).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RecordBatchValidation, LastOffsetDeltaMustMatchCount) {
  std::string batch = kGolden;
  Put32(&batch, 23, 5);
  FixCrc(&batch);
  EXPECT_EQ(ValidateCode(batch), absl::StatusCode::kInvalidArgument);
}

TEST(RecordBatchValidation, OffsetDeltasMustBeConsecutive) {
  std::string batch = kGolden;
  ASSERT_EQ(batch[74], 0x02);  // record 1's offset delta (1)
  batch[74] = 0x04;            // now 2: deltas 0, 2
  FixCrc(&batch);
  EXPECT_EQ(ValidateCode(batch), absl::StatusCode::kInvalidArgument);
  // ReadRecords reports what is there.
  std::string scratch;
  absl::StatusOr<std::vector<Record>> read = ReadRecords(batch, &scratch);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ((*read)[1].offset, 2);

  batch = kGolden;
  batch[64] = 0x02;  // record 0's offset delta becomes 1: deltas 1, 1
  FixCrc(&batch);
  EXPECT_EQ(ValidateCode(batch), absl::StatusCode::kInvalidArgument);
}

TEST(RecordBatchValidation, MalformedRecords) {
  std::string batch = kGolden;
  batch[61] = 0x14;  // record 0 claims 10 bytes: its fields no longer fill it exactly
  FixCrc(&batch);
  EXPECT_EQ(ValidateCode(batch), absl::StatusCode::kInvalidArgument);

  batch = kGolden;
  batch[61] = 0x7e;  // record 0 claims 63 bytes, past the end of the batch
  FixCrc(&batch);
  EXPECT_EQ(ValidateCode(batch), absl::StatusCode::kInvalidArgument);

  batch = kGolden;
  batch[82] = 0x03;  // record 1's header count becomes -2
  FixCrc(&batch);
  EXPECT_EQ(ValidateCode(batch), absl::StatusCode::kInvalidArgument);

  batch = kGolden;
  batch[83] = 0x01;  // record 1's first header key length becomes -1
  FixCrc(&batch);
  EXPECT_EQ(ValidateCode(batch), absl::StatusCode::kInvalidArgument);
  std::string scratch;
  EXPECT_EQ(ReadRecords(batch, &scratch).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RecordBatchValidation, UnknownCodec) {
  std::string batch = kGolden;
  batch[22] = 0x05;
  FixCrc(&batch);
  EXPECT_EQ(ValidateCode(batch), absl::StatusCode::kInvalidArgument);
  std::string scratch;
  EXPECT_EQ(ReadRecords(batch, &scratch).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RecordBatchValidation, EmptyBatchIsRejectedButReadable) {
  std::string batch = BuildBatch({});
  absl::StatusOr<BatchHeader> h = ParseBatchHeader(batch);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(batch.size(), kBatchHeaderSize);
  EXPECT_EQ(h->record_count, 0);
  EXPECT_EQ(h->last_offset_delta, -1);
  EXPECT_EQ(h->base_timestamp, -1);
  EXPECT_EQ(h->max_timestamp, -1);
  EXPECT_EQ(ValidateCode(batch), absl::StatusCode::kInvalidArgument);
  std::string scratch;
  absl::StatusOr<std::vector<Record>> read = ReadRecords(batch, &scratch);
  ASSERT_TRUE(read.ok());
  EXPECT_TRUE(read->empty());
}

TEST(RecordBatchValidation, HugeDeclaredCountFailsCleanly) {
  std::string batch = kGolden;
  Put32(&batch, 57, 0x7fffffff);
  Put32(&batch, 23, 0x7ffffffe);
  FixCrc(&batch);
  EXPECT_EQ(ValidateCode(batch), absl::StatusCode::kInvalidArgument);
  std::string scratch;
  EXPECT_EQ(ReadRecords(batch, &scratch).status().code(), absl::StatusCode::kInvalidArgument);
}

// ---- compressed batches ----

class CompressedBatchTest : public ::testing::TestWithParam<Compression> {};

TEST_P(CompressedBatchTest, RoundTrips) {
  std::vector<RecordToAdd> records = ManyRecords(500);
  BatchOptions options;
  options.compression = GetParam();
  options.base_offset = 1000;
  std::string batch = BuildBatch(records, options);
  std::string plain = BuildBatch(records, BatchOptions{.base_offset = 1000});
  EXPECT_LT(batch.size(), plain.size() / 2);
  absl::StatusOr<BatchHeader> h = ParseBatchHeader(batch);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->compression(), GetParam());
  EXPECT_EQ(h->record_count, 500);
  EXPECT_EQ(h->last_offset_delta, 499);
  EXPECT_EQ(h->base_timestamp, records[0].timestamp);
  EXPECT_EQ(h->total_size(), batch.size());
  EXPECT_TRUE(ValidateBatch(batch).ok());
  // The compressed block holds exactly the uncompressed batch's records section.
  absl::StatusOr<std::string> section =
      Decompress(GetParam(), std::string_view(batch).substr(61), 1 << 20);
  ASSERT_TRUE(section.ok());
  EXPECT_EQ(*section, plain.substr(61));

  std::string scratch;
  absl::StatusOr<std::vector<Record>> read = ReadRecords(batch, &scratch);
  ASSERT_TRUE(read.ok()) << read.status();
  ExpectRecordsEqual(*read, records, 1000);
  // Views point into scratch, not into the batch.
  const char* v = (*read)[1].value->data();
  EXPECT_TRUE(v >= scratch.data() && v < scratch.data() + scratch.size());
}

TEST_P(CompressedBatchTest, DecompressionBoundApplies) {
  BatchOptions options;
  options.compression = GetParam();
  std::string batch = BuildBatch(ManyRecords(500), options);
  size_t plain_size = BuildBatch(ManyRecords(500)).size() - kBatchHeaderSize;
  std::string scratch;
  EXPECT_TRUE(ReadRecords(batch, &scratch, plain_size).ok());
  EXPECT_EQ(ReadRecords(batch, &scratch, plain_size - 1).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST_P(CompressedBatchTest, TruncatedCompressedBlockFailsOnRead) {
  BatchOptions options;
  options.compression = GetParam();
  std::string batch = BuildBatch(ManyRecords(200), options);
  batch.resize(61 + (batch.size() - 61) / 2);
  Put32(&batch, 8, static_cast<uint32_t>(batch.size() - 12));
  FixCrc(&batch);
  // Validation does not decompress, but reading must fail cleanly.
  EXPECT_TRUE(ValidateBatch(batch).ok());
  std::string scratch;
  absl::StatusOr<std::vector<Record>> read = ReadRecords(batch, &scratch);
  EXPECT_FALSE(read.ok());
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, CompressedBatchTest,
                         ::testing::Values(Compression::kGzip, Compression::kSnappy,
                                           Compression::kLz4, Compression::kZstd),
                         [](const auto& info) {
                           return std::to_string(static_cast<int>(info.param));
                         });

// ---- iteration ----

TEST(BatchIterator, SplitsBatchesAndStopsAtTruncatedTail) {
  BatchOptions options;
  options.base_offset = 10;
  std::string a = BuildBatch(GoldenRecords(), options);
  options.base_offset = 12;
  options.compression = Compression::kZstd;
  std::string b = BuildBatch(ManyRecords(20), options);
  options.base_offset = 32;
  options.compression = Compression::kNone;
  std::string c = BuildBatch(ManyRecords(3), options);
  std::string whole = a + b + c;

  for (size_t cut : {size_t{0}, size_t{5}, size_t{60}, size_t{61}, c.size() - 1}) {
    std::string records = a + b + c.substr(0, cut);
    BatchIterator it(records);
    std::string_view batch;
    BatchHeader h;
    ASSERT_TRUE(it.Next(&batch, &h));
    EXPECT_EQ(batch, a);
    EXPECT_EQ(h.base_offset, 10);
    ASSERT_TRUE(it.Next(&batch, &h));
    EXPECT_EQ(batch, b);
    EXPECT_EQ(h.base_offset, 12);
    EXPECT_EQ(h.record_count, 20);
    EXPECT_EQ(h.compression(), Compression::kZstd);
    EXPECT_FALSE(it.Next(&batch, &h)) << cut;
    EXPECT_EQ(it.truncated(), cut != 0) << cut;
    EXPECT_FALSE(it.Next(&batch, &h));
  }

  BatchIterator it(whole);
  std::string_view batch;
  BatchHeader h;
  std::vector<int64_t> offsets;
  while (it.Next(&batch, &h)) offsets.push_back(h.base_offset);
  EXPECT_EQ(offsets, (std::vector<int64_t>{10, 12, 32}));
  EXPECT_FALSE(it.truncated());
}

TEST(BatchIterator, EmptyInput) {
  BatchIterator it("");
  std::string_view batch;
  BatchHeader h;
  EXPECT_FALSE(it.Next(&batch, &h));
  EXPECT_FALSE(it.truncated());
}

TEST(BatchIterator, StopsAtBadHeader) {
  std::string records = kGolden + kGolden;
  records[90 + kMagicOffset] = 0;
  BatchIterator it(records);
  std::string_view batch;
  BatchHeader h;
  EXPECT_TRUE(it.Next(&batch, &h));
  EXPECT_FALSE(it.Next(&batch, &h));
  EXPECT_TRUE(it.truncated());
}

}  // namespace
}  // namespace runnel::protocol

namespace runnel::protocol {
namespace {

void PutBigEndian(std::string& b, size_t at, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) b[at + i] = static_cast<char>(v >> (8 * (n - 1 - i)));
}

void RewriteCrc(std::string& b) {
  PutBigEndian(b, kCrcOffset, Crc32c(b.data() + kAttributesOffset, b.size() - kAttributesOffset),
               4);
}

TEST(RecordBatchValidation, CompressedRecordsAreCheckedOnlyWithScratch) {
  std::vector<RecordToAdd> records(2);
  records[0].value = "a";
  records[1].value = "b";
  BatchOptions options;
  options.compression = Compression::kZstd;
  std::string batch = BuildBatch(records, options);
  std::string scratch;
  ASSERT_TRUE(ValidateBatch(batch, &scratch).ok());

  // Claim three records while the compressed block holds two, with a valid CRC.
  PutBigEndian(batch, 57, 3, 4);  // RecordsCount
  PutBigEndian(batch, 23, 2, 4);  // LastOffsetDelta
  RewriteCrc(batch);
  EXPECT_TRUE(ValidateBatch(batch).ok());  // header-level checks only
  EXPECT_EQ(ValidateBatch(batch, &scratch).code(), absl::StatusCode::kInvalidArgument);

  // A block that does not decompress, with a valid CRC.
  std::string garbage = BuildBatch(records, options);
  for (size_t i = kBatchHeaderSize; i < garbage.size(); ++i) garbage[i] = 'x';
  RewriteCrc(garbage);
  EXPECT_EQ(ValidateBatch(garbage, &scratch).code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace runnel::protocol
