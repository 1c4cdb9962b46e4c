// The life of a partition log beyond appends and reads: DeleteRecords and the log start
// offset, retention by time and size, rolls by age, flush.messages and the recovery point,
// the checkpoint files and the clean-shutdown marker, and a randomized run checked
// against an in-memory model of what the log must hold.
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "protocol/record_batch.h"
#include "storage/checkpoint_file.h"
#include "storage/log_cleaner.h"
#include "storage/log_manager.h"
#include "storage/partition_log.h"
#include "tests/read_values.h"
#include "tests/slurp.h"

namespace runnel::storage {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kHour = 3600 * 1000;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A batch of `count` records, values "<tag>-<i>", all with timestamp ts.
std::string MakeBatch(int count, int64_t ts, const std::string& tag, size_t pad = 0) {
  std::vector<protocol::RecordToAdd> records;
  for (int i = 0; i < count; ++i) {
    protocol::RecordToAdd r;
    r.key = "k" + std::to_string(i);
    r.value = tag + "-" + std::to_string(i) + std::string(pad, '.');
    r.timestamp = ts;
    records.push_back(std::move(r));
  }
  return protocol::BuildBatch(records);
}

class LogLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "log_lifecycle_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ / "t-0";
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<PartitionLog> Open(LogConfig config, LogCheckpoint checkpoint = {}) {
    auto log = PartitionLog::Open(dir_, config, checkpoint);
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? *std::move(log) : nullptr;
  }
  void Append(PartitionLog& log, std::string batch) {
    auto appended = log.Append(batch.data(), batch.size());
    ASSERT_TRUE(appended.ok()) << appended.status();
  }

  fs::path root_;
  fs::path dir_;
};

// Small segments: each 10-record batch of ~100-byte values (~1.3 KB) fills one.
LogConfig SmallSegments() {
  LogConfig c;
  c.segment_bytes = 2000;
  return c;
}

