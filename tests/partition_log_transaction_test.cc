// Transactions in storage: the end-transaction marker batch (protocol/control_record.h),
// and PartitionLog with markers (storage/partition_log.h): the last stable offset, the
// transaction indexes and AbortedTransactions, reads bounded by max_offset, refusals, clean
// and crash-style reopens, retention, compaction's segment swap, the in-memory mode.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "protocol/control_record.h"
#include "protocol/record_batch.h"
#include "storage/file.h"
#include "storage/memory_file_system.h"
#include "storage/partition_log.h"
#include "storage/producer_state.h"
#include "storage/segment.h"
#include "storage/transaction_index.h"
#include "tests/slurp.h"

namespace runnel::storage {
namespace {

namespace fs = std::filesystem;
using protocol::ControlRecordType;
using protocol::EndTxnMarker;

constexpr int64_t kTime = 1700000000000;
constexpr auto kAbort = ControlRecordType::kAbort;
constexpr auto kCommit = ControlRecordType::kCommit;

// A producer's batch of `count` records; transactional unless said otherwise.
std::string Batch(int64_t pid, int16_t epoch, int32_t seq, int count = 1,
                  bool transactional = true) {
  std::vector<protocol::RecordToAdd> records;
  for (int i = 0; i < count; ++i) {
    protocol::RecordToAdd r;
    r.key = "k";
    r.value = "v" + std::to_string(i);
    r.timestamp = kTime;
    records.push_back(std::move(r));
  }
  protocol::BatchOptions options;
  options.producer_id = pid;
  options.producer_epoch = epoch;
  options.base_sequence = seq;
  options.transactional = transactional;
  return protocol::BuildBatch(records, options);
}

std::string Plain(int count = 1) { return Batch(-1, -1, -1, count, false); }

// A control batch with one record of this key and value.
std::string ControlBatch(int64_t pid, const std::string& key, const std::string& value) {
  protocol::RecordToAdd r;
  r.key = key;
  r.value = value;
  r.timestamp = kTime;
  protocol::BatchOptions options;
  options.producer_id = pid;
  options.producer_epoch = 0;
  options.transactional = true;
  options.control = true;
  return protocol::BuildBatch({r}, options);
}

// The base offsets of the batches a read returned.
std::vector<int64_t> BasesOf(const ReadInfo& info) {
  std::string bytes;
  for (const FileRange& r : info.ranges) {
    std::string part(r.length, '\0');
    EXPECT_EQ(::pread(r.fd, part.data(), part.size(), static_cast<off_t>(r.position)),
              static_cast<ssize_t>(r.length));
    bytes += part;
  }
  std::vector<int64_t> bases;
  protocol::BatchIterator it(bytes);
  std::string_view batch;
  protocol::BatchHeader h;
  while (it.Next(&batch, &h)) bases.push_back(h.base_offset);
  EXPECT_FALSE(it.truncated());
  return bases;
}

// --- the marker batch ----------------------------------------------------------------

TEST(ControlRecordTest, MarkerBatchIsKafkasEndTransactionMarker) {
  const std::string batch = protocol::BuildEndTxnMarkerBatch(42, 3, {kCommit, 7}, kTime);
  // RECORD_BATCH_OVERHEAD (61) + EndTransactionMarker.CURRENT_END_TXN_SCHEMA_RECORD_SIZE (17).
  EXPECT_EQ(batch.size(), 78u);
  EXPECT_TRUE(protocol::ValidateBatch(batch).ok());
  auto h = protocol::ParseBatchHeader(batch);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->base_offset, 0);
  EXPECT_EQ(h->partition_leader_epoch, -1);
  EXPECT_EQ(h->attributes, 0x30);  // transactional | control, CreateTime, no codec
  EXPECT_EQ(h->last_offset_delta, 0);
  EXPECT_EQ(h->base_timestamp, kTime);
  EXPECT_EQ(h->max_timestamp, kTime);
  EXPECT_EQ(h->producer_id, 42);
  EXPECT_EQ(h->producer_epoch, 3);
  EXPECT_EQ(h->base_sequence, -1);
  EXPECT_EQ(h->record_count, 1);
  std::string scratch;
  auto records = protocol::ReadRecords(batch, &scratch);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 1u);
  const protocol::Record& r = records->front();
  EXPECT_EQ(r.offset, 0);
  EXPECT_EQ(r.timestamp, kTime);
  ASSERT_TRUE(r.key.has_value());
  EXPECT_EQ(absl::BytesToHexString(std::string(*r.key)), "00000001");  // version 0, COMMIT
  ASSERT_TRUE(r.value.has_value());
  EXPECT_EQ(absl::BytesToHexString(std::string(*r.value)), "000000000007");  // version 0, epoch
  EXPECT_TRUE(r.headers.empty());

