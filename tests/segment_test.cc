// Segment, OffsetIndex and TimeIndex: file names, appends, index bytes, reads, recovery.
#include "storage/segment.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "protocol/record_batch.h"
#include "tests/slurp.h"

namespace runnel::storage {
namespace {

namespace fs = std::filesystem;
using protocol::BatchHeader;

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
  // The files are preallocated to segment.index.bytes (rounded down to whole entries);
  // the entries lead, zeros follow.
  const std::string offset_entries = BigEndian(5, 4) + BigEndian(2 * s, 4) + BigEndian(9, 4) +
                                     BigEndian(4 * s, 4) + BigEndian(13, 4) + BigEndian(6 * s, 4);
  std::string index_file = Slurp(dir_ / "00000000000000000000.index");
  ASSERT_EQ(index_file.size(), 10485760u);
  EXPECT_EQ(index_file.substr(0, 24), offset_entries);
  EXPECT_EQ(index_file.find_first_not_of('\0', 24), std::string::npos);
  // The time index records the max timestamp so far and the batch's last offset.
  const std::string time_entries = BigEndian(1025, 8) + BigEndian(5, 4) + BigEndian(1045, 8) +
                                   BigEndian(9, 4) + BigEndian(1065, 8) + BigEndian(13, 4);
  std::string timeindex_file = Slurp(dir_ / "00000000000000000000.timeindex");
  ASSERT_EQ(timeindex_file.size(), 10485760u / 12 * 12);
  EXPECT_EQ(timeindex_file.substr(0, 36), time_entries);
  EXPECT_EQ(timeindex_file.find_first_not_of('\0', 36), std::string::npos);

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

  // Rolling off writes the max timestamp as a final time index entry (here the same as
  // the last one, so none) and trims both files to their entries.
  ASSERT_TRUE(Append(**segment, MakeBatch({1070, 1071}), 14).size() == s);  // not indexed: 1071 new
  ASSERT_TRUE((*segment)->OnBecomeInactive().ok());
  EXPECT_EQ((*segment)->time_index().last_entry(), (TimeIndex::Entry{1071, 15}));
  EXPECT_EQ(Slurp(dir_ / "00000000000000000000.index"), offset_entries);
  EXPECT_EQ(Slurp(dir_ / "00000000000000000000.timeindex"),
            time_entries + BigEndian(1071, 8) + BigEndian(15, 4));
  EXPECT_EQ((*segment)->offset_index().file_bytes(), 24u);
  EXPECT_EQ((*segment)->time_index().file_bytes(), 48u);
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
  ASSERT_TRUE((*segment)->Close().ok());
  const std::string bytes = Slurp(dir_ / "00000000000000000000.index");
  EXPECT_EQ(bytes, BigEndian(3, 4) + BigEndian(3 * s, 4) + BigEndian(6, 4) + BigEndian(6 * s, 4));
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

// --- Load: the fast path after a clean stop, and its fallbacks. ---

uint32_t BigEndianAt(const std::string& bytes, size_t at) {
  uint32_t v = 0;
  for (size_t i = at; i < at + 4; ++i) v = (v << 8) | static_cast<uint8_t>(bytes[i]);
  return v;
}

// A copy of every regular file of `from` in `to` (which is created).
void CopyDir(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(from)) {
    if (e.is_regular_file()) fs::copy_file(e.path(), to / e.path().filename());
  }
}

void WriteFile(const fs::path& path, const std::string& contents) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
}

