// Segment, OffsetIndex and TimeIndex: file names, appends, index bytes, reads, recovery.
#include "storage/segment.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "protocol/record_batch.h"

namespace runnel::storage {
namespace {

namespace fs = std::filesystem;
using protocol::BatchHeader;

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string ReadRange(const FileRange& r) {
  std::string out(r.length, '\0');
  EXPECT_EQ(::pread(r.fd, out.data(), out.size(), static_cast<off_t>(r.position)),
            static_cast<ssize_t>(r.length));
  return out;
}

// A batch of `n` records with 8-byte values; record i has timestamp timestamps[i].
std::string MakeBatch(const std::vector<int64_t>& timestamps) {
  std::vector<protocol::RecordToAdd> records;
  for (size_t i = 0; i < timestamps.size(); ++i) {
    protocol::RecordToAdd r;
    r.value = "value-" + std::to_string(10 + i % 90);
    r.timestamp = timestamps[i];
    records.push_back(std::move(r));
  }
  return protocol::BuildBatch(records);
}

std::string BigEndian(uint64_t v, int bytes) {
  std::string out;
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i)));
  return out;
}

class SegmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "segment_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Appends `batch` at `base_offset` as PartitionLog would, returning the stored bytes.
  std::string Append(Segment& segment, std::string batch, int64_t base_offset) {
    protocol::SetBaseOffset(batch.data(), base_offset);
    absl::StatusOr<BatchHeader> h = protocol::ParseBatchHeader(batch);
    EXPECT_TRUE(h.ok());
    EXPECT_TRUE(segment.Append(batch.data(), batch.size(), {*h}).ok());
    return batch;
  }

  fs::path dir_;
};

TEST_F(SegmentTest, FileNames) {
  EXPECT_EQ(Segment::FileName(0, ".log"), "00000000000000000000.log");
  EXPECT_EQ(Segment::FileName(1234567, ".timeindex"), "00000000000001234567.timeindex");
  EXPECT_EQ(Segment::ParseFileName("00000000000000000042.log", ".log"), 42);
  EXPECT_EQ(Segment::ParseFileName("00000000000000000042.index", ".log"), std::nullopt);
  EXPECT_EQ(Segment::ParseFileName("0000000000000000042.log", ".log"), std::nullopt);
  EXPECT_EQ(Segment::ParseFileName("0000000000000000004x.log", ".log"), std::nullopt);
  EXPECT_EQ(Segment::ParseFileName("+0000000000000000042.log", ".log"), std::nullopt);
}