  EXPECT_EQ(protocol::ParseEndTxnMarker(batch), (EndTxnMarker{kCommit, 7}));
  const std::string abort = protocol::BuildEndTxnMarkerBatch(5, 0, {kAbort, 0x12345678}, kTime + 1);
  EXPECT_EQ(protocol::ParseEndTxnMarker(abort), (EndTxnMarker{kAbort, 0x12345678}));
}

TEST(ControlRecordTest, OtherRecordsAreNoMarkers) {
  const std::string key = absl::HexStringToBytes("00000000");
  const std::string value = absl::HexStringToBytes("000000000009");
  EXPECT_EQ(protocol::ParseEndTxnMarker(ControlBatch(1, key, value)), (EndTxnMarker{kAbort, 9}));
  // Later key and value versions may add fields: read as version 0 (Kafka's parse).
  EXPECT_EQ(protocol::ParseEndTxnMarker(ControlBatch(1, absl::HexStringToBytes("00050001ffff"),
                                                     absl::HexStringToBytes("00030000000affff"))),
            (EndTxnMarker{kCommit, 10}));
  // Not a control batch; LEADER_CHANGE (2); an unknown type; a negative version; a short key
  // or value; no record; a truncated batch.
  std::vector<protocol::RecordToAdd> plain(1);
  plain[0].key = key;
  plain[0].value = value;
  EXPECT_EQ(protocol::ParseEndTxnMarker(protocol::BuildBatch(plain)), std::nullopt);
  EXPECT_EQ(protocol::ParseEndTxnMarker(ControlBatch(1, absl::HexStringToBytes("00000002"), value)),
            std::nullopt);
  EXPECT_EQ(protocol::ParseEndTxnMarker(ControlBatch(1, absl::HexStringToBytes("00000151"), value)),
            std::nullopt);
  EXPECT_EQ(protocol::ParseEndTxnMarker(ControlBatch(1, absl::HexStringToBytes("ffff0001"), value)),
            std::nullopt);
  EXPECT_EQ(protocol::ParseEndTxnMarker(ControlBatch(1, "\x00\x00", value)), std::nullopt);
  EXPECT_EQ(protocol::ParseEndTxnMarker(ControlBatch(1, key, absl::HexStringToBytes("0000"))),
            std::nullopt);
  protocol::BatchOptions control;
  control.producer_id = 1;
  control.control = true;
  EXPECT_EQ(protocol::ParseEndTxnMarker(protocol::BuildBatch({}, control)), std::nullopt);
  const std::string marker = protocol::BuildEndTxnMarkerBatch(1, 0, {kCommit, 0}, kTime);
  EXPECT_EQ(protocol::ParseEndTxnMarker(marker.substr(0, marker.size() - 1)), std::nullopt);
}

// --- through PartitionLog ------------------------------------------------------------

class PartitionLogTxnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "partition_log_txn_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ / "topic-0";
  }
  void TearDown() override { fs::remove_all(root_); }

  static LogConfig Config(int64_t segment_bytes = 1073741824) {
    LogConfig config;
    config.segment_bytes = segment_bytes;  // 100: every batch in a segment of its own
    config.producer_id_expiration_ms = std::numeric_limits<int64_t>::max();
    return config;
  }

  std::unique_ptr<PartitionLog> Open(LogConfig config = Config(), LogCheckpoint checkpoint = {}) {
    auto log = PartitionLog::Open(dir_, config, checkpoint);
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? *std::move(log) : nullptr;
  }

  static absl::StatusOr<AppendInfo> Append(PartitionLog& log, std::string batch,
                                           AppendOrigin origin = AppendOrigin::kClient) {
    return log.Append(batch.data(), batch.size(), origin);
  }
  static int64_t Add(PartitionLog& log, std::string batch) {
    auto info = Append(log, std::move(batch));
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? info->base_offset : -1;
  }
  static int64_t Mark(PartitionLog& log, int64_t pid, ControlRecordType type, int16_t epoch = 0,
                      int32_t coordinator_epoch = 0) {
    auto info = log.AppendTxnMarker(pid, epoch, {type, coordinator_epoch}, kTime);
    EXPECT_TRUE(info.ok()) << info.status();
    if (!info.ok()) return -1;
    EXPECT_EQ(info->base_offset, info->last_offset);
    return info->base_offset;
  }

  std::vector<int64_t> FilesWith(std::string_view suffix) const {
    std::vector<int64_t> out;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      auto offset = Segment::ParseFileName(entry.path().filename().string(), suffix);
      if (offset) out.push_back(*offset);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  std::string TxnIndexBytes(int64_t base) const {
    return Slurp(dir_ / Segment::FileName(base, ".txnindex"));
  }
  static std::vector<AbortedTxn> AllAborted(const PartitionLog& log) {
    return log.AbortedTransactions(0, std::numeric_limits<int64_t>::max());
  }

  fs::path root_;
  fs::path dir_;
};