// Every observable of two segments over the same data must agree.
void ExpectSameSegment(const Segment& a, const Segment& b) {
  EXPECT_EQ(a.base_offset(), b.base_offset());
  EXPECT_EQ(a.size(), b.size());
  EXPECT_EQ(a.next_offset(), b.next_offset());
  EXPECT_EQ(a.max_timestamp(), b.max_timestamp());
  EXPECT_EQ(a.offset_of_max_timestamp(), b.offset_of_max_timestamp());
  auto max_a = a.OffsetOfMaxTimestampRecord();
  auto max_b = b.OffsetOfMaxTimestampRecord();
  ASSERT_TRUE(max_a.ok() && max_b.ok());
  EXPECT_EQ(*max_a, *max_b);
  EXPECT_EQ(a.rolling_timestamp(), b.rolling_timestamp());
  ASSERT_EQ(a.offset_index().size(), b.offset_index().size());
  for (size_t i = 0; i < a.offset_index().size(); ++i) {
    EXPECT_EQ(a.offset_index().entry(i), b.offset_index().entry(i)) << i;
  }
  ASSERT_EQ(a.time_index().size(), b.time_index().size());
  for (size_t i = 0; i < a.time_index().size(); ++i) {
    EXPECT_EQ(a.time_index().entry(i), b.time_index().entry(i)) << i;
  }
  for (int64_t offset = a.base_offset(); offset <= a.next_offset(); ++offset) {
    auto fa = a.FindBatch(offset);
    auto fb = b.FindBatch(offset);
    ASSERT_TRUE(fa.ok() && fb.ok()) << offset;
    ASSERT_EQ(fa->has_value(), fb->has_value()) << offset;
    if (fa->has_value()) {
      EXPECT_EQ((*fa)->position, (*fb)->position) << offset;
      EXPECT_EQ((*fa)->header.base_offset, (*fb)->header.base_offset) << offset;
    }
    for (uint64_t max_bytes : {uint64_t{0}, uint64_t{300}, uint64_t{1} << 20}) {
      auto ra = a.Read(offset, max_bytes, true);
      auto rb = b.Read(offset, max_bytes, true);
      ASSERT_TRUE(ra.ok() && rb.ok()) << offset;
      ASSERT_EQ(ra->has_value(), rb->has_value()) << offset;
      if (ra->has_value()) {
        EXPECT_EQ((*ra)->position, (*rb)->position) << offset;
        EXPECT_EQ(ReadRange(**ra), ReadRange(**rb)) << offset << " " << max_bytes;
      }
    }
  }
  for (int64_t ts = 0; ts < 1200; ts += 7) {
    auto ta = a.FindOffsetByTimestamp(ts, a.base_offset());
    auto tb = b.FindOffsetByTimestamp(ts, b.base_offset());
    ASSERT_TRUE(ta.ok() && tb.ok()) << ts;
    EXPECT_EQ(*ta, *tb) << ts;
  }
}

class SegmentLoadTest : public SegmentTest {
 protected:
  // 30 batches at base 50 with timestamps that rise, then fall back (the maximum, 999,
  // sits in batch 9, far before the tail), then rise a little again. Closed cleanly.
  void WriteSegment() {
    config_.index_interval_bytes = 250;
    auto segment = Segment::Create(dir_, 50, config_);
    ASSERT_TRUE(segment.ok());
    int64_t offset = 50;
    for (int i = 0; i < 30; ++i) {
      int64_t t = i < 10 ? 900 + 11 * i : 300 + i;
      std::vector<int64_t> ts(1 + i % 3, t);
      if (i % 3 == 2) ts[1] = t - 5;  // the batch max is not its last record's
      batches_.push_back(Append(**segment, MakeBatch(ts), offset));
      offset += static_cast<int64_t>(ts.size());
    }
    end_offset_ = offset;
    ASSERT_GT((*segment)->offset_index().size(), 5u);
    ASSERT_TRUE((*segment)->Close().ok());
  }
  std::string LogBytes() const {
    std::string all;
    for (const std::string& b : batches_) all += b;
    return all;
  }

  LogConfig config_;
  std::vector<std::string> batches_;
  int64_t end_offset_ = 0;
  const fs::path log_ = "00000000000000000050.log";
  const fs::path index_ = "00000000000000000050.index";
  const fs::path timeindex_ = "00000000000000000050.timeindex";
};