TEST_F(LogLifecycleTest, DeleteRecordsRaisesTheStartAndDeletesWholeSegmentsBelowIt) {
  auto log = Open(SmallSegments());
  for (int i = 0; i < 4; ++i) Append(*log, MakeBatch(10, NowMs(), "b" + std::to_string(i), 100));
  ASSERT_EQ(log->segment_count(), 4u);
  ASSERT_EQ(log->log_end_offset(), 40);

  ASSERT_EQ(*log->DeleteRecordsBefore(15), 15);
  EXPECT_EQ(log->log_start_offset(), 15);
  EXPECT_EQ(log->segment_count(), 3u);  // [0,10) went; [10,20) holds the new start
  EXPECT_EQ(log->first_segment_base(), 10);
  EXPECT_EQ(log->Read(14, 1000, true).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(ReadValues(*log, 15).begin()->first, 15);
  EXPECT_FALSE(fs::exists(dir_ / "00000000000000000000.log"));

  EXPECT_EQ(*log->DeleteRecordsBefore(3), 15);  // never lowered
  EXPECT_EQ(log->DeleteRecordsBefore(41).status().code(), absl::StatusCode::kOutOfRange);
  // Up to the end: every inactive segment goes, the active one stays.
  ASSERT_EQ(*log->DeleteRecordsBefore(40), 40);
  EXPECT_EQ(log->segment_count(), 1u);
  EXPECT_EQ(log->log_end_offset(), 40);
  Append(*log, MakeBatch(1, NowMs(), "after"));
  EXPECT_EQ(ReadValues(*log, 40), (std::map<int64_t, std::string>{{40, "after-0"}}));
}

TEST_F(LogLifecycleTest, RetentionMsDeletesOldInactiveSegmentsOnly) {
  LogConfig c = SmallSegments();
  c.retention_ms = kHour;
  auto log = Open(c);
  const int64_t now = NowMs();
  Append(*log, MakeBatch(10, now - 3 * kHour, "old", 100));
  Append(*log, MakeBatch(10, now - 2 * kHour, "older", 100));
  Append(*log, MakeBatch(10, now, "new", 100));
  Append(*log, MakeBatch(10, now - 5 * kHour, "active", 100));  // old, but active
  ASSERT_EQ(log->segment_count(), 4u);
  EXPECT_EQ(*log->DeleteExpiredSegments(now), 2u);
  EXPECT_EQ(log->log_start_offset(), 20);
  // The third segment is recent, so the old active one behind it survives too.
  EXPECT_EQ(*log->DeleteExpiredSegments(now + kHour / 2), 0u);
  EXPECT_EQ(*log->DeleteExpiredSegments(now + 2 * kHour), 1u);
  EXPECT_EQ(log->segment_count(), 1u);
  EXPECT_EQ(log->log_start_offset(), 30);
  EXPECT_EQ(ReadValues(*log, 30).size(), 10u);

  // The delete policy off: nothing goes.
  c.delete_policy = false;
  c.compact_policy = true;
  log->SetConfig(c);
  Append(*log, MakeBatch(10, now - 9 * kHour, "x", 100));
  EXPECT_EQ(*log->DeleteExpiredSegments(now + 9 * kHour), 0u);
}

TEST_F(LogLifecycleTest, RetentionBytesKeepsAtLeastTheLimit) {
  LogConfig c = SmallSegments();
  auto log = Open(c);
  for (int i = 0; i < 5; ++i) Append(*log, MakeBatch(10, NowMs(), "b", 100));
  const uint64_t segment = log->segment(0).size();
  c.retention_bytes = static_cast<int64_t>(2 * segment + segment / 2);
  log->SetConfig(c);
  // Five equal segments; deleting leaves >= 2.5 segments' worth: three remain.
  EXPECT_EQ(*log->DeleteExpiredSegments(NowMs()), 2u);
  EXPECT_EQ(log->segment_count(), 3u);
  EXPECT_GE(log->size_bytes(), static_cast<uint64_t>(c.retention_bytes));
  EXPECT_EQ(log->log_start_offset(), 20);
}

TEST_F(LogLifecycleTest, RollsByAgeOfTheFirstBatch) {
  LogConfig c;
  c.segment_ms = kHour;
  auto log = Open(c);
  Append(*log, MakeBatch(2, NowMs() - 2 * kHour, "old"));
  Append(*log, MakeBatch(2, NowMs(), "new"));  // the active segment is too old: roll
  ASSERT_EQ(log->segment_count(), 2u);
  EXPECT_EQ(log->segment(1).base_offset(), 2);
  Append(*log, MakeBatch(2, NowMs(), "more"));  // the new one is young
  EXPECT_EQ(log->segment_count(), 2u);
}

TEST_F(LogLifecycleTest, FlushMessagesAdvancesTheRecoveryPoint) {
  LogConfig c;
  c.flush_messages = 5;
  auto log = Open(c);
  EXPECT_EQ(log->recovery_point(), 0);
  Append(*log, MakeBatch(3, NowMs(), "a"));
  EXPECT_EQ(log->recovery_point(), 0);
  EXPECT_TRUE(log->has_unflushed());
  Append(*log, MakeBatch(3, NowMs(), "b"));  // 6 unflushed >= 5: flushed
  EXPECT_EQ(log->recovery_point(), 6);
  EXPECT_FALSE(log->has_unflushed());

  c.flush_messages = kNoLimit;
  c.flush_ms = 1000;
  log->SetConfig(c);
  Append(*log, MakeBatch(1, NowMs(), "c"));
  ASSERT_TRUE(log->MaybeFlush(NowMs()).ok());  // the last flush was just now
  EXPECT_EQ(log->recovery_point(), 6);
  ASSERT_TRUE(log->MaybeFlush(NowMs() + 2000).ok());
  EXPECT_EQ(log->recovery_point(), 7);
}

TEST_F(LogLifecycleTest, CheckpointFileFormatIsKafkas) {
  PartitionOffsets offsets{{{"orders", 0}, 42}, {{"orders", 1}, 7}, {{"a.b-c", 12}, 0}};
  fs::path path = root_ / "recovery-point-offset-checkpoint";
  ASSERT_TRUE(WriteCheckpointFile(path, offsets).ok());
  EXPECT_EQ(Slurp(path), "0\n3\na.b-c 12 0\norders 0 42\norders 1 7\n");
  EXPECT_EQ(*ReadCheckpointFile(path), offsets);
  EXPECT_TRUE(ReadCheckpointFile(root_ / "missing")->empty());
  std::ofstream(path) << "0\n2\norders 0 42\n";
  EXPECT_EQ(ReadCheckpointFile(path).status().code(), absl::StatusCode::kDataLoss);
  std::ofstream(path) << "1\n0\n";
  EXPECT_EQ(ReadCheckpointFile(path).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(LogLifecycleTest, ManagerWritesCheckpointsAndTheCleanShutdownMarker) {
  auto resolve = [](const std::map<std::string, std::string>&) { return SmallSegments(); };
  {
    auto m = LogManager::Open(root_ / "logs", resolve);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_FALSE((*m)->opened_after_clean_shutdown());
    ASSERT_TRUE((*m)->CreateTopic("t", 2, {}).ok());
    PartitionLog* p0 = (*m)->Partition("t", 0);
    for (int i = 0; i < 3; ++i) Append(*p0, MakeBatch(10, NowMs(), "x", 100));
    ASSERT_EQ(*p0->DeleteRecordsBefore(12), 12);
    ASSERT_TRUE((*m)->Close().ok());
  }
  fs::path logs = root_ / "logs";
  EXPECT_EQ(Slurp(logs / ".kafka_cleanshutdown"), "{\"version\":0,\"brokerEpoch\":-1}");
  EXPECT_EQ(Slurp(logs / "recovery-point-offset-checkpoint"), "0\n2\nt 0 30\nt 1 0\n");
  EXPECT_EQ(Slurp(logs / "log-start-offset-checkpoint"), "0\n1\nt 0 12\n");
  {
    auto m = LogManager::Open(logs, resolve);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_TRUE((*m)->opened_after_clean_shutdown());
    EXPECT_FALSE(fs::exists(logs / ".kafka_cleanshutdown"));  // a crash now is unclean
    EXPECT_EQ((*m)->Partition("t", 0)->log_start_offset(), 12);
    EXPECT_EQ((*m)->Partition("t", 0)->log_end_offset(), 30);
    (*m)->OpenDeferredPartitions(SIZE_MAX);  // and removes what the marker left
    EXPECT_FALSE(fs::exists(logs / ".kafka_cleanshutdown.tmp"));
    // Offline: no marker on close.
    (*m)->SetOffline(absl::InternalError("EIO"));
    EXPECT_TRUE((*m)->Close().ok());
  }
  EXPECT_FALSE(fs::exists(logs / ".kafka_cleanshutdown"));
  std::ofstream(logs / "recovery-point-offset-checkpoint.tmp") << "half-written";
  auto m = LogManager::Open(logs, resolve);
  EXPECT_FALSE(fs::exists(logs / "recovery-point-offset-checkpoint.tmp"));
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE((*m)->opened_after_clean_shutdown());
  EXPECT_EQ((*m)->Partition("t", 0)->log_start_offset(), 12);  // from the checkpoint
}

LogConfig Compacted() {
  LogConfig c = SmallSegments();
  c.delete_policy = false;
  c.compact_policy = true;
  return c;
}

// Offsets [from, to) of the model: every offset present, values "<tag>-<i>".
std::vector<int64_t> Offsets(const std::map<int64_t, std::string>& values) {
  std::vector<int64_t> out;
  for (const auto& [offset, value] : values) out.push_back(offset);
  return out;
}

std::vector<int64_t> Range(int64_t from, int64_t to) {
  std::vector<int64_t> out;
  for (int64_t o = from; o < to; ++o) out.push_back(o);
  return out;
}

TEST_F(LogLifecycleTest, CompactionKeepsTheLatestRecordPerKeyAndTheOffsets) {
  auto log = Open(Compacted());
  // Four rounds over keys k0..k9, one segment each; the fourth is the active segment.
  for (int round = 0; round < 4; ++round) {
    Append(*log, MakeBatch(10, NowMs(), "r" + std::to_string(round), 100));
  }
  ASSERT_EQ(log->segment_count(), 4u);
  auto pass = MaybeCleanLog(*log, 0, NowMs(), 1 << 20);
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_TRUE(pass->cleaned);
  EXPECT_EQ(pass->first_dirty_offset, 30);
  // Below the active segment only round 2 survives; the active segment is untouched.
  std::map<int64_t, std::string> values = ReadValues(*log, 0);
  EXPECT_EQ(Offsets(values), Range(20, 40));
  EXPECT_EQ(values[20], "r2-0");
  EXPECT_EQ(values[39], "r3-9");
  EXPECT_EQ(log->log_end_offset(), 40);
  // Nothing is dirty any more.
  EXPECT_FALSE(MaybeCleanLog(*log, 30, NowMs(), 1 << 20)->cleaned);
  // A high dirty-ratio threshold defers cleaning.
  LogConfig lazy = Compacted();
  lazy.min_cleanable_dirty_ratio = 0.99;
  log->SetConfig(lazy);
  Append(*log, MakeBatch(10, NowMs(), "r4", 100));  // rolls: round 3 becomes dirty
  EXPECT_FALSE(MaybeCleanLog(*log, 30, NowMs(), 1 << 20)->cleaned);
  ASSERT_TRUE(log->Close().ok());
  log = Open(Compacted());
  EXPECT_EQ(Offsets(ReadValues(*log, 0)), Range(20, 50));
  // min.compaction.lag.ms keeps young segments out of reach.
  LogConfig lagged = Compacted();
  lagged.min_compaction_lag_ms = kHour;
  log->SetConfig(lagged);
  EXPECT_FALSE(MaybeCleanLog(*log, 30, NowMs(), 1 << 20)->cleaned);
  log->SetConfig(Compacted());
  ASSERT_TRUE(MaybeCleanLog(*log, 30, NowMs(), 1 << 20)->cleaned);
  EXPECT_EQ(Offsets(ReadValues(*log, 0)), Range(30, 50));
}

TEST_F(LogLifecycleTest, OpenDropsCleanedFilesAndFinishesSwaps) {
  auto log = Open(Compacted());
  for (int round = 0; round < 4; ++round) {
    Append(*log, MakeBatch(10, NowMs(), "r" + std::to_string(round), 100));
  }
  std::string round2 = Slurp(dir_ / "00000000000000000020.log");
  ASSERT_TRUE(log->Close().ok());
  // A crash while writing a cleaned segment leaves a .cleaned file: dropped.
  std::ofstream(dir_ / "00000000000000000000.log.cleaned") << "half-written";
  std::ofstream(dir_ / "partition.metadata.tmp") << "half-written";
  log = Open(Compacted());
  EXPECT_FALSE(fs::exists(dir_ / "00000000000000000000.log.cleaned"));
  EXPECT_FALSE(fs::exists(dir_ / "partition.metadata.tmp"));
  EXPECT_EQ(Offsets(ReadValues(*log, 0)), Range(0, 40));
  ASSERT_TRUE(log->Close().ok());
  // A crash after the rename to .swap: the swap replaces the segments it covers.
  std::ofstream(dir_ / "00000000000000000000.log.swap", std::ios::binary) << round2;
  log = Open(Compacted());
  EXPECT_FALSE(fs::exists(dir_ / "00000000000000000000.log.swap"));
  EXPECT_FALSE(fs::exists(dir_ / "00000000000000000010.log"));
  EXPECT_FALSE(fs::exists(dir_ / "00000000000000000020.log"));
  ASSERT_EQ(log->segment_count(), 2u);
  std::map<int64_t, std::string> values = ReadValues(*log, 0);
  EXPECT_EQ(Offsets(values), Range(20, 40));
  EXPECT_EQ(values[20], "r2-0");
}

// Random appends (with rolls), DeleteRecords, retention and reopenings, checked after
// every step against a model: the offsets the log must still hold and their values.
TEST_F(LogLifecycleTest, RandomOperationsMatchAModel) {
  std::mt19937 rng(20261125);
  LogConfig c;
  c.segment_bytes = 2000;
  c.retention_bytes = 6000;
  auto log = Open(c);
  std::map<int64_t, std::string> model;  // offset -> value of every live record
  int64_t start = 0, end = 0;
  for (int step = 0; step < 300; ++step) {
    int op = std::uniform_int_distribution<int>(0, 9)(rng);
    if (op < 6) {
      int n = std::uniform_int_distribution<int>(1, 8)(rng);
      std::string tag = "s" + std::to_string(step);
      Append(*log, MakeBatch(n, NowMs(), tag, std::uniform_int_distribution<int>(0, 200)(rng)));
      for (int i = 0; i < n; ++i) model[end + i] = tag + "-" + std::to_string(i);
      end += n;
    } else if (op < 7) {
      int64_t to = std::uniform_int_distribution<int64_t>(start, end)(rng);
      ASSERT_EQ(*log->DeleteRecordsBefore(to), std::max(start, to));
      start = std::max(start, to);
    } else if (op < 9) {
      ASSERT_TRUE(log->DeleteExpiredSegments(NowMs()).ok());
      // Retention may only move the start forward, to a segment boundary.
      ASSERT_GE(log->log_start_offset(), start);
      start = log->log_start_offset();
      ASSERT_GE(log->size_bytes(), std::min<uint64_t>(6000, log->size_bytes()));
    } else {
      ASSERT_TRUE(log->Close().ok());
      log.reset();
      log = Open(c, LogCheckpoint{0, start, false});
    }
    ASSERT_EQ(log->log_start_offset(), start) << "step " << step;
    ASSERT_EQ(log->log_end_offset(), end) << "step " << step;
    model.erase(model.begin(), model.lower_bound(start));
    ASSERT_EQ(ReadValues(*log, start), model) << "step " << step;
  }
}

}  // namespace
}  // namespace runnel::storage
