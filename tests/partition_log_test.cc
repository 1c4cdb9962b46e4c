// PartitionLog: offset assignment, rolling, reads across segments, recovery on reopen,
// timestamp lookups.
#include "storage/partition_log.h"

#include <stdlib.h>
#include <unistd.h>

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

std::string ReadAll(const ReadInfo& info) {
  std::string out;
  uint64_t total = 0;
  for (const FileRange& r : info.ranges) {
    std::string part(r.length, '\0');
    EXPECT_EQ(::pread(r.fd, part.data(), part.size(), static_cast<off_t>(r.position)),
              static_cast<ssize_t>(r.length));
    out += part;
    total += r.length;
  }
  EXPECT_EQ(total, info.bytes);
  return out;
}

// One batch (base offset 0 as a producer sends it) with a record per timestamp.
std::string MakeBatch(const std::vector<int64_t>& timestamps, size_t value_size = 20) {
  std::vector<protocol::RecordToAdd> records;
  for (int64_t ts : timestamps) {
    protocol::RecordToAdd r;
    r.key = "k";
    r.value = std::string(value_size, 'v');
    r.timestamp = ts;
    records.push_back(std::move(r));
  }
  return protocol::BuildBatch(records);
}

int64_t BaseOffsetOf(const std::string& batch) {
  auto h = protocol::ParseBatchHeader(batch);
  EXPECT_TRUE(h.ok());
  return h->base_offset;
}

class PartitionLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "partition_log_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ / "topic-0";
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<PartitionLog> OpenLog(LogConfig config = {}) {
    auto log = PartitionLog::Open(dir_, config);
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? *std::move(log) : nullptr;
  }

  // Appends and returns the batch as stored (with its assigned base offset).
  std::string Append(PartitionLog& log, std::string batch) {
    auto info = log.Append(batch.data(), batch.size());
    EXPECT_TRUE(info.ok()) << info.status();
    return batch;
  }

  std::string ReadFrom(PartitionLog& log, int64_t offset, uint64_t max_bytes = 1 << 20,
                       bool min_one_batch = false) {
    auto info = log.Read(offset, max_bytes, min_one_batch);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? ReadAll(*info) : "";
  }

  fs::path root_;
  fs::path dir_;
};

TEST_F(PartitionLogTest, AppendAssignsOffsetsInPlace) {
  auto log = OpenLog();
  ASSERT_NE(log, nullptr);
  EXPECT_TRUE(fs::exists(dir_ / "00000000000000000000.log"));
  EXPECT_EQ(log->log_start_offset(), 0);
  EXPECT_EQ(log->log_end_offset(), 0);

  std::string a = MakeBatch({10, 11, 12});
  std::string original_a = a;
  auto info = log->Append(a.data(), a.size());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->base_offset, 0);
  EXPECT_EQ(info->last_offset, 2);

  // Two batches in one call get consecutive offsets.
  std::string b = MakeBatch({13, 14});
  std::string c = MakeBatch({15});
  std::string bc = b + c;
  info = log->Append(bc.data(), bc.size());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->base_offset, 3);
  EXPECT_EQ(info->last_offset, 5);
  EXPECT_EQ(log->log_end_offset(), 6);

  // Only the 8 BaseOffset bytes changed; the CRC still holds because it skips them.
  EXPECT_EQ(a.substr(8), original_a.substr(8));
  EXPECT_EQ(bc.substr(0, 8), std::string("\0\0\0\0\0\0\0\3", 8));
  EXPECT_EQ(bc.substr(b.size(), 8), std::string("\0\0\0\0\0\0\0\5", 8));
  EXPECT_EQ(bc.substr(8, b.size() - 8), b.substr(8));
  for (const std::string* batch : {&a}) {
    EXPECT_EQ(protocol::Crc32c(batch->data() + 21, batch->size() - 21),
              protocol::ParseBatchHeader(*batch)->crc);
  }

  EXPECT_EQ(Slurp(dir_ / "00000000000000000000.log"), a + bc);
  EXPECT_EQ(ReadFrom(*log, 0), a + bc);
  EXPECT_EQ(log->size_bytes(), a.size() + bc.size());
}