TEST_F(SegmentLoadTest, CleanSegmentLoadsLikeRecoverReadingOnlyTheTail) {
  WriteSegment();
  const std::string index_bytes = Slurp(dir_ / index_);
  const std::string timeindex_bytes = Slurp(dir_ / timeindex_);
  ASSERT_EQ(index_bytes.size() % 8, 0u);
  ASSERT_EQ(Slurp(dir_ / log_), LogBytes());
  const fs::path copy = dir_ / "copy";
  CopyDir(dir_, copy);

  // Only the tail is read: a flipped byte in the first batch goes unnoticed by Load (it
  // would make Recover truncate everything), though its header is read lazily for
  // rolling_timestamp().
  const fs::path flipped = dir_ / "flipped";
  CopyDir(dir_, flipped);
  std::string damaged = LogBytes();
  damaged[batches_[0].size() - 1] ^= 0x20;
  WriteFile(flipped / log_, damaged);

  Segment::LoadInfo info;
  info.recovered = true;
  auto loaded = Segment::Load(dir_, 50, config_, &info);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_FALSE(info.recovered) << info.reason;
  EXPECT_EQ(info.truncated_bytes, 0u);
  uint64_t truncated = 99;
  auto recovered = Segment::Recover(copy, 50, config_, &truncated);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_EQ(truncated, 0u);

  EXPECT_EQ((*loaded)->size(), LogBytes().size());
  EXPECT_EQ((*loaded)->next_offset(), end_offset_);
  EXPECT_EQ((*loaded)->max_timestamp(), 999);
  EXPECT_EQ((*loaded)->offset_of_max_timestamp(), 50 + 1 + 2 + 3 + 1 + 2 + 3 + 1 + 2 + 3 + 0);
  EXPECT_EQ((*loaded)->rolling_timestamp(), 900);
  ExpectSameSegment(**loaded, **recovered);
  // Load leaves the files alone, and Recover rebuilds the same ones.
  EXPECT_EQ(Slurp(dir_ / index_), index_bytes);
  EXPECT_EQ(Slurp(dir_ / timeindex_), timeindex_bytes);
  EXPECT_EQ(Slurp(copy / index_), index_bytes);
  EXPECT_EQ(Slurp(copy / timeindex_), timeindex_bytes);

  auto blind = Segment::Load(flipped, 50, config_, &info);
  ASSERT_TRUE(blind.ok());
  EXPECT_FALSE(info.recovered);
  EXPECT_EQ((*blind)->size(), damaged.size());
  EXPECT_EQ((*blind)->next_offset(), end_offset_);

  // Both keep appending alike; the loaded index grows back to its preallocated size.
  for (int i = 0; i < 6; ++i) {
    std::string batch = MakeBatch({1000 + i, 400});
    Append(**loaded, batch, end_offset_ + 2 * i);
    Append(**recovered, batch, end_offset_ + 2 * i);
  }
  EXPECT_GT((*loaded)->offset_index().size(), index_bytes.size() / 8);
  EXPECT_EQ((*loaded)->offset_index().file_bytes(), 10485760u);
  ExpectSameSegment(**loaded, **recovered);
  ASSERT_TRUE((*loaded)->Close().ok());
  ASSERT_TRUE((*recovered)->Close().ok());
  EXPECT_EQ(Slurp(dir_ / index_), Slurp(copy / index_));
  EXPECT_EQ(Slurp(dir_ / timeindex_), Slurp(copy / timeindex_));
  EXPECT_EQ(Slurp(dir_ / index_).size(), fs::file_size(dir_ / index_));
  EXPECT_EQ(fs::file_size(dir_ / index_) % 8, 0u);
}