TEST_F(SegmentTest, AppendWritesBatchesVerbatimAndTracksOffsets) {
  auto segment = Segment::Create(dir_, 100, LogConfig{});
  ASSERT_TRUE(segment.ok()) << segment.status();
  EXPECT_TRUE(fs::exists(dir_ / "00000000000000000100.log"));
  EXPECT_TRUE(fs::exists(dir_ / "00000000000000000100.index"));
  EXPECT_TRUE(fs::exists(dir_ / "00000000000000000100.timeindex"));
  EXPECT_EQ((*segment)->next_offset(), 100);

  std::string a = Append(**segment, MakeBatch({1, 2, 3}), 100);
  std::string b = Append(**segment, MakeBatch({4, 5}), 103);
  EXPECT_EQ((*segment)->next_offset(), 105);
  EXPECT_EQ((*segment)->size(), a.size() + b.size());
  EXPECT_EQ(Slurp(dir_ / "00000000000000000100.log"), a + b);
  EXPECT_EQ((*segment)->max_timestamp(), 5);
  EXPECT_EQ((*segment)->offset_of_max_timestamp(), 104);

  auto found = (*segment)->FindBatch(104);
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->position, a.size());
  EXPECT_EQ((*found)->header.base_offset, 103);
  auto none = (*segment)->FindBatch(105);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_F(SegmentTest, SparseIndexEntriesFollowKafkaRule) {
  const std::string sample = MakeBatch({0, 0});
  const uint64_t s = sample.size();
  LogConfig config;
  // More than one batch but less than two: an entry every second batch (2, 4, 6).
  config.index_interval_bytes = static_cast<int32_t>(s + s / 2);
  auto segment = Segment::Create(dir_, 0, config);
  ASSERT_TRUE(segment.ok());
  for (int i = 0; i < 7; ++i) {
    std::string batch = Append(**segment, MakeBatch({1000 + 10 * i, 1005 + 10 * i}), 2 * i);
    ASSERT_EQ(batch.size(), s);
  }
  const OffsetIndex& index = (*segment)->offset_index();
  ASSERT_EQ(index.size(), 3u);
  EXPECT_EQ(index.entry(0), (OffsetIndex::Entry{5, 2 * s}));
  EXPECT_EQ(index.entry(1), (OffsetIndex::Entry{9, 4 * s}));
  EXPECT_EQ(index.entry(2), (OffsetIndex::Entry{13, 6 * s}));
  EXPECT_EQ(Slurp(dir_ / "00000000000000000000.index"), BigEndian(5, 4) + BigEndian(2 * s, 4) +
                                                            BigEndian(9, 4) + BigEndian(4 * s, 4) +
                                                            BigEndian(13, 4) + BigEndian(6 * s, 4));
  // The time index records the max timestamp so far and the batch's last offset.
  EXPECT_EQ(Slurp(dir_ / "00000000000000000000.timeindex"),
            BigEndian(1025, 8) + BigEndian(5, 4) + BigEndian(1045, 8) + BigEndian(9, 4) +
                BigEndian(1065, 8) + BigEndian(13, 4));

  EXPECT_EQ(index.Lookup(4), (OffsetIndex::Entry{0, 0}));
  EXPECT_EQ(index.Lookup(5), (OffsetIndex::Entry{5, 2 * s}));
  EXPECT_EQ(index.Lookup(12), (OffsetIndex::Entry{9, 4 * s}));
  EXPECT_EQ(index.Lookup(100), (OffsetIndex::Entry{13, 6 * s}));
  EXPECT_EQ(index.FloorPosition(3 * s), 2 * s);
  EXPECT_EQ((*segment)->time_index().Lookup(1044), (TimeIndex::Entry{1025, 5}));
  EXPECT_EQ((*segment)->time_index().Lookup(999), (TimeIndex::Entry{-1, 0}));

  // Every offset is found in the right batch despite the sparse index.
  for (int64_t offset = 0; offset < 14; ++offset) {
    auto found = (*segment)->FindBatch(offset);
    ASSERT_TRUE(found.ok() && found->has_value());
    EXPECT_EQ((*found)->position, static_cast<uint64_t>(offset / 2) * s) << offset;
  }

  // Rolling off writes the max timestamp as a final time index entry.
  ASSERT_TRUE((*segment)->OnBecomeInactive().ok());
  EXPECT_EQ((*segment)->time_index().last_entry(), (TimeIndex::Entry{1065, 13}));
}

TEST_F(SegmentTest, IndexEntryNeedsMoreThanTheInterval) {
  const uint64_t s = MakeBatch({0}).size();
  LogConfig config;
  config.index_interval_bytes = static_cast<int32_t>(2 * s);  // exactly two batches
  auto segment = Segment::Create(dir_, 0, config);
  ASSERT_TRUE(segment.ok());
  for (int i = 0; i < 7; ++i) Append(**segment, MakeBatch({i}), i);
  // Two batches since the last entry are not enough; three are (Kafka uses ">").
  const OffsetIndex& index = (*segment)->offset_index();
  ASSERT_EQ(index.size(), 2u);
  EXPECT_EQ(index.entry(0), (OffsetIndex::Entry{3, 3 * s}));
  EXPECT_EQ(index.entry(1), (OffsetIndex::Entry{6, 6 * s}));
  const std::string bytes = Slurp(dir_ / "00000000000000000000.index");
  segment->reset();

  // Rebuilding on open applies the same rule.
  uint64_t truncated = 0;
  auto recovered = Segment::Recover(dir_, 0, config, &truncated);
  ASSERT_TRUE(recovered.ok());
  EXPECT_EQ((*recovered)->offset_index().size(), 2u);
  EXPECT_EQ(Slurp(dir_ / "00000000000000000000.index"), bytes);
}