TEST_F(PartitionLogTxnTest, MarkersCompleteTransactionsAndMoveTheLastStableOffset) {
  auto log = Open();
  EXPECT_EQ(log->last_stable_offset(), 0);
  ASSERT_EQ(Add(*log, Plain()), 0);
  EXPECT_EQ(log->last_stable_offset(), 1);
  ASSERT_EQ(Add(*log, Batch(1, 0, 0, 2)), 1);  // producer 1: 1-2
  EXPECT_EQ(log->last_stable_offset(), 1);
  ASSERT_EQ(Add(*log, Batch(2, 0, 0)), 3);  // producer 2: 3
  ASSERT_EQ(Add(*log, Batch(1, 0, 2)), 4);
  EXPECT_EQ(log->last_stable_offset(), 1);
  EXPECT_EQ(log->log_end_offset(), 5);

  ASSERT_EQ(Mark(*log, 1, kCommit, 0, 4), 5);
  EXPECT_EQ(log->last_stable_offset(), 3);  // producer 2 is still open
  EXPECT_TRUE(AllAborted(*log).empty());
  EXPECT_TRUE(FilesWith(".txnindex").empty());  // a commit is not indexed
  const ProducerEntry* p1 = log->producer_state().Find(1);
  ASSERT_NE(p1, nullptr);
  EXPECT_EQ(p1->current_txn_first_offset, -1);
  EXPECT_EQ(p1->coordinator_epoch, 4);

  ASSERT_EQ(Mark(*log, 2, kAbort, 0, 4), 6);
  EXPECT_EQ(log->last_stable_offset(), 7);
  const std::vector<AbortedTxn> expected = {{2, 3, 6, 7}};
  EXPECT_EQ(AllAborted(*log), expected);
  EXPECT_EQ(FilesWith(".txnindex"), (std::vector<int64_t>{0}));
  EXPECT_EQ(TxnIndexBytes(0), TransactionIndex::Encode(expected));

  // Two interleaved transactions, the older aborted first: its entry records the other's
  // first offset as the LSO.
  ASSERT_EQ(Add(*log, Batch(3, 0, 0)), 7);
  ASSERT_EQ(Add(*log, Batch(4, 0, 0)), 8);
  ASSERT_EQ(Mark(*log, 3, kAbort), 9);
  EXPECT_EQ(log->last_stable_offset(), 8);
  ASSERT_EQ(Mark(*log, 4, kAbort), 10);
  EXPECT_EQ(log->last_stable_offset(), 11);
  EXPECT_EQ(AllAborted(*log),
            (std::vector<AbortedTxn>{{2, 3, 6, 7}, {3, 7, 9, 8}, {4, 8, 10, 11}}));

  // The markers are in the log as written.
  auto read = log->Read(5, 1 << 20, false);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->ranges.size(), 1u);
  std::string bytes(read->ranges[0].length, '\0');
  ASSERT_EQ(::pread(read->ranges[0].fd, bytes.data(), bytes.size(),
                    static_cast<off_t>(read->ranges[0].position)),
            static_cast<ssize_t>(bytes.size()));
  auto h = protocol::ParseBatchHeader(bytes);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->base_offset, 5);
  EXPECT_TRUE(h->is_control());
  EXPECT_EQ(protocol::ParseEndTxnMarker(bytes), (EndTxnMarker{kCommit, 4}));
}