TEST_F(SegmentLoadTest, EmptyAndSmallSegmentsLoad) {
  {
    auto empty = Segment::Create(dir_, 7, LogConfig{});
    ASSERT_TRUE(empty.ok());
    ASSERT_TRUE((*empty)->Close().ok());
    EXPECT_EQ(fs::file_size(dir_ / "00000000000000000007.index"), 0u);
    EXPECT_EQ(fs::file_size(dir_ / "00000000000000000007.timeindex"), 0u);
  }
  Segment::LoadInfo info;
  auto empty = Segment::Load(dir_, 7, LogConfig{}, &info);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_FALSE(info.recovered) << info.reason;
  EXPECT_EQ((*empty)->size(), 0u);
  EXPECT_EQ((*empty)->next_offset(), 7);
  EXPECT_EQ((*empty)->max_timestamp(), -1);
  EXPECT_EQ((*empty)->offset_of_max_timestamp(), -1);
  // Zero-length files: appending maps them anew.
  std::string a = Append(**empty, MakeBatch({5, 6}), 7);
  EXPECT_EQ((*empty)->max_timestamp(), 6);
  ASSERT_TRUE((*empty)->Close().ok());
  // One batch, no offset index entry, one (roll) time index entry.
  EXPECT_EQ(Slurp(dir_ / "00000000000000000007.index"), "");
  EXPECT_EQ(Slurp(dir_ / "00000000000000000007.timeindex"), BigEndian(6, 8) + BigEndian(1, 4));
  auto small = Segment::Load(dir_, 7, LogConfig{}, &info);
  ASSERT_TRUE(small.ok());
  EXPECT_FALSE(info.recovered) << info.reason;
  EXPECT_EQ((*small)->size(), a.size());
  EXPECT_EQ((*small)->next_offset(), 9);
  EXPECT_EQ((*small)->max_timestamp(), 6);
  EXPECT_EQ((*small)->offset_of_max_timestamp(), 8);
  auto record = (*small)->OffsetOfMaxTimestampRecord();
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(*record, 8);
}

TEST_F(SegmentLoadTest, UntrimmedIndexFromUncleanStopFallsBackToRecover) {
  config_.index_interval_bytes = 250;
  int64_t offset = 50;
  {
    auto segment = Segment::Create(dir_, 50, config_);
    ASSERT_TRUE(segment.ok());
    for (int i = 0; i < 20; ++i) {
      batches_.push_back(Append(**segment, MakeBatch({100 + i, 50 + i}), offset));
      offset += 2;
    }
    ASSERT_GT((*segment)->offset_index().size(), 2u);
    // Dropped without Close: both indexes keep their preallocated zero tails.
  }
  ASSERT_EQ(fs::file_size(dir_ / index_), 10485760u);
  const fs::path copy = dir_ / "copy";
  CopyDir(dir_, copy);

  Segment::LoadInfo info;
  auto loaded = Segment::Load(dir_, 50, config_, &info);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(info.recovered);
  EXPECT_EQ(info.truncated_bytes, 0u);
  EXPECT_NE(info.reason.find("corrupt offset index"), std::string::npos) << info.reason;
  uint64_t truncated = 0;
  auto recovered = Segment::Recover(copy, 50, config_, &truncated);
  ASSERT_TRUE(recovered.ok());
  ExpectSameSegment(**loaded, **recovered);
  EXPECT_EQ((*loaded)->next_offset(), offset);
  EXPECT_EQ((*loaded)->max_timestamp(), 119);
  // Recover trimmed the rebuilt indexes.
  EXPECT_EQ(fs::file_size(dir_ / index_), (*loaded)->offset_index().size() * 8);
  EXPECT_EQ(fs::file_size(dir_ / timeindex_), (*loaded)->time_index().size() * 12);
}