TEST_F(PartitionLogTest, RejectsMalformedAndOversizedAppends) {
  LogConfig config;
  std::string batch = MakeBatch({1, 2});
  config.segment_bytes = static_cast<int64_t>(batch.size()) - 1;
  auto log = OpenLog(config);
  ASSERT_NE(log, nullptr);
  auto too_big = log->Append(batch.data(), batch.size());
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kResourceExhausted);

  std::string truncated = batch.substr(0, batch.size() - 1);
  EXPECT_EQ(log->Append(truncated.data(), truncated.size()).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string trailing = MakeBatch({1}) + "xyz";
  EXPECT_EQ(log->Append(trailing.data(), trailing.size()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log->Append(batch.data(), 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log->log_end_offset(), 0);
  EXPECT_EQ(log->size_bytes(), 0u);
}

TEST_F(PartitionLogTest, RollsWhenSegmentWouldExceedSegmentBytes) {
  const uint64_t s = MakeBatch({1, 2}).size();
  LogConfig config;
  config.segment_bytes = static_cast<int64_t>(2 * s);  // exactly two batches fit
  auto log = OpenLog(config);
  ASSERT_NE(log, nullptr);
  std::vector<std::string> stored;
  for (int i = 0; i < 5; ++i) stored.push_back(Append(*log, MakeBatch({1, 2})));

  ASSERT_EQ(log->segment_count(), 3u);
  EXPECT_EQ(log->segment(0).base_offset(), 0);
  EXPECT_EQ(log->segment(1).base_offset(), 4);
  EXPECT_EQ(log->segment(2).base_offset(), 8);
  EXPECT_EQ(log->segment(0).size(), 2 * s);
  EXPECT_EQ(log->segment(2).size(), s);
  EXPECT_EQ(Slurp(dir_ / "00000000000000000000.log"), stored[0] + stored[1]);
  EXPECT_EQ(Slurp(dir_ / "00000000000000000004.log"), stored[2] + stored[3]);
  EXPECT_EQ(Slurp(dir_ / "00000000000000000008.log"), stored[4]);
  EXPECT_TRUE(fs::exists(dir_ / "00000000000000000004.index"));
  EXPECT_TRUE(fs::exists(dir_ / "00000000000000000008.timeindex"));
  EXPECT_EQ(log->log_end_offset(), 10);
  EXPECT_EQ(log->size_bytes(), 5 * s);

  // One byte less than two batches: every batch gets its own segment.
  LogConfig tight = config;
  tight.segment_bytes = static_cast<int64_t>(2 * s - 1);
  log->SetConfig(tight);
  Append(*log, MakeBatch({1, 2}));  // the active segment held one batch: rolls
  EXPECT_EQ(log->segment_count(), 4u);
  EXPECT_EQ(log->segment(3).base_offset(), 10);
}

TEST_F(PartitionLogTest, ReadsComeFromOneSegmentAndCoverTheLog) {
  const uint64_t s = MakeBatch({1, 2, 3}).size();
  LogConfig config;
  config.segment_bytes = static_cast<int64_t>(2 * s);
  auto log = OpenLog(config);
  ASSERT_NE(log, nullptr);
  std::vector<std::string> stored;
  for (int i = 0; i < 5; ++i) stored.push_back(Append(*log, MakeBatch({1, 2, 3})));
  ASSERT_EQ(log->segment_count(), 3u);  // offsets 0-5, 6-11, 12-14

  EXPECT_EQ(ReadFrom(*log, 0), stored[0] + stored[1]);
  EXPECT_EQ(ReadFrom(*log, 4), stored[1]);              // mid-batch, rest of segment 0
  EXPECT_EQ(ReadFrom(*log, 5), stored[1]);              // last offset of segment 0
  EXPECT_EQ(ReadFrom(*log, 6), stored[2] + stored[3]);  // first offset of segment 1
  EXPECT_EQ(ReadFrom(*log, 14), stored[4]);

  // A consumer loop that always asks from the offset after what it got reads it all.
  std::string all;
  int64_t next = 0;
  while (next < log->log_end_offset()) {
    std::string got = ReadFrom(*log, next, 1 << 20);
    ASSERT_FALSE(got.empty());
    all += got;
    int64_t last_base = 0;
    for (size_t pos = 0; pos < got.size();) {
      auto h = protocol::ParseBatchHeader(std::string_view(got).substr(pos));
      ASSERT_TRUE(h.ok());
      last_base = h->last_offset();
      pos += h->total_size();
    }
    next = last_base + 1;
  }
  std::string expected;
  for (const std::string& b : stored) expected += b;
  EXPECT_EQ(all, expected);
  EXPECT_EQ(BaseOffsetOf(stored[3]), 9);
}

TEST_F(PartitionLogTest, ReadLimitsAndMinOneBatch) {
  auto log = OpenLog();
  ASSERT_NE(log, nullptr);
  std::string a = Append(*log, MakeBatch({1, 2}, 500));
  std::string b = Append(*log, MakeBatch({3}, 10));
  std::string c = Append(*log, MakeBatch({4}, 10));

  EXPECT_EQ(ReadFrom(*log, 0, a.size() + b.size() + c.size()), a + b + c);
  EXPECT_EQ(ReadFrom(*log, 0, a.size() + b.size() + c.size() - 1), a + b);
  EXPECT_EQ(ReadFrom(*log, 0, a.size() + b.size()), a + b);
  EXPECT_EQ(ReadFrom(*log, 0, a.size()), a);
  // First batch larger than max_bytes: nothing, unless min_one_batch (KIP-74).
  auto none = log->Read(0, 100, false);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->ranges.empty());
  EXPECT_EQ(none->bytes, 0u);
  EXPECT_EQ(ReadFrom(*log, 1, 100, true), a);
  EXPECT_EQ(ReadFrom(*log, 1, a.size() + 1, true), a);
  EXPECT_EQ(ReadFrom(*log, 2, 1, true), b);
}

TEST_F(PartitionLogTest, ReadReportsWhereTheNextReadStarts) {
  LogConfig config;
  config.index_interval_bytes = 1;  // every batch indexed: the cut point is found by index
  auto log = OpenLog(config);
  ASSERT_NE(log, nullptr);
  std::string a = Append(*log, MakeBatch({1, 2}, 500));    // 0-1
  std::string b = Append(*log, MakeBatch({3}, 10));        // 2
  std::string c = Append(*log, MakeBatch({4, 5, 6}, 10));  // 3-5
  auto next = [&](int64_t offset, uint64_t max_bytes, bool min_one = false) {
    auto info = log->Read(offset, max_bytes, min_one);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? info->next_offset : -1;
  };
  EXPECT_EQ(next(0, 1 << 20), 6);              // to the end
  EXPECT_EQ(next(0, a.size() + b.size()), 3);  // cut before c
  EXPECT_EQ(next(0, a.size() + b.size() + 1), 3);
  EXPECT_EQ(next(0, a.size()), 2);
  EXPECT_EQ(next(1, 100), 1);        // nothing: where it started
  EXPECT_EQ(next(1, 100, true), 2);  // KIP-74's one batch
  EXPECT_EQ(next(4, 1, true), 6);
  EXPECT_EQ(next(6, 1 << 20), 6);  // at the end
  // A max_offset bound moves it back to the cut.
  auto bounded = log->Read(0, 1 << 20, false, 3);
  ASSERT_TRUE(bounded.ok());
  EXPECT_EQ(bounded->next_offset, 3);
  EXPECT_EQ(bounded->bytes, a.size() + b.size());
  bounded = log->Read(0, 1 << 20, false, 4);  // inside c: c is returned whole
  ASSERT_TRUE(bounded.ok());
  EXPECT_EQ(bounded->next_offset, 6);
  EXPECT_EQ(bounded->bytes, a.size() + b.size() + c.size());
}

TEST_F(PartitionLogTest, OffsetsOutsideTheLogAreOutOfRange) {
  auto log = OpenLog();
  ASSERT_NE(log, nullptr);
  Append(*log, MakeBatch({1, 2}));
  EXPECT_EQ(log->Read(-1, 100, true).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(log->Read(3, 100, true).status().code(), absl::StatusCode::kOutOfRange);
  auto at_end = log->Read(2, 100, true);
  ASSERT_TRUE(at_end.ok());
  EXPECT_TRUE(at_end->ranges.empty());
  EXPECT_EQ(at_end->bytes, 0u);
}

TEST_F(PartitionLogTest, ReopenFindsTheSameDataAndContinues) {
  LogConfig config;
  config.segment_bytes = 400;
  config.index_interval_bytes = 100;
  std::string expected;
  std::string index_of_first;
  {
    auto log = OpenLog(config);
    ASSERT_NE(log, nullptr);
    for (int i = 0; i < 12; ++i) expected += Append(*log, MakeBatch({100 + i, 200 + i}));
    ASSERT_GT(log->segment_count(), 2u);
    EXPECT_EQ(log->log_end_offset(), 24);
    ASSERT_TRUE(log->Close().ok());
    EXPECT_EQ(log->log_end_offset(), 24);
    EXPECT_EQ(log->Read(0, 100, true).status().code(), absl::StatusCode::kFailedPrecondition);
    index_of_first = Slurp(dir_ / "00000000000000000000.index");
  }
  ASSERT_FALSE(index_of_first.empty());
  auto log = OpenLog(config);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->log_start_offset(), 0);
  EXPECT_EQ(log->log_end_offset(), 24);
  EXPECT_EQ(log->size_bytes(), expected.size());
  EXPECT_EQ(Slurp(dir_ / "00000000000000000000.index"), index_of_first);
  std::string all;
  for (size_t i = 0; i < log->segment_count(); ++i) {
    all += ReadFrom(*log, log->segment(i).base_offset());
  }
  EXPECT_EQ(all, expected);
  std::string more = MakeBatch({300, 301});
  auto info = log->Append(more.data(), more.size());
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->base_offset, 24);
  EXPECT_EQ(log->log_end_offset(), 26);
}

