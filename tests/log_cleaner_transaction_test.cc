// The log cleaner on logs with transactions (storage/log_cleaner.h, compactor.h): records
// of aborted transactions go whatever their keys, committed ones are compacted like the
// rest, markers stay until no batch of their transaction is left and their delete horizon
// has passed (Kafka's CleanedTransactionMetadata), each cleaned segment's .txnindex holds
// the aborted transactions whose markers it kept, nothing at or past the last stable
// offset is cleaned, and the producer state and LSO survive clean and crash-style reopens,
// including a crash in the middle of a segment swap.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "protocol/control_record.h"
#include "protocol/record_batch.h"
#include "storage/log_cleaner.h"
#include "storage/partition_log.h"
#include "storage/producer_state.h"
#include "storage/segment.h"
#include "storage/transaction_index.h"
#include "tests/read_values.h"
#include "tests/slurp.h"

namespace runnel::storage {
namespace {

namespace fs = std::filesystem;
using protocol::ControlRecordType;

constexpr int64_t kSegmentMs = 5000;  // batches 10 s apart by timestamp roll the segment
constexpr int64_t kDeleteRetentionMs = 1000;
constexpr int32_t kCoordinatorEpoch = 5;
constexpr int64_t kP1 = 1;  // commits two transactions
constexpr int64_t kP2 = 2;  // aborts one, then commits one
constexpr int64_t kP3 = 3;  // keeps one open, then commits it

int64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One batch read back from the log.
struct ReadBatch {
  protocol::BatchHeader header;
  std::string bytes;
  std::vector<std::pair<std::string, std::string>> records;  // key, value ("<null>")
};

// The batches from the log start, none with a base offset at or past max_offset.
std::vector<ReadBatch> ReadBatches(PartitionLog& log,
                                   int64_t max_offset = std::numeric_limits<int64_t>::max()) {
  std::vector<ReadBatch> out;
  int64_t offset = log.log_start_offset();
  while (offset < log.log_end_offset()) {
    auto info = log.Read(offset, 1 << 20, true, max_offset);
    EXPECT_TRUE(info.ok()) << info.status();
    if (!info.ok() || info->ranges.empty()) break;
    std::string bytes = ReadRanges(*info);
    protocol::BatchIterator batches(bytes);
    std::string_view batch;
    protocol::BatchHeader h;
    while (batches.Next(&batch, &h)) {
      ReadBatch b{h, std::string(batch), {}};
      std::string scratch;
      auto records = protocol::ReadRecords(batch, &scratch);
      EXPECT_TRUE(records.ok()) << records.status();
      if (!records.ok()) return out;
      for (const protocol::Record& r : *records) {
        b.records.emplace_back(std::string(r.key.value_or("<null>")),
                               std::string(r.value.value_or("<null>")));
      }
      out.push_back(std::move(b));
    }
    EXPECT_FALSE(batches.truncated());
    offset = info->next_offset;
  }
  return out;
}

// What a read_committed consumer gets: offset -> "key=value" below the LSO, without
// control batches and without the batches of the aborted transactions the log reports.
std::map<int64_t, std::string> ReadCommitted(PartitionLog& log) {
  const int64_t lso = log.last_stable_offset();
  const std::vector<AbortedTxn> aborted = log.AbortedTransactions(log.log_start_offset(), lso);
  std::map<int64_t, std::string> out;
  for (const ReadBatch& b : ReadBatches(log, lso)) {
    const protocol::BatchHeader& h = b.header;
    if (h.is_control()) continue;
    const bool is_aborted =
        h.is_transactional() && std::any_of(aborted.begin(), aborted.end(), [&](const auto& t) {
          return t.producer_id == h.producer_id && t.first_offset <= h.base_offset &&
                 h.base_offset <= t.last_offset;
        });
    if (is_aborted) continue;
    std::string scratch;
    auto records = protocol::ReadRecords(b.bytes, &scratch);
    for (const protocol::Record& r : *records) {
      out[r.offset] =
          std::string(r.key.value_or("<null>")) + "=" + std::string(r.value.value_or("<null>"));
    }
  }
  return out;
}

// key -> its latest value in a read_committed view: what compaction must preserve.
std::map<std::string, std::string> LatestPerKey(const std::map<int64_t, std::string>& view) {
  std::map<std::string, std::string> out;
  for (const auto& [offset, kv] : view) {
    const size_t eq = kv.find('=');
    out[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return out;
}

// The base offsets of the control batches (markers) in the log, with their type.
std::map<int64_t, std::string> Markers(PartitionLog& log) {
  std::map<int64_t, std::string> out;
  for (const ReadBatch& b : ReadBatches(log)) {
    if (!b.header.is_control()) continue;
    auto marker = protocol::ParseEndTxnMarker(b.bytes);
    if (!marker) {
      out[b.header.base_offset] = "empty";
    } else {
      out[b.header.base_offset] = marker->type == ControlRecordType::kAbort ? "abort" : "commit";
    }
  }
  return out;
}

// The part of a producer's state a reload must get back.
struct ProducerSummary {
  int16_t epoch;
  int32_t last_seq;
  int64_t last_data_offset;
  int64_t current_txn_first_offset;
  int32_t coordinator_epoch;
  bool operator==(const ProducerSummary&) const = default;
};

std::ostream& operator<<(std::ostream& os, const ProducerSummary& p) {
  return os << "{epoch " << p.epoch << " seq " << p.last_seq << " last " << p.last_data_offset
            << " txn " << p.current_txn_first_offset << " coord " << p.coordinator_epoch << "}";
}

std::map<int64_t, ProducerSummary> Producers(const PartitionLog& log) {
  std::map<int64_t, ProducerSummary> out;
  for (const auto& [pid, e] : log.producer_state().producers()) {
    out[pid] = {e.epoch, e.last_seq(), e.last_data_offset(), e.current_txn_first_offset,
                e.coordinator_epoch};
  }
  return out;
}

class LogCleanerTxnTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "log_cleaner_txn_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    base_ms_ = WallClockMs();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Appends roll by timestamp only; the cleaner groups segments by segment.bytes, so a
  // tiny one cleans each segment into its own (the test parameter: one group or many).
  static LogConfig AppendConfig() {
    LogConfig c;
    c.delete_policy = false;
    c.compact_policy = true;
    c.segment_ms = kSegmentMs;
    c.delete_retention_ms = kDeleteRetentionMs;
    c.min_cleanable_dirty_ratio = 0.01;  // every pass with dirty bytes cleans
    return c;
  }
  static LogConfig CleanConfig() {
    LogConfig c = AppendConfig();
    if (!GetParam()) c.segment_bytes = 1;
    return c;
  }

  std::unique_ptr<PartitionLog> Open(LogCheckpoint checkpoint = {}) {
    auto log = PartitionLog::Open(dir_, AppendConfig(), checkpoint);
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? *std::move(log) : nullptr;
  }

  // The timestamp of the `segment`th segment's batches.
  int64_t Ts(int segment) const { return base_ms_ + segment * 10 * kSegmentMs; }

  // A batch of `kvs`; pid < 0: a plain one. Returns its base offset.
  int64_t Add(PartitionLog& log, int segment, int64_t pid, int32_t seq,
              std::vector<std::pair<std::string, std::string>> kvs) {
    std::vector<protocol::RecordToAdd> records;
    for (auto& [k, v] : kvs) {
      protocol::RecordToAdd r;
      r.key = k;
      r.value = v;
      r.timestamp = Ts(segment);
      records.push_back(std::move(r));
    }
    protocol::BatchOptions options;
    if (pid >= 0) {
      options.producer_id = pid;
      options.producer_epoch = 0;
      options.base_sequence = seq;
      options.transactional = true;
    }
    std::string batch = protocol::BuildBatch(records, options);
    auto info = log.Append(batch.data(), batch.size());
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? info->base_offset : -1;
  }

  int64_t Mark(PartitionLog& log, int segment, int64_t pid, ControlRecordType type) {
    auto info = log.AppendTxnMarker(pid, 0, {type, kCoordinatorEpoch}, Ts(segment));
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? info->base_offset : -1;
  }

  // The cleaner pass of the broker's CleanLogs, with the cleaning config.
  CleanerPass Clean(PartitionLog& log, int64_t first_dirty, int64_t now_ms) {
    log.SetConfig(CleanConfig());
    auto pass = MaybeCleanLog(log, first_dirty, now_ms, 1 << 20);
    log.SetConfig(AppendConfig());
    EXPECT_TRUE(pass.ok()) << pass.status();
    return pass.ok() ? *pass : CleanerPass{};
  }

  // Every .txnindex file: segment base -> its entries.
  std::map<int64_t, std::vector<AbortedTxn>> TxnIndexFiles() const {
    std::map<int64_t, std::vector<AbortedTxn>> out;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      const std::string name = entry.path().filename().string();
      if (auto base = Segment::ParseFileName(name, kTxnIndexSuffix)) {
        out[*base] = TransactionIndex::Decode(Slurp(entry.path()), *base);
      }
    }
    return out;
  }

  std::vector<std::string> FilesEndingWith(const std::string& suffix) const {
    std::vector<std::string> out;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      const std::string name = entry.path().filename().string();
      if (name.ends_with(suffix)) out.push_back(name);
    }
    return out;
  }