TEST_F(SegmentLoadTest, GarbledOrMissingIndexFallsBackToRecover) {
  WriteSegment();
  const std::string index_bytes = Slurp(dir_ / index_);
  const std::string timeindex_bytes = Slurp(dir_ / timeindex_);
  const fs::path pristine = dir_ / "pristine";
  CopyDir(dir_, pristine);
  uint64_t truncated = 0;
  auto expected = Segment::Recover(pristine, 50, config_, &truncated);
  ASSERT_TRUE(expected.ok());

  std::string swapped = index_bytes;  // entries 1 and 2 exchanged: out of order
  std::swap_ranges(swapped.begin() + 8, swapped.begin() + 16, swapped.begin() + 16);
  std::string beyond = index_bytes;  // the last position past the end of the log
  beyond.replace(beyond.size() - 4, 4, BigEndian(LogBytes().size(), 4));
  std::string not_a_boundary = index_bytes;  // the last position inside a batch
  const uint32_t last_position = BigEndianAt(index_bytes, index_bytes.size() - 4);
  not_a_boundary.replace(not_a_boundary.size() - 4, 4, BigEndian(last_position + 3, 4));
  std::string time_past_end = timeindex_bytes;  // the last offset past the log's end
  time_past_end.replace(time_past_end.size() - 4, 4, BigEndian(end_offset_ - 50, 4));
  ASSERT_GE(timeindex_bytes.size(), 24u);
  std::string time_backwards = timeindex_bytes;  // timestamps must increase
  time_backwards.replace(time_backwards.size() - 12, 8, BigEndian(1, 8));

  struct Case {
    std::string name;
    std::string index;
    std::string timeindex;
    bool remove_timeindex = false;
  };
  std::vector<Case> cases = {
      {"swapped entries", swapped, timeindex_bytes},
      {"ragged length", index_bytes + "abc", timeindex_bytes},
      {"position beyond the log", beyond, timeindex_bytes},
      {"position not a batch start", not_a_boundary, timeindex_bytes},
      {"time index past the end", index_bytes, time_past_end},
      {"time index backwards", index_bytes, time_backwards},
      {"time index ragged", index_bytes, timeindex_bytes + std::string(5, '\0')},
      {"time index missing", index_bytes, "", true},
  };
  for (const Case& c : cases) {
    WriteFile(dir_ / index_, c.index);
    WriteFile(dir_ / timeindex_, c.timeindex);
    if (c.remove_timeindex) fs::remove(dir_ / timeindex_);
    Segment::LoadInfo info;
    auto loaded = Segment::Load(dir_, 50, config_, &info);
    ASSERT_TRUE(loaded.ok()) << c.name << ": " << loaded.status();
    EXPECT_TRUE(info.recovered) << c.name;
    EXPECT_FALSE(info.reason.empty()) << c.name;
    EXPECT_EQ(info.truncated_bytes, 0u) << c.name;
    ExpectSameSegment(**loaded, **expected);
    EXPECT_EQ(Slurp(dir_ / index_), index_bytes) << c.name;
    EXPECT_EQ(Slurp(dir_ / timeindex_), timeindex_bytes) << c.name;
    EXPECT_EQ(Slurp(dir_ / log_), LogBytes()) << c.name;
  }
}