TEST_F(SegmentTest, RecoverRebuildsTheSameIndexes) {
  LogConfig config;
  config.index_interval_bytes = 150;
  std::string index_bytes;
  int64_t offset = 10;
  {
    auto segment = Segment::Create(dir_, 10, config);
    ASSERT_TRUE(segment.ok());
    for (int i = 0; i < 20; ++i) {
      std::vector<int64_t> ts(1 + i % 3, 500 + i);
      Append(**segment, MakeBatch(ts), offset);
      offset += static_cast<int64_t>(ts.size());
    }
    ASSERT_GT((*segment)->offset_index().size(), 3u);
    ASSERT_TRUE((*segment)->OnBecomeInactive().ok());
    index_bytes = Slurp(dir_ / "00000000000000000010.index");
  }
  std::string timeindex_bytes = Slurp(dir_ / "00000000000000000010.timeindex");
  fs::remove(dir_ / "00000000000000000010.index");
  fs::resize_file(dir_ / "00000000000000000010.timeindex", 5);

  uint64_t truncated = 99;
  auto segment = Segment::Recover(dir_, 10, config, &truncated);
  ASSERT_TRUE(segment.ok()) << segment.status();
  EXPECT_EQ(truncated, 0u);
  EXPECT_EQ((*segment)->next_offset(), offset);
  EXPECT_EQ(offset, 10 + 39);
  EXPECT_EQ((*segment)->max_timestamp(), 519);
  EXPECT_EQ(Slurp(dir_ / "00000000000000000010.index"), index_bytes);
  EXPECT_EQ(Slurp(dir_ / "00000000000000000010.timeindex"), timeindex_bytes);
}

TEST_F(SegmentTest, RecoverTruncatesAtFirstInvalidByte) {
  std::string a, b, c;
  {
    auto segment = Segment::Create(dir_, 0, LogConfig{});
    ASSERT_TRUE(segment.ok());
    a = Append(**segment, MakeBatch({1, 2}), 0);
    b = Append(**segment, MakeBatch({3}), 2);
    c = Append(**segment, MakeBatch({4, 5, 6}), 3);
  }
  const fs::path log = dir_ / "00000000000000000000.log";
  const std::string good = a + b + c;

  struct Case {
    std::string name;
    std::string contents;
    uint64_t keep;
    int64_t next_offset;
  };
  std::string bad_crc = good;
  bad_crc[a.size() + b.size() - 1] ^= 0x01;  // last byte of b's records
  std::string bad_offsets = good;
  protocol::SetBaseOffset(bad_offsets.data() + a.size() + b.size(), 1);  // c overlaps a
  std::string bad_magic = good;
  bad_magic[a.size() + protocol::kMagicOffset] = 1;
  std::vector<Case> cases = {
      {"intact", good, good.size(), 6},
      {"short header", good + std::string(40, '\0'), good.size(), 6},
      {"half a batch", good + c.substr(0, c.size() / 2), good.size(), 6},
      {"zero length", good + std::string(61, '\0'), good.size(), 6},
      {"crc", bad_crc, a.size(), 2},
      {"offsets", bad_offsets, a.size() + b.size(), 3},
      {"magic", bad_magic, a.size(), 2},
  };
  for (const Case& t : cases) {
    std::ofstream(log, std::ios::binary | std::ios::trunc) << t.contents;
    uint64_t truncated = 0;
    auto segment = Segment::Recover(dir_, 0, LogConfig{}, &truncated);
    ASSERT_TRUE(segment.ok()) << t.name << ": " << segment.status();
    EXPECT_EQ(truncated, t.contents.size() - t.keep) << t.name;
    EXPECT_EQ((*segment)->size(), t.keep) << t.name;
    EXPECT_EQ((*segment)->next_offset(), t.next_offset) << t.name;
    EXPECT_EQ(fs::file_size(log), t.keep) << t.name;
    EXPECT_EQ(Slurp(log), good.substr(0, t.keep)) << t.name;
  }
}