TEST_F(PartitionLogTxnTest, ControlBatchesComeOnlyFromTheCoordinator) {
  auto log = Open();
  ASSERT_EQ(Add(*log, Batch(1, 2, 0)), 0);
  std::string marker = protocol::BuildEndTxnMarkerBatch(1, 2, {kAbort, 3}, kTime);
  auto refused = Append(*log, marker);  // from a client
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  EXPECT_EQ(log->log_end_offset(), 1);
  // Not a marker, or without a producer id: refused from the coordinator too.
  const std::string value = absl::HexStringToBytes("000000000003");
  EXPECT_EQ(Append(*log, ControlBatch(1, absl::HexStringToBytes("00000002"), value),
                   AppendOrigin::kCoordinator)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Append(*log, ControlBatch(-1, absl::HexStringToBytes("00000000"), value),
                   AppendOrigin::kCoordinator)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log->log_end_offset(), 1);
  // Fenced markers write nothing.
  auto stale = log->AppendTxnMarker(1, 1, {kAbort, 3}, kTime);
  EXPECT_EQ(ProducerErrorOf(stale.status()), ProducerError::kInvalidProducerEpoch)
      << stale.status();
  ASSERT_EQ(Mark(*log, 1, kAbort, 2, 3), 1);
  ASSERT_EQ(Add(*log, Batch(1, 2, 1)), 2);
  auto zombie = log->AppendTxnMarker(1, 2, {kAbort, 2}, kTime);
  EXPECT_EQ(ProducerErrorOf(zombie.status()), ProducerError::kTransactionCoordinatorFenced)
      << zombie.status();
  EXPECT_EQ(log->log_end_offset(), 3);
  EXPECT_EQ(log->last_stable_offset(), 2);
  // The same marker bytes from the coordinator's own Append.
  marker = protocol::BuildEndTxnMarkerBatch(1, 2, {kAbort, 3}, kTime);
  auto written = Append(*log, marker, AppendOrigin::kCoordinator);
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(written->base_offset, 3);
  EXPECT_EQ(log->last_stable_offset(), 4);
  EXPECT_EQ(AllAborted(*log), (std::vector<AbortedTxn>{{1, 0, 1, 2}, {1, 2, 3, 4}}));
  // A replay writes a control batch that is no marker, changing no state.
  ASSERT_TRUE(Append(*log, ControlBatch(1, absl::HexStringToBytes("00000002"), value),
                     AppendOrigin::kReplay)
                  .ok());
  EXPECT_EQ(log->log_end_offset(), 5);
  EXPECT_EQ(log->producer_state().Find(1)->coordinator_epoch, 3);
}

TEST_F(PartitionLogTxnTest, AbortedTransactionsAcrossSegments) {
  auto log = Open(Config(100));                // a segment per batch
  ASSERT_EQ(Add(*log, Batch(1, 0, 0, 2)), 0);  // producer 1: 0-1
  ASSERT_EQ(Mark(*log, 1, kAbort), 2);         // {1, 0, 2, 3}
  ASSERT_EQ(Add(*log, Plain()), 3);
  ASSERT_EQ(Add(*log, Batch(2, 0, 0)), 4);
  ASSERT_EQ(Add(*log, Batch(3, 0, 0)), 5);
  ASSERT_EQ(Mark(*log, 2, kAbort), 6);  // {2, 4, 6, 5}
  ASSERT_EQ(Mark(*log, 3, kCommit), 7);
  ASSERT_EQ(Add(*log, Batch(4, 0, 0, 2)), 8);  // 8-9
  ASSERT_EQ(Mark(*log, 4, kAbort), 10);        // {4, 8, 10, 11}
  ASSERT_EQ(log->segment_count(), 9u);
  EXPECT_EQ(FilesWith(".txnindex"), (std::vector<int64_t>{2, 6, 10}));
  const AbortedTxn t1{1, 0, 2, 3}, t2{2, 4, 6, 5}, t4{4, 8, 10, 11};
  EXPECT_EQ(TxnIndexBytes(6), TransactionIndex::Encode({t2}));

  using V = std::vector<AbortedTxn>;
  EXPECT_EQ(log->AbortedTransactions(0, 1), V{t1});
  EXPECT_EQ(log->AbortedTransactions(0, 11), (V{t1, t2, t4}));
  EXPECT_EQ(log->AbortedTransactions(2, 3), V{t1});
  EXPECT_EQ(log->AbortedTransactions(3, 4), V{});
  EXPECT_EQ(log->AbortedTransactions(3, 5), V{t2});
  EXPECT_EQ(log->AbortedTransactions(5, 6), V{t2});
  EXPECT_EQ(log->AbortedTransactions(5, 9), (V{t2, t4}));
  EXPECT_EQ(log->AbortedTransactions(7, 8), V{});
  EXPECT_EQ(log->AbortedTransactions(9, 11), V{t4});
  EXPECT_EQ(log->AbortedTransactions(11, 12), V{});
}