  // The txnindex files must be exactly the in-memory entries, each in the segment holding
  // its marker.
  void ExpectIndexesMatchLog(PartitionLog& log) {
    std::vector<AbortedTxn> from_files;
    for (const auto& [base, entries] : TxnIndexFiles()) {
      EXPECT_FALSE(entries.empty()) << "empty .txnindex at " << base;
      size_t i = 0;
      while (i < log.segment_count() && log.segment(i).base_offset() != base) ++i;
      ASSERT_LT(i, log.segment_count()) << "a .txnindex without its segment: " << base;
      for (const AbortedTxn& t : entries) {
        EXPECT_GE(t.last_offset, base);
        EXPECT_LT(t.last_offset, log.segment(i).next_offset());
      }
      from_files.insert(from_files.end(), entries.begin(), entries.end());
    }
    EXPECT_EQ(from_files, log.AbortedTransactions(0, log.log_end_offset()));
  }

  // Offsets 0-14 as in the test below; returns the log with P3's transaction open at 11.
  std::unique_ptr<PartitionLog> BuildLog() {
    auto log = Open();
    // Segment 0.
    EXPECT_EQ(Add(*log, 0, -1, 0, {{"k1", "a0"}, {"k2", "b1"}}), 0);
    EXPECT_EQ(Add(*log, 0, kP1, 0, {{"k1", "c2"}, {"k3", "c3"}}), 2);
    EXPECT_EQ(Add(*log, 0, kP2, 0, {{"k2", "x4"}, {"k4", "x5"}}), 4);
    // Segment 1: P1 commits, P2 writes once more and aborts.
    EXPECT_EQ(Mark(*log, 1, kP1, ControlRecordType::kCommit), 6);
    EXPECT_EQ(Add(*log, 1, kP2, 2, {{"k1", "x7"}}), 7);
    EXPECT_EQ(Mark(*log, 1, kP2, ControlRecordType::kAbort), 8);
    EXPECT_EQ(Add(*log, 1, -1, 0, {{"k2", "b9"}}), 9);
    // Segment 2: P3 opens a transaction in the middle; P1 commits another after it.
    EXPECT_EQ(Add(*log, 2, -1, 0, {{"k5", "e10"}}), 10);
    EXPECT_EQ(Add(*log, 2, kP3, 0, {{"k1", "open11"}}), 11);
    EXPECT_EQ(Add(*log, 2, kP1, 2, {{"k3", "c12"}}), 12);
    EXPECT_EQ(Mark(*log, 2, kP1, ControlRecordType::kCommit), 13);
    // Segment 3, the active one.
    EXPECT_EQ(Add(*log, 3, -1, 0, {{"k6", "f14"}}), 14);
    EXPECT_EQ(log->segment_count(), 4u);
    EXPECT_EQ(log->segment(3).base_offset(), 14);
    return log;
  }