TEST_F(PartitionLogTest, ReopenTruncatesTornTail) {
  LogConfig config;
  config.segment_bytes = 1 << 20;
  std::string a, b;
  {
    auto log = OpenLog(config);
    ASSERT_NE(log, nullptr);
    a = Append(*log, MakeBatch({1, 2, 3}));
    b = Append(*log, MakeBatch({4}));
    ASSERT_TRUE(log->Close().ok());
  }
  // A crash mid-append leaves part of a batch.
  std::string torn = MakeBatch({5, 6});
  protocol::SetBaseOffset(torn.data(), 4);
  std::ofstream(dir_ / "00000000000000000000.log", std::ios::binary | std::ios::app)
      << torn.substr(0, torn.size() - 3);
  auto log = OpenLog(config);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->log_end_offset(), 4);
  EXPECT_EQ(fs::file_size(dir_ / "00000000000000000000.log"), a.size() + b.size());
  EXPECT_EQ(ReadFrom(*log, 0), a + b);
  std::string c = Append(*log, MakeBatch({5, 6}));
  EXPECT_EQ(BaseOffsetOf(c), 4);
  EXPECT_EQ(ReadFrom(*log, 0), a + b + c);
}

TEST_F(PartitionLogTest, CorruptionInAnOldSegmentDropsTheSegmentsAfterIt) {
  const uint64_t s = MakeBatch({1}).size();
  LogConfig config;
  config.segment_bytes = static_cast<int64_t>(2 * s);
  std::string first;
  {
    auto log = OpenLog(config);
    ASSERT_NE(log, nullptr);
    for (int i = 0; i < 6; ++i) {
      std::string b = Append(*log, MakeBatch({1}));
      if (i == 0) first = b;
    }
    ASSERT_EQ(log->segment_count(), 3u);
    ASSERT_TRUE(log->Close().ok());
  }
  // Flip a byte of the second batch of segment 0: its CRC fails.
  {
    std::fstream f(dir_ / "00000000000000000000.log",
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(2 * s - 2));
    f.put('X');
  }
  auto log = OpenLog(config);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->segment_count(), 1u);
  EXPECT_EQ(log->log_end_offset(), 1);
  EXPECT_FALSE(fs::exists(dir_ / "00000000000000000002.log"));
  EXPECT_FALSE(fs::exists(dir_ / "00000000000000000004.index"));
  EXPECT_EQ(ReadFrom(*log, 0), first);
}