TEST_F(PartitionLogTxnTest, ReadStopsBeforeMaxOffset) {
  for (int64_t segment_bytes : {int64_t{1073741824}, int64_t{100}}) {
    SCOPED_TRACE(segment_bytes);
    fs::remove_all(dir_);
    auto log = Open(Config(segment_bytes));
    ASSERT_EQ(Add(*log, Plain()), 0);
    ASSERT_EQ(Add(*log, Batch(1, 0, 0)), 1);  // opens a transaction: LSO 1
    ASSERT_EQ(Add(*log, Plain(3)), 2);        // 2-4
    ASSERT_EQ(Add(*log, Plain()), 5);
    const int64_t lso = log->last_stable_offset();
    ASSERT_EQ(lso, 1);
    auto bases = [&](int64_t offset, int64_t max_offset, bool min_one = false,
                     uint64_t max_bytes = 1 << 20) {
      auto read = log->Read(offset, max_bytes, min_one, max_offset);
      EXPECT_TRUE(read.ok()) << read.status();
      return read.ok() ? BasesOf(*read) : std::vector<int64_t>{-1};
    };
    using V = std::vector<int64_t>;
    const bool one = segment_bytes == 100;  // reads stay within a segment
    EXPECT_EQ(bases(0, lso), V{0});
    EXPECT_EQ(bases(1, lso), V{});
    EXPECT_EQ(bases(1, lso, /*min_one=*/true), V{});  // the bound wins over KIP-74
    EXPECT_EQ(bases(0, 2), (one ? V{0} : V{0, 1}));
    // The batch holding max_offset but starting below it is returned.
    EXPECT_EQ(bases(0, 3), (one ? V{0} : V{0, 1, 2}));
    EXPECT_EQ(bases(2, 5), V{2});
    EXPECT_EQ(bases(3, 5), V{2});
    EXPECT_EQ(bases(5, 5), V{});
    EXPECT_EQ(bases(0, std::numeric_limits<int64_t>::max()), (one ? V{0} : V{0, 1, 2, 5}));
    EXPECT_EQ(bases(2, 6), (one ? V{2} : V{2, 5}));
    // max_bytes still applies.
    EXPECT_EQ(bases(0, 6, false, 100), V{0});
    ASSERT_EQ(Mark(*log, 1, kCommit), 6);
    EXPECT_EQ(log->last_stable_offset(), 7);
    EXPECT_EQ(bases(6, log->last_stable_offset()), V{6});
  }
}

TEST_F(PartitionLogTxnTest, CleanReopenKeepsTransactions) {
  std::vector<AbortedTxn> aborted;
  int64_t end = 0;
  {
    auto log = Open(Config(400));
    ASSERT_EQ(Add(*log, Batch(1, 0, 0)), 0);
    ASSERT_EQ(Add(*log, Batch(2, 0, 0)), 1);
    ASSERT_EQ(Add(*log, Batch(3, 0, 0)), 2);
    ASSERT_EQ(Mark(*log, 2, kAbort, 0, 5), 3);
    ASSERT_EQ(Mark(*log, 3, kCommit, 0, 5), 4);
    ASSERT_EQ(Add(*log, Batch(4, 1, 0)), 5);
    ASSERT_EQ(Mark(*log, 4, kAbort, 1, 6), 6);
    aborted = AllAborted(*log);
    ASSERT_EQ(aborted, (std::vector<AbortedTxn>{{2, 1, 3, 0}, {4, 5, 6, 0}}));
    ASSERT_GE(log->segment_count(), 2u);
    EXPECT_EQ(log->last_stable_offset(), 0);  // producer 1 is still open
    end = log->log_end_offset();
    ASSERT_TRUE(log->Close().ok());
  }
  auto log =
      Open(Config(400), {.recovery_point = end, .log_start_offset = 0, .clean_shutdown = true});
  EXPECT_EQ(log->log_end_offset(), end);
  EXPECT_EQ(log->last_stable_offset(), 0);
  EXPECT_EQ(AllAborted(*log), aborted);
  EXPECT_EQ(log->producer_state().ongoing_txns(), (std::map<int64_t, int64_t>{{0, 1}}));
  const ProducerEntry* p4 = log->producer_state().Find(4);
  ASSERT_NE(p4, nullptr);
  EXPECT_EQ(p4->epoch, 1);
  EXPECT_EQ(p4->coordinator_epoch, 6);
  EXPECT_EQ(p4->current_txn_first_offset, -1);
  // The coordinator epoch survived: an older coordinator is still fenced.
  EXPECT_EQ(ProducerErrorOf(log->AppendTxnMarker(4, 1, {kAbort, 5}, kTime).status()),
            ProducerError::kTransactionCoordinatorFenced);
  ASSERT_EQ(Mark(*log, 1, kAbort, 0, 5), 7);
  EXPECT_EQ(log->last_stable_offset(), 8);
  EXPECT_EQ(AllAborted(*log).back(), (AbortedTxn{1, 0, 7, 8}));
}