  fs::path dir_;
  int64_t base_ms_ = 0;
};

const AbortedTxn kP2Aborted{kP2, 4, 8, 9};  // its marker at 8, the LSO after it 9

TEST_P(LogCleanerTxnTest, AbortedGoCommittedCompactMarkersFollowKafkasRules) {
  auto log = BuildLog();
  ASSERT_EQ(log->last_stable_offset(), 11);
  ASSERT_EQ(log->AbortedTransactions(0, 15), std::vector<AbortedTxn>{kP2Aborted});
  const std::map<int64_t, std::string> view0 = ReadCommitted(*log);
  EXPECT_EQ(
      view0,
      (std::map<int64_t, std::string>{
          {0, "k1=a0"}, {1, "k2=b1"}, {2, "k1=c2"}, {3, "k3=c3"}, {9, "k2=b9"}, {10, "k5=e10"}}));
  std::vector<ReadBatch> before = ReadBatches(*log);

  // Round 1: the cleanable range stops at the LSO (11), inside segment 2.
  CleanerPass pass = Clean(*log, 0, Ts(3) + 1000);
  ASSERT_TRUE(pass.cleaned);
  EXPECT_EQ(pass.first_dirty_offset, 11);
  std::map<int64_t, std::string> view1 = ReadCommitted(*log);
  EXPECT_EQ(view1, (std::map<int64_t, std::string>{
                       {2, "k1=c2"}, {3, "k3=c3"}, {9, "k2=b9"}, {10, "k5=e10"}}));
  EXPECT_EQ(LatestPerKey(view1), LatestPerKey(view0));
  // Every record left, read_uncommitted: the aborted ones (4, 5, 7) are gone whatever
  // their keys, the open transaction's (11) and everything after the LSO are untouched.
  std::vector<ReadBatch> after = ReadBatches(*log);
  std::map<int64_t, std::vector<std::pair<std::string, std::string>>> records;
  for (const ReadBatch& b : after) {
    if (!b.header.is_control()) records[b.header.base_offset] = b.records;
  }
  using KVs = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(records, (std::map<int64_t, KVs>{{2, {{"k1", "c2"}, {"k3", "c3"}}},
                                             {7, {}},  // P2's last batch, kept empty
                                             {9, {{"k2", "b9"}}},
                                             {10, {{"k5", "e10"}}},
                                             {11, {{"k1", "open11"}}},
                                             {12, {{"k3", "c12"}}},
                                             {14, {{"k6", "f14"}}}}));
  for (const ReadBatch& b : before) {
    if (b.header.base_offset < 11) continue;
    auto same = std::find_if(after.begin(), after.end(), [&](const ReadBatch& a) {
      return a.header.base_offset == b.header.base_offset;
    });
    ASSERT_NE(same, after.end()) << b.header.base_offset;
    EXPECT_EQ(same->bytes, b.bytes) << "batch at " << b.header.base_offset << " was rewritten";
  }
  // Both transactions with batches seen keep their markers; P2's entry stays indexed, in
  // the cleaned segment holding its marker.
  EXPECT_EQ(Markers(*log),
            (std::map<int64_t, std::string>{{6, "commit"}, {8, "abort"}, {13, "commit"}}));
  EXPECT_EQ(log->AbortedTransactions(0, log->log_end_offset()),
            std::vector<AbortedTxn>{kP2Aborted});
  EXPECT_EQ(TxnIndexFiles(),
            (std::map<int64_t, std::vector<AbortedTxn>>{{GetParam() ? 0 : 6, {kP2Aborted}}}));
  ExpectIndexesMatchLog(*log);
  EXPECT_TRUE(FilesEndingWith(".swap").empty());
  EXPECT_EQ(log->last_stable_offset(), 11);
  // Nothing more to clean while the transaction stays open.
  EXPECT_FALSE(Clean(*log, 11, Ts(3) + 1000).cleaned);

  // P3 commits; P2 commits a new transaction (so its batch at 7 is no longer its last);
  // a roll makes segment 3 cleanable.
  EXPECT_EQ(Mark(*log, 3, kP3, ControlRecordType::kCommit), 15);
  EXPECT_EQ(Add(*log, 3, kP2, 3, {{"k7", "p16"}}), 16);
  EXPECT_EQ(Mark(*log, 3, kP2, ControlRecordType::kCommit), 17);
  EXPECT_EQ(Add(*log, 4, -1, 0, {{"k8", "g18"}}), 18);
  ASSERT_EQ(log->last_stable_offset(), 19);
  const std::map<int64_t, std::string> view2 = ReadCommitted(*log);

  // Round 2: k1 now has a committed value at 11; P2's empty batch goes, but was seen, so
  // the ABORT marker and its entry stay.
  pass = Clean(*log, pass.first_dirty_offset, Ts(4) + 1000);
  ASSERT_TRUE(pass.cleaned);
  EXPECT_EQ(pass.first_dirty_offset, 18);
  std::map<int64_t, std::string> view3 = ReadCommitted(*log);
  EXPECT_EQ(view3, (std::map<int64_t, std::string>{{9, "k2=b9"},
                                                   {10, "k5=e10"},
                                                   {11, "k1=open11"},
                                                   {12, "k3=c12"},
                                                   {14, "k6=f14"},
                                                   {16, "k7=p16"},
                                                   {18, "k8=g18"}}));
  EXPECT_EQ(LatestPerKey(view3), LatestPerKey(view2));
  EXPECT_EQ(Markers(*log),
            (std::map<int64_t, std::string>{
                {6, "commit"}, {8, "abort"}, {13, "commit"}, {15, "commit"}, {17, "commit"}}));
  EXPECT_EQ(log->AbortedTransactions(0, log->log_end_offset()),
            std::vector<AbortedTxn>{kP2Aborted});
  ExpectIndexesMatchLog(*log);

  // Round 3 (a full re-clean): the transactions of the markers at 6 and 8 have no batch
  // left, so both markers get a delete horizon, and the aborted entry goes from the index.
  const int64_t now3 = Ts(4) + 2000;
  pass = Clean(*log, 0, now3);
  ASSERT_TRUE(pass.cleaned);
  EXPECT_EQ(ReadCommitted(*log), view3);
  EXPECT_EQ(Markers(*log),
            (std::map<int64_t, std::string>{
                {6, "commit"}, {8, "abort"}, {13, "commit"}, {15, "commit"}, {17, "commit"}}));
  for (const ReadBatch& b : ReadBatches(*log)) {
    // The markers whose transactions are empty now, and only they, carry a horizon.
    const bool empty_txn = b.header.base_offset == 6 || b.header.base_offset == 8;
    EXPECT_EQ((b.header.attributes & 0x40) != 0, empty_txn) << b.header.base_offset;
    if (empty_txn) {
      EXPECT_EQ(b.header.base_timestamp, now3 + kDeleteRetentionMs);
    }
  }
  EXPECT_TRUE(log->AbortedTransactions(0, log->log_end_offset()).empty());
  EXPECT_TRUE(TxnIndexFiles().empty());
  EXPECT_TRUE(FilesEndingWith(".swap").empty());

  // Round 4, just before the horizon: nothing changes. At it, both markers go; the
  // markers of transactions with data stay.
  pass = Clean(*log, 0, now3 + kDeleteRetentionMs - 1);
  EXPECT_EQ(Markers(*log).size(), 5u);
  pass = Clean(*log, 0, now3 + kDeleteRetentionMs);
  ASSERT_TRUE(pass.cleaned);
  EXPECT_EQ(Markers(*log),
            (std::map<int64_t, std::string>{{13, "commit"}, {15, "commit"}, {17, "commit"}}));
  EXPECT_EQ(ReadCommitted(*log), view3);
  EXPECT_EQ(log->last_stable_offset(), 19);
  EXPECT_EQ(log->log_end_offset(), 19);
}

TEST_P(LogCleanerTxnTest, ReopenAfterCleaningKeepsProducerStateAndLso) {
  std::map<int64_t, ProducerSummary> producers;
  std::map<int64_t, std::string> view;
  std::vector<AbortedTxn> aborted;
  {
    auto log = BuildLog();
    ASSERT_TRUE(Clean(*log, 0, Ts(3) + 1000).cleaned);
    producers = Producers(*log);
    view = ReadCommitted(*log);
    aborted = log->AbortedTransactions(0, log->log_end_offset());
    ASSERT_EQ(aborted, std::vector<AbortedTxn>{kP2Aborted});
    EXPECT_EQ(producers.at(kP2), (ProducerSummary{0, 2, 7, -1, kCoordinatorEpoch}));
    EXPECT_EQ(producers.at(kP3), (ProducerSummary{0, 0, 11, 11, -1}));
    ASSERT_TRUE(log->Close().ok());
  }
  {
    // A clean stop: the producer state comes from the snapshot taken at Close.
    auto log = Open({.recovery_point = 15, .log_start_offset = 0, .clean_shutdown = true});
    EXPECT_EQ(Producers(*log), producers);
    EXPECT_EQ(log->last_stable_offset(), 11);
    EXPECT_EQ(log->AbortedTransactions(0, log->log_end_offset()), aborted);
    EXPECT_EQ(ReadCommitted(*log), view);
    ExpectIndexesMatchLog(*log);
    // Dropped without Close: a crash.
  }
  // A crash that also lost every producer snapshot: the state is replayed from the cleaned
  // log. The batches kept for active producers (P2's empty one at 7) carry their
  // sequence numbers; the open transaction is found again; no index entry is added twice.
  for (const std::string& name : FilesEndingWith(".snapshot")) fs::remove(dir_ / name);
  auto log = Open({.recovery_point = 0, .log_start_offset = 0, .clean_shutdown = false});
  EXPECT_EQ(Producers(*log), producers);
  EXPECT_EQ(log->last_stable_offset(), 11);
  EXPECT_EQ(log->AbortedTransactions(0, log->log_end_offset()), aborted);
  EXPECT_EQ(ReadCommitted(*log), view);
  ExpectIndexesMatchLog(*log);
  // The producers go on where they were: P2's next sequence is 3, P3 can still commit.
  EXPECT_EQ(Add(*log, 3, kP2, 3, {{"k7", "p15"}}), 15);
  EXPECT_EQ(Mark(*log, 3, kP2, ControlRecordType::kCommit), 16);
  EXPECT_EQ(Mark(*log, 3, kP3, ControlRecordType::kCommit), 17);
  EXPECT_EQ(log->last_stable_offset(), 18);
  EXPECT_EQ(ReadCommitted(*log).at(11), "k1=open11");
}

TEST_P(LogCleanerTxnTest, AnOpenTransactionAtTheFirstDirtyOffsetStopsCleaning) {
  auto log = Open();
  ASSERT_EQ(Add(*log, 0, kP3, 0, {{"k1", "open0"}}), 0);
  ASSERT_EQ(Add(*log, 0, -1, 0, {{"k1", "v1"}}), 1);
  ASSERT_EQ(Add(*log, 1, -1, 0, {{"k1", "v2"}}), 2);
  ASSERT_EQ(Add(*log, 2, -1, 0, {{"k1", "v3"}}), 3);
  ASSERT_EQ(log->segment_count(), 3u);
  ASSERT_EQ(log->last_stable_offset(), 0);
  const std::vector<ReadBatch> before = ReadBatches(*log);
  CleanerPass pass = Clean(*log, 0, Ts(2) + 1000);
  EXPECT_FALSE(pass.cleaned);
  EXPECT_EQ(pass.first_dirty_offset, 0);
  const std::vector<ReadBatch> after = ReadBatches(*log);
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(after[i].bytes, before[i].bytes);
  // Once it commits, its record is superseded like any other.
  ASSERT_EQ(Mark(*log, 2, kP3, ControlRecordType::kCommit), 4);
  ASSERT_EQ(Add(*log, 3, -1, 0, {{"k2", "w5"}}), 5);
  pass = Clean(*log, 0, Ts(3) + 1000);
  ASSERT_TRUE(pass.cleaned);
  EXPECT_EQ(ReadCommitted(*log), (std::map<int64_t, std::string>{{3, "k1=v3"}, {5, "k2=w5"}}));
  // P3's emptied batch stays (its last), so its marker does too.
  EXPECT_EQ(Markers(*log), (std::map<int64_t, std::string>{{4, "commit"}}));
}

INSTANTIATE_TEST_SUITE_P(Groups, LogCleanerTxnTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "OneGroup" : "GroupPerSegment";
                         });