TEST_F(SegmentLoadTest, DamagedTailFallsBackAndTruncatesAtFirstInvalidByte) {
  WriteSegment();
  const std::string index_bytes = Slurp(dir_ / index_);
  const std::string timeindex_bytes = Slurp(dir_ / timeindex_);
  const std::string good = LogBytes();
  const std::string& last = batches_.back();
  const uint64_t keep = good.size() - last.size();
  // The last batch is after the last index entry: it is part of what Load reads.
  ASSERT_LT(BigEndianAt(index_bytes, index_bytes.size() - 4), keep);

  std::string flipped = good;
  flipped[good.size() - 3] ^= 0x01;  // inside the last batch's records: only the CRC sees it
  std::string bad_length = good;
  bad_length[keep + 11] ^= 0x40;  // the last batch's length now runs past the end
  struct Case {
    std::string name;
    std::string contents;
    uint64_t keep;
  };
  std::vector<Case> cases = {
      {"cut mid-batch", good.substr(0, good.size() - 10), keep},
      {"cut mid-header", good.substr(0, keep + 30), keep},
      {"flipped byte", flipped, keep},
      {"bad length", bad_length, keep},
      {"trailing zeros", good + std::string(100, '\0'), good.size()},
  };
  for (const Case& c : cases) {
    WriteFile(dir_ / log_, c.contents);
    WriteFile(dir_ / index_, index_bytes);
    WriteFile(dir_ / timeindex_, timeindex_bytes);
    Segment::LoadInfo info;
    auto loaded = Segment::Load(dir_, 50, config_, &info);
    ASSERT_TRUE(loaded.ok()) << c.name << ": " << loaded.status();
    EXPECT_TRUE(info.recovered) << c.name;
    EXPECT_NE(info.reason.find("invalid batch"), std::string::npos) << c.name << info.reason;
    EXPECT_EQ(info.truncated_bytes, c.contents.size() - c.keep) << c.name;
    EXPECT_EQ((*loaded)->size(), c.keep) << c.name;
    EXPECT_EQ(Slurp(dir_ / log_), good.substr(0, c.keep)) << c.name;
    const int64_t expected_next = c.keep == good.size() ? end_offset_ : end_offset_ - 3;
    EXPECT_EQ((*loaded)->next_offset(), expected_next) << c.name;  // batch 29 holds 3
    EXPECT_EQ((*loaded)->max_timestamp(), 999) << c.name;
  }
}

TEST_F(SegmentTest, RollingAndLargestTimestamps) {
  const int64_t before = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  auto segment = Segment::Create(dir_, 0, LogConfig{});
  ASSERT_TRUE(segment.ok());
  const int64_t after = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  // Empty: the creation time, and the .log's modification time.
  EXPECT_GE((*segment)->rolling_timestamp(), before);
  EXPECT_LE((*segment)->rolling_timestamp(), after);
  EXPECT_EQ((*segment)->rolling_timestamp(), (*segment)->created_ms());
  const fs::path log = dir_ / "00000000000000000000.log";
  struct timespec times[2] = {{1234, 567000000}, {1234, 567000000}};
  ASSERT_EQ(::utimensat(AT_FDCWD, log.c_str(), times, 0), 0);
  EXPECT_EQ((*segment)->largest_timestamp(), 1234567);

  // A first batch without timestamps keeps the creation time; largest still the mtime.
  Append(**segment, MakeBatch({-1, -1}), 0);
  EXPECT_EQ((*segment)->max_timestamp(), -1);
  EXPECT_EQ((*segment)->rolling_timestamp(), (*segment)->created_ms());
  ASSERT_EQ(::utimensat(AT_FDCWD, log.c_str(), times, 0), 0);
  EXPECT_EQ((*segment)->largest_timestamp(), 1234567);

  // Timestamps: the max rules largest_timestamp; the first batch still rules rolling.
  Append(**segment, MakeBatch({500, 700}), 2);
  EXPECT_EQ((*segment)->rolling_timestamp(), (*segment)->created_ms());
  EXPECT_EQ((*segment)->largest_timestamp(), 700);
  ASSERT_TRUE((*segment)->Close().ok());
  EXPECT_EQ((*segment)->largest_timestamp(), 700);

  auto other = Segment::Create(dir_, 100, LogConfig{});
  ASSERT_TRUE(other.ok());
  Append(**other, MakeBatch({300, 200}), 100);
  Append(**other, MakeBatch({800}), 102);
  EXPECT_EQ((*other)->rolling_timestamp(), 300);
  EXPECT_EQ((*other)->largest_timestamp(), 800);
  ASSERT_TRUE((*other)->Close().ok());

  // Loaded: the first batch header is read back.
  Segment::LoadInfo info;
  auto loaded = Segment::Load(dir_, 100, LogConfig{}, &info);
  ASSERT_TRUE(loaded.ok());
  EXPECT_FALSE(info.recovered);
  EXPECT_EQ((*loaded)->rolling_timestamp(), 300);
  EXPECT_EQ((*loaded)->largest_timestamp(), 800);
  auto reloaded = Segment::Load(dir_, 0, LogConfig{}, &info);
  ASSERT_TRUE(reloaded.ok());
  EXPECT_FALSE(info.recovered);
  EXPECT_GE((*reloaded)->rolling_timestamp(), after);  // the first batch has none: open time
  EXPECT_EQ((*reloaded)->largest_timestamp(), 700);
}