TEST_F(PartitionLogTxnTest, CrashReopenRebuildsTransactions) {
  const LogConfig config = Config(400);
  const LogCheckpoint crashed = {
      .recovery_point = 0, .log_start_offset = 0, .clean_shutdown = false};
  std::vector<AbortedTxn> aborted;
  std::map<int64_t, std::string> index_bytes;
  int64_t end = 0, p3_first = 0, p5_first = 0, last_marker = 0;
  {
    auto log = Open(config);
    ASSERT_EQ(Add(*log, Batch(1, 0, 0)), 0);  // stays open
    for (int i = 0; i < 6; ++i) {
      ASSERT_GE(Add(*log, Batch(2, 0, i)), 0);
      ASSERT_GE(Mark(*log, 2, i % 2 == 0 ? kAbort : kCommit, 0, i), 0);
    }
    p3_first = Add(*log, Batch(3, 0, 0));
    p5_first = Add(*log, Batch(5, 0, 0));  // stays open too
    last_marker = Mark(*log, 3, kAbort, 0, 9);
    ASSERT_GE(log->segment_count(), 3u);
    // The last marker is at or after the last roll's snapshot: recovery replays it.
    ASSERT_GE(last_marker, log->segment(log->segment_count() - 1).base_offset());
    aborted = AllAborted(*log);
    ASSERT_EQ(aborted.size(), 4u);
    for (const AbortedTxn& t : aborted) EXPECT_EQ(t.last_stable_offset, 0);
    for (int64_t base : FilesWith(".txnindex")) index_bytes[base] = TxnIndexBytes(base);
    end = log->log_end_offset();
    EXPECT_EQ(log->last_stable_offset(), 0);
    // No Close: the process dies here.
  }
  auto check = [&](PartitionLog& log) {
    EXPECT_EQ(log.log_end_offset(), end);
    EXPECT_EQ(log.last_stable_offset(), 0);
    EXPECT_EQ(AllAborted(log), aborted);
    EXPECT_EQ(log.producer_state().ongoing_txns(),
              (std::map<int64_t, int64_t>{{0, 1}, {p5_first, 5}}));
    const ProducerEntry* p3 = log.producer_state().Find(3);
    ASSERT_NE(p3, nullptr);
    EXPECT_EQ(p3->coordinator_epoch, 9);
    std::map<int64_t, std::string> now;
    for (int64_t base : FilesWith(".txnindex")) now[base] = TxnIndexBytes(base);
    EXPECT_EQ(now, index_bytes);  // nothing indexed twice
  };
  // The entry of the last abort did not reach the index before the crash: the replay after
  // the snapshot puts it back.
  const int64_t last_base = index_bytes.rbegin()->first;
  const fs::path last_index = dir_ / Segment::FileName(last_base, ".txnindex");
  fs::resize_file(last_index, fs::file_size(last_index) - TransactionIndex::kEntrySize);
  {
    auto log = Open(config, crashed);
    check(*log);
  }
  {
    auto log = Open(config, crashed);  // again, from the snapshot recovery wrote
    check(*log);
  }
  // A torn log tail cuts the last marker: its index entry goes with it, and producer 3's
  // transaction is open again.
  {
    auto log = Open(config, crashed);
    auto at = log->Read(last_marker, 1 << 20, true);
    ASSERT_TRUE(at.ok());
    ASSERT_EQ(at->ranges.size(), 1u);
    const fs::path active_log = log->segment(log->segment_count() - 1).log_path();
    fs::resize_file(active_log, at->ranges[0].position + 10);
  }
  auto log = Open(config, crashed);
  EXPECT_EQ(log->log_end_offset(), last_marker);
  const std::vector<AbortedTxn> kept(aborted.begin(), aborted.end() - 1);
  EXPECT_EQ(AllAborted(*log), kept);
  EXPECT_EQ(log->last_stable_offset(), 0);
  EXPECT_EQ(log->producer_state().ongoing_txns(),
            (std::map<int64_t, int64_t>{{0, 1}, {p3_first, 3}, {p5_first, 5}}));
  ASSERT_EQ(Mark(*log, 1, kCommit, 0, 9), last_marker);
  EXPECT_EQ(log->last_stable_offset(), p3_first);
}