// --- the swap, with the transaction index -------------------------------------------

class ReplaceSegmentsTxnTest : public LogCleanerTxnTest {};

TEST_P(ReplaceSegmentsTxnTest, EntriesOutsideTheCleanedRangeAreRefused) {
  auto log = BuildLog();
  const fs::path cleaned = dir_ / "00000000000000000000.log.cleaned";
  std::ofstream(cleaned, std::ios::binary) << Slurp(log->segment(0).log_path());
  // Segment 0 ends at 6: an entry ending at 8 is not one of its markers; nor are entries
  // out of order.
  EXPECT_EQ(log->ReplaceSegments(0, 1, cleaned, {kP2Aborted}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log->ReplaceSegments(0, 1, cleaned, {{9, 0, 3, 4}, {9, 0, 2, 4}}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(fs::exists(cleaned));
  EXPECT_EQ(log->segment_count(), 4u);
  EXPECT_EQ(log->AbortedTransactions(0, 15), std::vector<AbortedTxn>{kP2Aborted});
}

// A crash inside ReplaceSegments after the old segments went and before the index swap
// was renamed, with a stale .txnindex of the old first segment still there: Open installs
// the index swap (an empty one meaning no index).
TEST_P(ReplaceSegmentsTxnTest, OpenFinishesASwapWithItsIndexSwap) {
  std::string cleaned_log;
  std::vector<AbortedTxn> retained;
  {
    auto log = BuildLog();
    ASSERT_TRUE(Clean(*log, 0, Ts(3) + 1000).cleaned);
    retained = log->AbortedTransactions(0, log->log_end_offset());
    ASSERT_EQ(retained, std::vector<AbortedTxn>{kP2Aborted});
    ASSERT_TRUE(log->Close().ok());
  }
  const int64_t base = GetParam() ? 0 : 6;  // the cleaned segment holding the marker
  const fs::path log_file = dir_ / Segment::FileName(base, ".log");
  const fs::path index = dir_ / Segment::FileName(base, kTxnIndexSuffix);
  fs::rename(log_file, dir_ / Segment::FileName(base, ".log.swap"));
  fs::rename(index, dir_ / Segment::FileName(base, ".txnindex.swap"));
  std::ofstream(index, std::ios::binary) << TransactionIndex::Encode({{7, base, base, base + 1}});
  {
    auto log = Open({.recovery_point = 0, .log_start_offset = 0, .clean_shutdown = false});
    EXPECT_EQ(log->AbortedTransactions(0, log->log_end_offset()), retained);
    EXPECT_EQ(TxnIndexFiles(), (std::map<int64_t, std::vector<AbortedTxn>>{{base, retained}}));
    EXPECT_TRUE(FilesEndingWith(".swap").empty());
    EXPECT_EQ(log->last_stable_offset(), 11);
    ExpectIndexesMatchLog(*log);
    ASSERT_TRUE(log->Close().ok());
  }
  // The same with an empty index swap: the stale index goes, and the segment has none.
  fs::rename(log_file, dir_ / Segment::FileName(base, ".log.swap"));
  std::ofstream(dir_ / Segment::FileName(base, ".txnindex.swap"), std::ios::binary) << "";
  auto log = Open({.recovery_point = 0, .log_start_offset = 0, .clean_shutdown = false});
  EXPECT_TRUE(TxnIndexFiles().empty());
  EXPECT_TRUE(FilesEndingWith(".swap").empty());
  EXPECT_TRUE(log->AbortedTransactions(0, log->log_end_offset()).empty());
  EXPECT_EQ(log->segment(0).base_offset(), 0);
}

INSTANTIATE_TEST_SUITE_P(Groups, ReplaceSegmentsTxnTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "OneGroup" : "GroupPerSegment";
                         });

}  // namespace
}  // namespace runnel::storage