TEST_F(SegmentTest, ReadReturnsWholeBatchesWithinMaxBytes) {
  LogConfig config;
  config.index_interval_bytes = 1;  // index every batch, to exercise the floor search
  auto segment = Segment::Create(dir_, 0, config);
  ASSERT_TRUE(segment.ok());
  std::string a = Append(**segment, MakeBatch({1, 2, 3}), 0);
  std::string b = Append(**segment, MakeBatch({4}), 3);
  std::string c = Append(**segment, MakeBatch({5, 6}), 4);

  auto read = [&](int64_t offset, uint64_t max_bytes, bool min_one) {
    auto r = (*segment)->Read(offset, max_bytes, min_one);
    EXPECT_TRUE(r.ok());
    EXPECT_TRUE(r->has_value());
    return ReadRange(**r);
  };
  EXPECT_EQ(read(0, 1 << 20, false), a + b + c);
  EXPECT_EQ(read(1, 1 << 20, false), a + b + c);  // mid-batch: from the batch holding it
  EXPECT_EQ(read(3, 1 << 20, false), b + c);
  EXPECT_EQ(read(5, 1 << 20, false), c);
  EXPECT_EQ(read(0, a.size() + b.size() + c.size() - 1, false), a + b);
  EXPECT_EQ(read(0, a.size() + b.size(), false), a + b);
  EXPECT_EQ(read(0, a.size() + 1, false), a);
  EXPECT_EQ(read(0, a.size() - 1, false), "");
  EXPECT_EQ(read(0, a.size() - 1, true), a);  // KIP-74
  EXPECT_EQ(read(0, 0, true), a);
  auto past = (*segment)->Read(6, 100, true);
  ASSERT_TRUE(past.ok());
  EXPECT_FALSE(past->has_value());
}

TEST_F(SegmentTest, TimestampLookupsDecodeRecords) {
  LogConfig config;
  config.index_interval_bytes = 1;
  auto segment = Segment::Create(dir_, 0, config);
  ASSERT_TRUE(segment.ok());
  Append(**segment, MakeBatch({100, 300, 200}), 0);
  Append(**segment, MakeBatch({400, 900, 500}), 3);
  Append(**segment, MakeBatch({600, 900}), 6);

  auto find = [&](int64_t ts, int64_t start = 0) {
    auto r = (*segment)->FindOffsetByTimestamp(ts, start);
    EXPECT_TRUE(r.ok()) << r.status();
    return *r;
  };
  using P = std::pair<int64_t, int64_t>;
  EXPECT_EQ(find(0), P(0, 100));
  EXPECT_EQ(find(100), P(0, 100));
  EXPECT_EQ(find(150), P(1, 300));  // a record inside the first batch
  EXPECT_EQ(find(301), P(3, 400));
  EXPECT_EQ(find(450), P(4, 900));
  EXPECT_EQ(find(600, 5), P(6, 600));  // offset 4 has 900 but is before the start
  EXPECT_EQ(find(901), std::nullopt);
  EXPECT_EQ((*segment)->max_timestamp(), 900);
  EXPECT_EQ((*segment)->offset_of_max_timestamp(), 5);
  auto max_offset = (*segment)->OffsetOfMaxTimestampRecord();
  ASSERT_TRUE(max_offset.ok());
  EXPECT_EQ(*max_offset, 4);  // the record, not the batch's last offset
}

TEST_F(SegmentTest, DeletedSegmentStaysReadableThroughRange) {
  auto segment = Segment::Create(dir_, 0, LogConfig{});
  ASSERT_TRUE(segment.ok());
  std::string a = Append(**segment, MakeBatch({1}), 0);
  auto range = (*segment)->Read(0, 1 << 20, false);
  ASSERT_TRUE(range.ok() && range->has_value());
  FileRange kept = **range;
  ASSERT_TRUE((*segment)->Delete().ok());
  segment->reset();
  EXPECT_FALSE(fs::exists(dir_ / "00000000000000000000.log"));
  EXPECT_FALSE(fs::exists(dir_ / "00000000000000000000.index"));
  EXPECT_EQ(ReadRange(kept), a);
}

}  // namespace
}  // namespace runnel::storage