TEST_F(PartitionLogTest, OffsetForTimestampReturnsFirstRecordAtOrAfter) {
  // Timestamp deltas of 400 or more take a byte more; leave room for them.
  const uint64_t s = MakeBatch({0, 0, 0}).size();
  LogConfig config;
  config.segment_bytes = static_cast<int64_t>(2 * s + 10);
  auto log = OpenLog(config);
  ASSERT_NE(log, nullptr);
  auto empty = log->OffsetForTimestamp(0);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, std::nullopt);
  EXPECT_EQ(log->MaxTimestampAndOffset(), std::make_pair(int64_t{-1}, int64_t{-1}));

  Append(*log, MakeBatch({100, 150, 120}));  // 0-2
  Append(*log, MakeBatch({200, 260, 210}));  // 3-5
  Append(*log, MakeBatch({300, 900, 310}));  // 6-8, second segment
  Append(*log, MakeBatch({400, 410, 420}));  // 9-11
  Append(*log, MakeBatch({500, 900, 900}));  // 12-14, third segment
  ASSERT_EQ(log->segment_count(), 3u);

  using P = std::pair<int64_t, int64_t>;
  auto find = [&](int64_t ts) {
    auto r = log->OffsetForTimestamp(ts);
    EXPECT_TRUE(r.ok()) << r.status();
    return *r;
  };
  EXPECT_EQ(find(-5), P(0, 100));
  EXPECT_EQ(find(130), P(1, 150));
  EXPECT_EQ(find(151), P(3, 200));  // next batch
  EXPECT_EQ(find(261), P(6, 300));  // next segment
  EXPECT_EQ(find(311), P(7, 900));
  EXPECT_EQ(find(415), P(7, 900));  // 900 at offset 7 precedes 420 at offset 11
  EXPECT_EQ(find(900), P(7, 900));
  EXPECT_EQ(find(901), std::nullopt);
  // The first record that carries the maximum, not the last offset of its batch.
  EXPECT_EQ(log->MaxTimestampAndOffset(), P(900, 7));
  Append(*log, MakeBatch({901, 5}));  // 15-16
  EXPECT_EQ(log->MaxTimestampAndOffset(), P(901, 15));
}