int CountOpenFds() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

TEST_F(SegmentTest, CloseReleasesDescriptorsAndRangesStayValid) {
  const int fds = CountOpenFds();
  auto segment = Segment::Create(dir_, 0, LogConfig{});
  ASSERT_TRUE(segment.ok());
  EXPECT_EQ(CountOpenFds(), fds + 1);  // the .log only: the indexes are mappings
  LogConfig config;
  config.index_interval_bytes = 1;
  (*segment)->SetConfig(config);
  std::string a = Append(**segment, MakeBatch({1}), 0);
  std::string b = Append(**segment, MakeBatch({2}), 1);
  EXPECT_EQ((*segment)->offset_index().size(), 1u);
  EXPECT_EQ(CountOpenFds(), fds + 1);
  FileRange kept;
  {
    auto range = (*segment)->Read(0, 1 << 20, false);
    ASSERT_TRUE(range.ok() && range->has_value());
    kept = **range;
  }

  ASSERT_TRUE((*segment)->Close().ok());
  EXPECT_TRUE((*segment)->closed());
  EXPECT_EQ(CountOpenFds(), fds + 1);  // the range holds the .log
  EXPECT_EQ(ReadRange(kept), a + b);
  kept = FileRange{};
  EXPECT_EQ(CountOpenFds(), fds);
  EXPECT_EQ((*segment)->Read(0, 100, true).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*segment)->next_offset(), 2);
  EXPECT_TRUE((*segment)->Close().ok());  // idempotent
  EXPECT_EQ(fs::file_size(dir_ / "00000000000000000000.index"), 8u);
  EXPECT_EQ(Slurp(dir_ / "00000000000000000000.index"), BigEndian(1, 4) + BigEndian(a.size(), 4));
  EXPECT_EQ(Slurp(dir_ / "00000000000000000000.timeindex"), BigEndian(2, 8) + BigEndian(1, 4));
}

long RssKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// A measurement, not a check: run with --gtest_also_run_disabled_tests.
TEST_F(SegmentTest, DISABLED_MemoryOfTenThousandEmptySegments) {
  constexpr int kSegments = 10000;
  std::vector<std::unique_ptr<Segment>> segments;
  segments.reserve(kSegments);
  for (int i = 0; i < kSegments; ++i) fs::create_directory(dir_ / std::to_string(i));
  const long rss_before = RssKiB();
  const int fds_before = CountOpenFds();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kSegments; ++i) {
    auto segment = Segment::Create(dir_ / std::to_string(i), 0, LogConfig{});
    ASSERT_TRUE(segment.ok()) << segment.status();
    segments.push_back(*std::move(segment));
  }
  const auto created = std::chrono::steady_clock::now();
  const long rss_after = RssKiB();
  const int fds_after = CountOpenFds();
  std::printf(
      "%d empty segments: RSS %ld KiB -> %ld KiB (%.0f bytes per segment), %.2f fds per "
      "segment, created in %.1f s\n",
      kSegments, rss_before, rss_after, 1024.0 * (rss_after - rss_before) / kSegments,
      static_cast<double>(fds_after - fds_before) / kSegments,
      std::chrono::duration<double>(created - start).count());
  for (auto& s : segments) ASSERT_TRUE(s->Close().ok());
  std::printf("after Close (trim and fsync each): RSS %ld KiB, %d fds, in %.1f s\n", RssKiB(),
              CountOpenFds() - fds_before,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - created).count());
}

}  // namespace
}  // namespace runnel::storage