TEST_F(PartitionLogTxnTest, DeletedSegmentsTakeTheirTransactionIndexes) {
  LogConfig config = Config(100);
  config.retention_ms = 1000;  // every inactive segment is old enough (kTime is 2023)
  auto log = Open(config);
  ASSERT_EQ(Add(*log, Batch(1, 0, 0)), 0);
  ASSERT_EQ(Mark(*log, 1, kAbort), 1);
  ASSERT_EQ(Add(*log, Batch(2, 0, 0)), 2);
  ASSERT_EQ(Mark(*log, 2, kAbort), 3);
  ASSERT_EQ(Add(*log, Batch(1, 0, 1)), 4);
  ASSERT_EQ(Mark(*log, 1, kAbort), 5);
  ASSERT_EQ(Add(*log, Plain()), 6);
  EXPECT_EQ(FilesWith(".txnindex"), (std::vector<int64_t>{1, 3, 5}));

  // DeleteRecords inside segment 3..: segments 0-2 go, with the index of segment 1.
  auto start = log->DeleteRecordsBefore(3);
  ASSERT_TRUE(start.ok());
  EXPECT_EQ(FilesWith(".txnindex"), (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(AllAborted(*log), (std::vector<AbortedTxn>{{2, 2, 3, 4}, {1, 4, 5, 6}}));
  EXPECT_EQ(log->AbortedTransactions(3, 7), (std::vector<AbortedTxn>{{2, 2, 3, 4}, {1, 4, 5, 6}}));

  // Retention takes every inactive segment and its index.
  auto deleted = log->DeleteExpiredSegments(kTime + 1000000);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 3u);
  EXPECT_TRUE(FilesWith(".txnindex").empty());
  EXPECT_TRUE(AllAborted(*log).empty());
  EXPECT_EQ(log->last_stable_offset(), log->log_end_offset());

  // An open transaction below the log start: the LSO is the log start (Kafka).
  ASSERT_EQ(Add(*log, Batch(2, 0, 1)), 7);
  ASSERT_EQ(Add(*log, Plain()), 8);
  ASSERT_TRUE(log->DeleteRecordsBefore(8).ok());
  EXPECT_EQ(log->last_stable_offset(), 8);
}

TEST_F(PartitionLogTxnTest, CompactionSwapMovesEntriesToTheCleanedSegment) {
  std::vector<AbortedTxn> aborted;
  int64_t base1 = 0;
  {
    auto log = Open(Config(200));  // two batches a segment
    ASSERT_EQ(Add(*log, Batch(1, 0, 0)), 0);
    ASSERT_EQ(Mark(*log, 1, kAbort), 1);
    ASSERT_EQ(Add(*log, Batch(1, 0, 1)), 2);
    ASSERT_EQ(Mark(*log, 1, kAbort), 3);
    ASSERT_EQ(Add(*log, Batch(1, 0, 2)), 4);
    ASSERT_EQ(Mark(*log, 1, kAbort), 5);
    ASSERT_EQ(Add(*log, Plain()), 6);
    ASSERT_GE(log->segment_count(), 3u);
    aborted = AllAborted(*log);
    ASSERT_EQ(aborted.size(), 3u);
    base1 = log->segment(1).base_offset();
    std::vector<int64_t> files = FilesWith(".txnindex");
    ASSERT_GE(files.size(), 2u);
    ASSERT_EQ(files[0], 0);
    // A "cleaned" copy of the first two segments (nothing removed), swapped in.
    const fs::path cleaned = dir_ / "00000000000000000000.log.cleaned";
    {
      std::ofstream out(cleaned, std::ios::binary);
      out << Slurp(log->segment(0).log_path()) << Slurp(log->segment(1).log_path());
    }
    // Nothing removed: the cleaned segment keeps every entry of the two replaced ones.
    std::vector<AbortedTxn> kept;
    for (const AbortedTxn& t : aborted) {
      if (t.last_offset < log->segment(2).base_offset()) kept.push_back(t);
    }
    ASSERT_TRUE(log->ReplaceSegments(0, 2, cleaned, kept).ok());
    EXPECT_EQ(log->segment(0).next_offset(), log->segment(1).base_offset());
    std::vector<int64_t> after = FilesWith(".txnindex");
    EXPECT_EQ(std::count(after.begin(), after.end(), base1), 0);
    EXPECT_EQ(after.front(), 0);
    EXPECT_TRUE(FilesWith(".txnindex.swap").empty());
    EXPECT_EQ(AllAborted(*log), aborted);
    std::vector<AbortedTxn> moved;
    for (const AbortedTxn& t : aborted) {
      if (t.last_offset < log->segment(1).base_offset()) moved.push_back(t);
    }
    EXPECT_EQ(TxnIndexBytes(0), TransactionIndex::Encode(moved));
    EXPECT_EQ(log->AbortedTransactions(2, 3), (std::vector<AbortedTxn>{aborted[1]}));
  }
  auto log =
      Open(Config(300), {.recovery_point = 0, .log_start_offset = 0, .clean_shutdown = false});
  EXPECT_EQ(AllAborted(*log), aborted);
}

TEST_F(PartitionLogTxnTest, OpenFinishesAnInterruptedSwapWithItsIndex) {
  std::vector<AbortedTxn> aborted;
  std::string merged_log;
  {
    auto log = Open(Config(100));
    ASSERT_EQ(Add(*log, Batch(1, 0, 0)), 0);
    ASSERT_EQ(Mark(*log, 1, kAbort), 1);
    ASSERT_EQ(Add(*log, Batch(2, 0, 0)), 2);
    ASSERT_EQ(Mark(*log, 2, kAbort), 3);
    ASSERT_EQ(Add(*log, Plain()), 4);
    aborted = AllAborted(*log);
    ASSERT_EQ(aborted.size(), 2u);
    for (size_t i = 0; i < 4; ++i) merged_log += Slurp(log->segment(i).log_path());
    ASSERT_TRUE(log->Close().ok());
  }
  // A crash after the swap files were in place and before the old segments went.
  { std::ofstream(dir_ / "00000000000000000000.log.swap", std::ios::binary) << merged_log; }
  {
    std::ofstream(dir_ / "00000000000000000000.txnindex.swap", std::ios::binary)
        << TransactionIndex::Encode(aborted);
  }
  // And a leftover index swap of a clean that never got to its .log.swap.
  {
    std::ofstream(dir_ / "00000000000000000004.txnindex.swap", std::ios::binary)
        << TransactionIndex::Encode({{9, 4, 4, 5}});
  }
  auto log =
      Open(Config(100), {.recovery_point = 5, .log_start_offset = 0, .clean_shutdown = true});
  EXPECT_EQ(log->segment_count(), 2u);
  EXPECT_EQ(FilesWith(".txnindex"), (std::vector<int64_t>{0}));
  EXPECT_TRUE(FilesWith(".txnindex.swap").empty());
  EXPECT_TRUE(FilesWith(".log.swap").empty());
  EXPECT_EQ(TxnIndexBytes(0), TransactionIndex::Encode(aborted));
  EXPECT_EQ(AllAborted(*log), aborted);
}

TEST(PartitionLogTxnInMemoryTest, TransactionIndexesLiveInTheMemoryFileSystem) {
  const fs::path root = fs::temp_directory_path() / ("txn_mem_" + std::to_string(::getpid()));
  MemoryFileSystem mem;
  MemoryFileSystem* previous = SwapFileSystemForTesting(&mem);
  LogConfig config;
  config.producer_id_expiration_ms = std::numeric_limits<int64_t>::max();
  const std::vector<AbortedTxn> expected = {{7, 0, 2, 3}};
  {
    auto log = PartitionLog::Open(root / "t-0", config);
    ASSERT_TRUE(log.ok());
    std::string batch = Batch(7, 0, 0, 2);
    ASSERT_TRUE((*log)->Append(batch.data(), batch.size()).ok());
    ASSERT_TRUE((*log)->AppendTxnMarker(7, 0, {kAbort, 1}, kTime).ok());
    batch = Batch(8, 0, 0);
    ASSERT_TRUE((*log)->Append(batch.data(), batch.size()).ok());
    EXPECT_EQ((*log)->AbortedTransactions(0, 4), expected);
    EXPECT_EQ((*log)->last_stable_offset(), 3);
    ASSERT_TRUE((*log)->Close().ok());
  }
  const fs::path index = root / "t-0" / "00000000000000000000.txnindex";
  EXPECT_TRUE(IsRegularFile(index));
  auto bytes = ReadFileToString(index);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, TransactionIndex::Encode(expected));
  for (bool clean : {true, false}) {
    auto log = PartitionLog::Open(root / "t-0", config, {4, 0, clean});
    ASSERT_TRUE(log.ok());
    EXPECT_EQ((*log)->AbortedTransactions(0, 4), expected);
    EXPECT_EQ((*log)->last_stable_offset(), 3);
  }
  SwapFileSystemForTesting(previous);
  EXPECT_FALSE(fs::exists(root));
}

}  // namespace
}  // namespace runnel::storage