TEST_F(PartitionLogTest, CompressedAndLogAppendTimeBatches) {
  auto log = OpenLog();
  ASSERT_NE(log, nullptr);
  std::vector<protocol::RecordToAdd> records(4);
  for (int i = 0; i < 4; ++i) {
    records[i].value = std::string(100, static_cast<char>('a' + i));
    records[i].timestamp = 10 * (i + 1);
  }
  protocol::BatchOptions zstd;
  zstd.compression = protocol::Compression::kZstd;
  std::string compressed = protocol::BuildBatch(records, zstd);
  std::string stored_plain = Append(*log, MakeBatch({1, 2}));
  auto info = log->Append(compressed.data(), compressed.size());
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->base_offset, 2);
  EXPECT_EQ(info->last_offset, 5);
  EXPECT_EQ(ReadFrom(*log, 4), compressed);

  // LogAppendTime: every record of the batch has the batch MaxTimestamp.
  std::string appended = MakeBatch({7, 8, 9});
  protocol::SetLogAppendTime(appended.data(), appended.size(), 5000);
  Append(*log, appended);  // offsets 6-8

  using P = std::pair<int64_t, int64_t>;
  auto find = [&](int64_t ts) {
    auto r = log->OffsetForTimestamp(ts);
    EXPECT_TRUE(r.ok()) << r.status();
    return *r;
  };
  EXPECT_EQ(find(25), P(4, 30));  // inside the compressed batch
  EXPECT_EQ(find(41), P(6, 5000));
  EXPECT_EQ(log->MaxTimestampAndOffset(), P(5000, 6));
}

TEST_F(PartitionLogTest, RangesOutliveClose) {
  auto log = OpenLog();
  ASSERT_NE(log, nullptr);
  std::string a = Append(*log, MakeBatch({1}));
  auto info = log->Read(0, 1 << 20, false);
  ASSERT_TRUE(info.ok());
  ASSERT_TRUE(log->Close().ok());
  log.reset();
  fs::remove_all(dir_);
  EXPECT_EQ(ReadAll(*info), a);
}

}  // namespace
}  // namespace runnel::storage
