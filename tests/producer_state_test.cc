// Producer state (storage/producer_state.h): Kafka's sequence and epoch checks,
// transactions (open, complete, the first unstable offset, marker fencing),
// duplicates of the last 5 batches, the snapshot format byte for byte, snapshot loading
// after a clean close, rebuilding after an unclean stop, expiration, and the snapshots'
// life with rolls, retention and flushes.
#include "storage/producer_state.h"

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
#include "storage/segment.h"
#include "tests/slurp.h"

namespace runnel::storage {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kTime = 1700000000000;  // batch timestamps: long ago
constexpr int32_t kMaxSeq = std::numeric_limits<int32_t>::max();

// An idempotent producer's batch of `count` records as the producer sends it.
std::string Batch(int64_t pid, int16_t epoch, int32_t base_seq, int count = 1,
                  int64_t timestamp = kTime, bool transactional = false) {
  std::vector<protocol::RecordToAdd> records;
  for (int i = 0; i < count; ++i) {
    protocol::RecordToAdd r;
    r.value = "v" + std::to_string(i);
    r.timestamp = timestamp;
    records.push_back(std::move(r));
  }
  protocol::BatchOptions options;
  options.producer_id = pid;
  options.producer_epoch = epoch;
  options.base_sequence = base_seq;
  options.transactional = transactional;
  return protocol::BuildBatch(records, options);
}

protocol::BatchHeader Header(const std::string& batch, int64_t base_offset) {
  absl::StatusOr<protocol::BatchHeader> h = protocol::ParseBatchHeader(batch);
  EXPECT_TRUE(h.ok());
  h->base_offset = base_offset;
  return *h;
}

std::optional<ProducerError> ErrorOf(const absl::Status& s) { return ProducerErrorOf(s); }

// --- the checks, on the manager alone ----------------------------------------------

class ProducerChecksTest : public ::testing::Test {
 protected:
  // Checks and applies one client batch at `offset`; returns the check's status.
  absl::Status Add(const std::string& batch, int64_t offset,
                   AppendOrigin origin = AppendOrigin::kClient) {
    ProducerStateManager::Update update = state_.BeginUpdate();
    absl::Status s = update.AddBatch(Header(batch, offset), origin);
    if (s.ok()) state_.Apply(std::move(update));
    return s;
  }

  const fs::path dir_ = "/nonexistent/topic-0";
  ProducerStateManager state_{&dir_, 86400000};
};

TEST_F(ProducerChecksTest, SequencesMustFollowOn) {
  ASSERT_TRUE(Add(Batch(1, 0, 0, 3), 0).ok());
  ASSERT_TRUE(Add(Batch(1, 0, 3, 2), 3).ok());
  const ProducerEntry* e = state_.Find(1);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->epoch, 0);
  EXPECT_EQ(e->last_seq(), 4);
  EXPECT_EQ(e->last_data_offset(), 4);
  EXPECT_EQ(e->last_offset_delta(), 1);
  EXPECT_EQ(e->last_timestamp, kTime);
  ASSERT_EQ(e->batches.size(), 2u);
  EXPECT_EQ(e->batches[0], (ProducerBatch{2, 2, 2, kTime}));
  EXPECT_EQ(e->batches[0].first_seq(), 0);
  EXPECT_EQ(e->batches[0].first_offset(), 0);

  // A gap, a repeat of the last sequence, and a step back are all out of order.
  for (int32_t seq : {6, 4, 0}) {
    absl::Status s = Add(Batch(1, 0, seq), 5);
    EXPECT_EQ(ErrorOf(s), ProducerError::kOutOfOrderSequence) << seq << ": " << s;
  }
  EXPECT_EQ(Add(Batch(1, 0, 6), 5).message(),
            "Out of order sequence number for producer 1 at offset 5 in partition topic-0: 6 "
            "(incoming seq. number), 4 (current end sequence number)");
  EXPECT_TRUE(Add(Batch(1, 0, 5), 5).ok());
  EXPECT_EQ(state_.Find(1)->last_seq(), 5);
}

TEST_F(ProducerChecksTest, BatchesOfOneAppendAreCheckedAgainstEachOther) {
  ASSERT_TRUE(Add(Batch(9, 0, 0, 2), 0).ok());
  ProducerStateManager::Update update = state_.BeginUpdate();
  ASSERT_TRUE(update.AddBatch(Header(Batch(9, 0, 2, 2), 2), AppendOrigin::kClient).ok());
  ASSERT_TRUE(update.AddBatch(Header(Batch(9, 0, 4, 1), 4), AppendOrigin::kClient).ok());
  EXPECT_EQ(ErrorOf(update.AddBatch(Header(Batch(9, 0, 4, 1), 5), AppendOrigin::kClient)),
            ProducerError::kOutOfOrderSequence);
  // Nothing is applied before Apply.
  EXPECT_EQ(state_.Find(9)->last_seq(), 1);
  // For a producer the log does not know yet, Kafka checks no sequence at all, not even
  // between the batches of one append.
  ProducerStateManager::Update fresh = state_.BeginUpdate();
  ASSERT_TRUE(fresh.AddBatch(Header(Batch(10, 0, 7, 1), 5), AppendOrigin::kClient).ok());
  EXPECT_TRUE(fresh.AddBatch(Header(Batch(10, 0, 3, 1), 6), AppendOrigin::kClient).ok());
}

TEST_F(ProducerChecksTest, UnknownProducerMayStartAnywhere) {
  // Kafka 2.5+ (KIP-360): no UNKNOWN_PRODUCER_ID; a producer this log has no epoch for
  // continues from its sequence.
  EXPECT_TRUE(Add(Batch(5, 2, 77, 3), 10).ok());
  EXPECT_EQ(state_.Find(5)->last_seq(), 79);
  EXPECT_EQ(ErrorOf(Add(Batch(5, 2, 81), 13)), ProducerError::kOutOfOrderSequence);
  EXPECT_TRUE(Add(Batch(5, 2, 80), 13).ok());
}

TEST_F(ProducerChecksTest, StaleEpochIsInvalidProducerEpoch) {
  ASSERT_TRUE(Add(Batch(3, 4, 0), 0).ok());
  absl::Status s = Add(Batch(3, 3, 1), 1);
  EXPECT_EQ(ErrorOf(s), ProducerError::kInvalidProducerEpoch) << s;
  EXPECT_EQ(s.message(),
            "Epoch of producer 3 at offset 1 in topic-0 is 3, which is smaller than the last "
            "seen epoch 4");
  // Coordinator appends get the epoch check too; replays get none.
  EXPECT_EQ(ErrorOf(Add(Batch(3, 3, 1), 1, AppendOrigin::kCoordinator)),
            ProducerError::kInvalidProducerEpoch);
  EXPECT_TRUE(Add(Batch(3, 3, 1), 1, AppendOrigin::kReplay).ok());
}

TEST_F(ProducerChecksTest, NewEpochMustStartAtSequenceZero) {
  ASSERT_TRUE(Add(Batch(3, 0, 0, 5), 0).ok());
  absl::Status s = Add(Batch(3, 1, 5), 5);
  EXPECT_EQ(ErrorOf(s), ProducerError::kOutOfOrderSequence) << s;
  EXPECT_EQ(s.message(),
            "Invalid sequence number for new epoch of producer 3 at offset 5 in partition "
            "topic-0: 1 (request epoch), 5 (seq. number), 0 (current producer epoch)");
  ASSERT_TRUE(Add(Batch(3, 1, 0, 2), 5).ok());
  const ProducerEntry* e = state_.Find(3);
  EXPECT_EQ(e->epoch, 1);
  ASSERT_EQ(e->batches.size(), 1u);  // the old epoch's batches are gone
  EXPECT_EQ(e->batches[0], (ProducerBatch{1, 6, 1, kTime}));
  // An epoch that jumps ahead is fine too, from 0.
  EXPECT_TRUE(Add(Batch(3, 7, 0), 7).ok());
  EXPECT_EQ(state_.Find(3)->epoch, 7);
}

TEST_F(ProducerChecksTest, SequencesWrapAtInt32Max) {
  EXPECT_EQ(IncrementSequence(kMaxSeq, 1), 0);
  EXPECT_EQ(IncrementSequence(kMaxSeq - 1, 3), 1);
  EXPECT_EQ(DecrementSequence(1, 3), kMaxSeq - 1);
  EXPECT_EQ(DecrementSequence(5, 2), 3);

  ASSERT_TRUE(Add(Batch(8, 0, kMaxSeq - 1, 2), 0).ok());  // ends at INT32_MAX
  EXPECT_EQ(state_.Find(8)->last_seq(), kMaxSeq);
  EXPECT_EQ(ErrorOf(Add(Batch(8, 0, 1), 2)), ProducerError::kOutOfOrderSequence);
  ASSERT_TRUE(Add(Batch(8, 0, 0, 1), 2).ok());  // INT32_MAX is followed by 0
  // A batch may itself wrap: INT32_MAX-ish to 1.
  const fs::path other_dir = "/nonexistent/topic-1";
  ProducerStateManager other(&other_dir, 86400000);
  ProducerStateManager::Update u = other.BeginUpdate();
  ASSERT_TRUE(u.AddBatch(Header(Batch(8, 0, kMaxSeq, 3), 0), AppendOrigin::kClient).ok());
  other.Apply(std::move(u));
  EXPECT_EQ(other.Find(8)->last_seq(), 1);
  EXPECT_EQ(other.Find(8)->batches.back().first_seq(), kMaxSeq);
  EXPECT_EQ(other.FindDuplicate(Header(Batch(8, 0, kMaxSeq, 3), 0)),
            (ProducerBatch{1, 2, 2, kTime}));
  ProducerStateManager::Update next = other.BeginUpdate();
  EXPECT_TRUE(next.AddBatch(Header(Batch(8, 0, 2), 3), AppendOrigin::kClient).ok());
}

TEST_F(ProducerChecksTest, PlainWriteIntoOpenTransactionIsInvalidTxnState) {
  ASSERT_TRUE(Add(Batch(4, 0, 0, 2, kTime, /*transactional=*/true), 10).ok());
  EXPECT_EQ(state_.Find(4)->current_txn_first_offset, 10);
  EXPECT_EQ(ErrorOf(Add(Batch(4, 0, 2), 12)), ProducerError::kInvalidTxnState);
  ASSERT_TRUE(Add(Batch(4, 0, 2, 1, kTime, true), 12).ok());
  EXPECT_EQ(state_.Find(4)->current_txn_first_offset, 10);
}

TEST_F(ProducerChecksTest, FiveBatchesAreRetained) {
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(Add(Batch(2, 0, 2 * i, 2), 2 * i).ok());
  const ProducerEntry* e = state_.Find(2);
  ASSERT_EQ(e->batches.size(), kProducerBatchesToRetain);
  EXPECT_EQ(e->batches.front().first_seq(), 4);
  EXPECT_EQ(state_.FindDuplicate(Header(Batch(2, 0, 2, 2), 0)), std::nullopt);
  EXPECT_EQ(state_.FindDuplicate(Header(Batch(2, 0, 4, 2), 0)), (ProducerBatch{5, 5, 1, kTime}));
  // Same sequences under another epoch, or another range: no duplicate.
  EXPECT_EQ(state_.FindDuplicate(Header(Batch(2, 1, 4, 2), 0)), std::nullopt);
  EXPECT_EQ(state_.FindDuplicate(Header(Batch(2, 0, 4, 1), 0)), std::nullopt);
}

// --- transactions, on the manager alone --------------------------------------------

class ProducerTxnTest : public ProducerChecksTest {
 protected:
  // A transactional batch of `count` records.
  static std::string Txn(int64_t pid, int16_t epoch, int32_t seq, int count = 1) {
    return Batch(pid, epoch, seq, count, kTime, /*transactional=*/true);
  }
  // Checks and applies a marker at `offset`; the completions Apply returned, or the error.
  absl::StatusOr<std::vector<TxnCompletion>> Mark(int64_t pid, int16_t epoch,
                                                  protocol::ControlRecordType type,
                                                  int32_t coordinator_epoch, int64_t offset,
                                                  AppendOrigin origin = AppendOrigin::kCoordinator,
                                                  int64_t timestamp = kTime + 9) {
    const protocol::EndTxnMarker marker{type, coordinator_epoch};
    std::string batch = protocol::BuildEndTxnMarkerBatch(pid, epoch, marker, timestamp);
    ProducerStateManager::Update update = state_.BeginUpdate();
    if (absl::Status s = update.AddMarker(Header(batch, offset), marker, origin); !s.ok()) {
      return s;
    }
    return state_.Apply(std::move(update));
  }
  static constexpr auto kAbort = protocol::ControlRecordType::kAbort;
  static constexpr auto kCommit = protocol::ControlRecordType::kCommit;
};

TEST_F(ProducerTxnTest, TransactionalBatchOpensAndMarkerClosesIt) {
  EXPECT_EQ(state_.first_unstable_offset(), std::nullopt);
  ASSERT_TRUE(Add(Txn(4, 0, 0, 2), 10).ok());
  EXPECT_EQ(state_.Find(4)->current_txn_first_offset, 10);
  EXPECT_EQ(state_.first_unstable_offset(), 10);
  EXPECT_EQ(state_.ongoing_txns(), (std::map<int64_t, int64_t>{{10, 4}}));
  // A later batch of the same transaction does not move its first offset.
  ASSERT_TRUE(Add(Txn(4, 0, 2), 12).ok());
  EXPECT_EQ(state_.first_unstable_offset(), 10);

  auto done = Mark(4, 0, kCommit, 3, 13);
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->size(), 1u);
  EXPECT_EQ((*done)[0], (TxnCompletion{{4, 10, 13, false}, 14}));
  const ProducerEntry* e = state_.Find(4);
  EXPECT_EQ(e->current_txn_first_offset, -1);
  EXPECT_EQ(e->coordinator_epoch, 3);
  EXPECT_EQ(e->epoch, 0);
  EXPECT_EQ(e->last_timestamp, kTime + 9);
  EXPECT_EQ(e->last_seq(), 2);  // same epoch: the batches stay
  EXPECT_EQ(state_.first_unstable_offset(), std::nullopt);
  EXPECT_TRUE(state_.ongoing_txns().empty());

  // The next transaction, aborted.
  ASSERT_TRUE(Add(Txn(4, 0, 3), 14).ok());
  done = Mark(4, 0, kAbort, 3, 15);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(*done, (std::vector<TxnCompletion>{{{4, 14, 15, true}, 16}}));
}

TEST_F(ProducerTxnTest, FirstUnstableOffsetWithTwoInterleavedProducers) {
  ASSERT_TRUE(Add(Txn(1, 0, 0), 0).ok());
  ASSERT_TRUE(Add(Txn(2, 0, 0), 1).ok());
  ASSERT_TRUE(Add(Txn(1, 0, 1), 2).ok());
  ASSERT_TRUE(Add(Batch(3, 0, 0), 3).ok());  // idempotent, no transaction
  EXPECT_EQ(state_.first_unstable_offset(), 0);
  // Producer 1 aborts first: the LSO right after is producer 2's first offset.
  auto done = Mark(1, 0, kAbort, 0, 4);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(*done, (std::vector<TxnCompletion>{{{1, 0, 4, true}, 1}}));
  EXPECT_EQ(state_.first_unstable_offset(), 1);
  // Producer 1 starts again while producer 2 is still open.
  ASSERT_TRUE(Add(Txn(1, 0, 2), 5).ok());
  EXPECT_EQ(state_.first_unstable_offset(), 1);
  done = Mark(2, 0, kCommit, 0, 6);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(*done, (std::vector<TxnCompletion>{{{2, 1, 6, false}, 5}}));
  EXPECT_EQ(state_.first_unstable_offset(), 5);
  done = Mark(1, 0, kCommit, 0, 7);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(*done, (std::vector<TxnCompletion>{{{1, 5, 7, false}, 8}}));
  EXPECT_EQ(state_.first_unstable_offset(), std::nullopt);
}

TEST_F(ProducerTxnTest, MarkersAreFencedByEpochAndCoordinatorEpoch) {
  ASSERT_TRUE(Add(Txn(6, 2, 0), 0).ok());
  ASSERT_TRUE(Mark(6, 2, kCommit, 5, 1).ok());
  ASSERT_TRUE(Add(Txn(6, 2, 1), 2).ok());
  // An older producer epoch.
  auto stale = Mark(6, 1, kAbort, 5, 3);
  EXPECT_EQ(ErrorOf(stale.status()), ProducerError::kInvalidProducerEpoch) << stale.status();
  // An older coordinator epoch: a zombie coordinator.
  auto zombie = Mark(6, 2, kAbort, 4, 3);
  EXPECT_EQ(ErrorOf(zombie.status()), ProducerError::kTransactionCoordinatorFenced)
      << zombie.status();
  EXPECT_EQ(zombie.status().message(),
            "Invalid coordinator epoch for producerId 6 at offset 3 in partition topic-0: 4 "
            "(zombie), 5 (current)");
  // Nothing changed.
  EXPECT_EQ(state_.Find(6)->current_txn_first_offset, 2);
  EXPECT_EQ(state_.Find(6)->coordinator_epoch, 5);
  // A replay is not checked.
  auto replayed = Mark(6, 1, kAbort, 4, 3, AppendOrigin::kReplay);
  ASSERT_TRUE(replayed.ok());
  EXPECT_EQ(*replayed, (std::vector<TxnCompletion>{{{6, 2, 3, true}, 4}}));
  EXPECT_EQ(state_.Find(6)->epoch, 1);
  EXPECT_EQ(state_.Find(6)->coordinator_epoch, 4);
}

TEST_F(ProducerTxnTest, MarkerOfABumpedEpochOrWithoutTransaction) {
  ASSERT_TRUE(Add(Txn(7, 0, 0, 3), 0).ok());
  // A newer epoch (transactions v2 bump it in the marker): fine, the batches go.
  auto done = Mark(7, 1, kAbort, 2, 3);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(*done, (std::vector<TxnCompletion>{{{7, 0, 3, true}, 4}}));
  EXPECT_EQ(state_.Find(7)->epoch, 1);
  EXPECT_TRUE(state_.Find(7)->batches.empty());
  EXPECT_EQ(ErrorOf(Add(Txn(7, 0, 3), 4)), ProducerError::kInvalidProducerEpoch);
  // A marker with no transaction open (or for a producer never seen) completes nothing and
  // only moves the epochs.
  done = Mark(7, 2, kCommit, 3, 4);
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(done->empty());
  EXPECT_EQ(state_.Find(7)->epoch, 2);
  EXPECT_EQ(state_.Find(7)->coordinator_epoch, 3);
  done = Mark(70, 0, kAbort, 0, 5);
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(done->empty());
  ASSERT_NE(state_.Find(70), nullptr);
  EXPECT_EQ(state_.Find(70)->epoch, 0);
  EXPECT_EQ(state_.first_unstable_offset(), std::nullopt);
}

TEST_F(ProducerTxnTest, WritesDuringAnOpenTransaction) {
  ASSERT_TRUE(Add(Txn(4, 0, 0, 2), 10).ok());
  // Not transactional: INVALID_TXN_STATE, from a client or the coordinator.
  absl::Status s = Add(Batch(4, 0, 2), 12);
  EXPECT_EQ(ErrorOf(s), ProducerError::kInvalidTxnState) << s;
  EXPECT_EQ(s.message(),
            "Expected transactional write from producer 4 at offset 12 in partition topic-0");
  EXPECT_EQ(ErrorOf(Add(Batch(4, 0, 2), 12, AppendOrigin::kCoordinator)),
            ProducerError::kInvalidTxnState);
  // A higher epoch, transactional, from sequence 0: part of the same transaction.
  ASSERT_TRUE(Add(Txn(4, 1, 0), 12).ok());
  EXPECT_EQ(state_.Find(4)->current_txn_first_offset, 10);
  EXPECT_EQ(state_.first_unstable_offset(), 10);
  // Both in one Update: a marker closes it and a new transaction opens after it.
  ProducerStateManager::Update update = state_.BeginUpdate();
  const protocol::EndTxnMarker commit{kCommit, 0};
  ASSERT_TRUE(update
                  .AddMarker(Header(protocol::BuildEndTxnMarkerBatch(4, 1, commit, kTime), 13),
                             commit, AppendOrigin::kReplay)
                  .ok());
  ASSERT_TRUE(update.AddBatch(Header(Txn(4, 1, 1), 14), AppendOrigin::kReplay).ok());
  EXPECT_EQ(update.completed_txns(), (std::vector<CompletedTxn>{{4, 10, 13, false}}));
  EXPECT_EQ(state_.Apply(std::move(update)),
            (std::vector<TxnCompletion>{{{4, 10, 13, false}, 14}}));
  EXPECT_EQ(state_.ongoing_txns(), (std::map<int64_t, int64_t>{{14, 4}}));
}

TEST_F(ProducerTxnTest, OpenTransactionsSurviveExpiration) {
  ASSERT_TRUE(Add(Txn(1, 0, 0), 0).ok());
  ASSERT_TRUE(Add(Batch(2, 0, 0), 1).ok());
  EXPECT_EQ(state_.RemoveExpiredProducers(kTime + 86400000), 1u);
  EXPECT_NE(state_.Find(1), nullptr);
  EXPECT_EQ(state_.first_unstable_offset(), 0);
}

// --- snapshot format ---------------------------------------------------------------

TEST(ProducerSnapshotTest, BytesAreKafkasFormat) {
  ProducerMap producers;
  ProducerEntry a;
  a.epoch = 0;
  a.AddBatch(0, {2, 2, 2, 1000});
  producers[7] = a;
  ProducerEntry b;
  b.epoch = 3;
  b.AddBatch(3, {4, 14, 4, kTime - 5});
  b.AddBatch(3, {9, 19, 4, kTime});
  b.coordinator_epoch = 5;
  b.current_txn_first_offset = 15;
  producers[42] = b;
  ProducerEntry c;  // a producer without batches (e.g. after a transaction marker)
  c.epoch = 1;
  c.last_timestamp = 123;
  producers[99] = c;

  // Kafka's ProducerStateManager layout, written out field by field; the CRC-32C of the
  // bytes after it was computed independently (integration/raw_protocol_test.py's table).
  const std::string expected = absl::HexStringToBytes(
      "0001"      // version
      "a76c2477"  // CRC-32C
      "00000003"  // entries
      // producer 7: epoch 0, last seq 2, last offset 2, delta 2, ts 1000, coord -1, txn -1
      "0000000000000007"
      "0000"
      "00000002"
      "0000000000000002"
      "00000002"
      "00000000000003e8"
      "ffffffff"
      "ffffffffffffffff"
      // producer 42: epoch 3, last seq 9, last offset 19, delta 4, ts, coord 5, txn 15
      "000000000000002a"
      "0003"
      "00000009"
      "0000000000000013"
      "00000004"
      "0000018bcfe56800"
      "00000005"
      "000000000000000f"
      // producer 99: no batch: seq -1, offset -1, delta 0; ts 123
      "0000000000000063"
      "0001"
      "ffffffff"
      "ffffffffffffffff"
      "00000000"
      "000000000000007b"
      "ffffffff"
      "ffffffffffffffff");
  EXPECT_EQ(absl::BytesToHexString(EncodeProducerSnapshot(producers)),
            absl::BytesToHexString(expected));

  // Reading keeps one batch per producer, the last, as Kafka's readSnapshot.
  absl::StatusOr<ProducerMap> read = DecodeProducerSnapshot(expected);
  ASSERT_TRUE(read.ok()) << read.status();
  ProducerEntry b_read = b;
  b_read.batches.pop_front();
  EXPECT_EQ(*read, (ProducerMap{{7, a}, {42, b_read}, {99, c}}));

  std::string bad = expected;
  bad[40] ^= 1;
  EXPECT_EQ(DecodeProducerSnapshot(bad).status().code(), absl::StatusCode::kDataLoss);
  bad = expected;
  bad[1] = 2;
  EXPECT_EQ(DecodeProducerSnapshot(bad).status().message(),
            "Snapshot contained an unknown file version 2");
  EXPECT_FALSE(DecodeProducerSnapshot(expected.substr(0, expected.size() - 1)).ok());
  EXPECT_FALSE(DecodeProducerSnapshot("").ok());
  EXPECT_EQ(absl::BytesToHexString(EncodeProducerSnapshot({})),
            "0001"
            "48674bc7"
            "00000000");
}

// --- through PartitionLog --------------------------------------------------------

class ProducerLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "producer_state_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ / "topic-0";
  }
  void TearDown() override { fs::remove_all(root_); }

  // The batches' timestamps are years old: producers must not expire unless a test says.
  static LogConfig NoExpiry() {
    LogConfig config;
    config.producer_id_expiration_ms = std::numeric_limits<int64_t>::max();
    return config;
  }

  std::unique_ptr<PartitionLog> Open(LogCheckpoint checkpoint = {}, LogConfig config = NoExpiry()) {
    auto log = PartitionLog::Open(dir_, config, checkpoint);
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? *std::move(log) : nullptr;
  }

  static absl::StatusOr<AppendInfo> Append(PartitionLog& log, std::string batch) {
    return log.Append(batch.data(), batch.size());
  }

  std::vector<int64_t> SnapshotFiles() const {
    std::vector<int64_t> out;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      auto offset = Segment::ParseFileName(entry.path().filename().string(), ".snapshot");
      if (offset) out.push_back(*offset);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  fs::path root_;
  fs::path dir_;
};

TEST_F(ProducerLogTest, DuplicateOfEachOfTheLastFiveIsAnsweredAndNotWritten) {
  auto log = Open();
  ASSERT_TRUE(Append(*log, Batch(-1, -1, -1, 2)).ok());  // a plain batch: offsets 0-1
  std::vector<int64_t> bases;
  for (int i = 0; i < 6; ++i) {
    auto info = Append(*log, Batch(11, 0, 3 * i, 3, kTime + i));
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_FALSE(info->duplicate);
    bases.push_back(info->base_offset);
  }
  EXPECT_EQ(bases, (std::vector<int64_t>{2, 5, 8, 11, 14, 17}));
  const int64_t end = log->log_end_offset();
  ASSERT_EQ(end, 20);
  for (int i = 1; i < 6; ++i) {
    auto info = Append(*log, Batch(11, 0, 3 * i, 3, kTime + i));
    ASSERT_TRUE(info.ok()) << info.status();
    ASSERT_TRUE(info->duplicate) << i;
    EXPECT_EQ(info->base_offset, bases[i]);
    EXPECT_EQ(info->last_offset, bases[i] + 2);
    EXPECT_EQ(info->duplicate->timestamp, kTime + i);
    EXPECT_EQ(log->log_end_offset(), end);
  }
  // The first batch has left the window: it is out of order now, and nothing is written.
  auto first = Append(*log, Batch(11, 0, 0, 3, kTime));
  EXPECT_EQ(ErrorOf(first.status()), ProducerError::kOutOfOrderSequence) << first.status();
  EXPECT_EQ(log->log_end_offset(), end);
  // A gap and a stale epoch write nothing either; the next in sequence goes on.
  EXPECT_EQ(ErrorOf(Append(*log, Batch(11, 0, 19)).status()), ProducerError::kOutOfOrderSequence);
  ASSERT_TRUE(Append(*log, Batch(11, 1, 0)).ok());
  EXPECT_EQ(ErrorOf(Append(*log, Batch(11, 0, 18)).status()), ProducerError::kInvalidProducerEpoch);
  EXPECT_EQ(log->log_end_offset(), end + 1);
}

TEST_F(ProducerLogTest, CleanCloseWritesKafkasSnapshotAndReopenLoadsIt) {
  {
    auto log = Open();
    ASSERT_TRUE(Append(*log, Batch(7, 2, 0, 3, kTime)).ok());
    ASSERT_TRUE(Append(*log, Batch(-1, -1, -1, 1)).ok());
    ASSERT_TRUE(Append(*log, Batch(7, 2, 3, 2, kTime + 1)).ok());  // offsets 4-5
    EXPECT_TRUE(SnapshotFiles().empty());  // none before a roll or the close
    ASSERT_TRUE(log->Close().ok());
  }
  ASSERT_EQ(SnapshotFiles(), (std::vector<int64_t>{6}));
  EXPECT_EQ(absl::BytesToHexString(Slurp(dir_ / "00000000000000000006.snapshot")),
            absl::BytesToHexString(EncodeProducerSnapshot(
                {{7, ProducerEntry{2, -1, kTime + 1, -1, {{4, 5, 1, kTime + 1}}}}})));

  auto log = Open({.recovery_point = 6, .log_start_offset = 0, .clean_shutdown = true});
  const ProducerEntry* e = log->producer_state().Find(7);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->epoch, 2);
  ASSERT_EQ(e->batches.size(), 1u);  // a snapshot keeps the last batch only
  auto dup = Append(*log, Batch(7, 2, 3, 2, kTime + 1));
  ASSERT_TRUE(dup.ok());
  ASSERT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->base_offset, 4);
  EXPECT_EQ(ErrorOf(Append(*log, Batch(7, 2, 6)).status()), ProducerError::kOutOfOrderSequence);
  auto next = Append(*log, Batch(7, 2, 5));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->base_offset, 6);
}

TEST_F(ProducerLogTest, UncleanStopIsRebuiltFromTheLatestSnapshotAndTheLog) {
  LogConfig config = NoExpiry();
  config.segment_bytes = 400;  // a few batches per segment: rolls, and snapshots with them
  std::vector<int64_t> bases;
  int64_t latest = 0;
  {
    auto log = Open({}, config);
    for (int i = 0; i < 12; ++i) {
      auto info = Append(*log, Batch(21, 0, 2 * i, 2, kTime + i));
      ASSERT_TRUE(info.ok()) << info.status();
      bases.push_back(info->base_offset);
    }
    ASSERT_GE(log->segment_count(), 3u);
    ASSERT_FALSE(SnapshotFiles().empty());
    latest = SnapshotFiles().back();  // the last roll's
    EXPECT_EQ(latest, log->segment(log->segment_count() - 1).base_offset());
    EXPECT_LT(latest, log->log_end_offset());
    // No Close: the process dies here.
  }
  // A snapshot beyond the log end (the log was cut) must not be used.
  fs::copy_file(dir_ / Segment::FileName(latest, ".snapshot"),
                dir_ / "00000000000000000999.snapshot");
  auto log = Open({.recovery_point = 0, .log_start_offset = 0, .clean_shutdown = false}, config);
  EXPECT_EQ(log->log_end_offset(), 24);
  std::vector<int64_t> files = SnapshotFiles();
  EXPECT_EQ(files.back(), 24);  // the rebuilt state, written after the replay
  EXPECT_EQ(std::count(files.begin(), files.end(), 999), 0);
  // The snapshot restored its last batch, the replay the ones after it (Kafka's: a
  // snapshot keeps one batch per producer).
  const size_t replayed = static_cast<size_t>(24 - latest) / 2;
  const size_t kept = std::min<size_t>(5, 1 + replayed);
  const ProducerEntry* e = log->producer_state().Find(21);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->batches.size(), kept);
  for (int i = 12 - static_cast<int>(kept); i < 12; ++i) {
    auto dup = Append(*log, Batch(21, 0, 2 * i, 2, kTime + i));
    ASSERT_TRUE(dup.ok()) << dup.status();
    ASSERT_TRUE(dup->duplicate) << i;
    EXPECT_EQ(dup->base_offset, bases[i]);
  }
  const int before = 11 - static_cast<int>(kept);
  EXPECT_EQ(ErrorOf(Append(*log, Batch(21, 0, 2 * before, 2, kTime + before)).status()),
            ProducerError::kOutOfOrderSequence);
  EXPECT_EQ(log->log_end_offset(), 24);
  EXPECT_TRUE(Append(*log, Batch(21, 0, 24)).ok());
}

TEST_F(ProducerLogTest, CorruptSnapshotFallsBackToTheOneBefore) {
  LogConfig config = NoExpiry();
  config.segment_bytes = 400;
  {
    auto log = Open({}, config);
    for (int i = 0; i < 12; ++i) ASSERT_TRUE(Append(*log, Batch(21, 0, 2 * i, 2)).ok());
  }
  std::vector<int64_t> files = SnapshotFiles();
  ASSERT_GE(files.size(), 2u);
  const fs::path latest = dir_ / Segment::FileName(files.back(), ".snapshot");
  fs::resize_file(latest, 3);  // torn
  auto log = Open({}, config);
  EXPECT_FALSE(fs::exists(latest) && fs::file_size(latest) == 3);
  ASSERT_NE(log->producer_state().Find(21), nullptr);
  EXPECT_EQ(log->producer_state().Find(21)->last_seq(), 23);
  auto dup = Append(*log, Batch(21, 0, 22, 2));
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup->duplicate);
}

TEST_F(ProducerLogTest, CleanStopWithoutSnapshotsMeansNoProducersAndWritesEmptySnapshots) {
  LogConfig config = NoExpiry();
  config.segment_bytes = 400;
  {
    auto log = Open({}, config);
    for (int i = 0; i < 12; ++i) ASSERT_TRUE(Append(*log, Batch(21, 0, 2 * i, 2)).ok());
    ASSERT_TRUE(log->Close().ok());
  }
  // As a log written before snapshots existed.
  for (int64_t offset : SnapshotFiles()) fs::remove(dir_ / Segment::FileName(offset, ".snapshot"));
  auto log = Open({.recovery_point = 24, .log_start_offset = 0, .clean_shutdown = true}, config);
  EXPECT_TRUE(log->producer_state().producers().empty());
  std::vector<int64_t> files = SnapshotFiles();
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0], log->segment(log->segment_count() - 2).base_offset());
  EXPECT_EQ(files[1], log->segment(log->segment_count() - 1).base_offset());
  EXPECT_EQ(files[2], 24);
  EXPECT_EQ(Slurp(dir_ / "00000000000000000024.snapshot"), EncodeProducerSnapshot({}));
}

TEST_F(ProducerLogTest, SnapshotsFollowSegmentsAndFlushKeepsTheLastTwo) {
  LogConfig config = NoExpiry();
  config.segment_bytes = 250;
  config.delete_policy = true;
  config.retention_ms = 1000;  // every inactive segment is old enough (kTime is 2023)
  auto log = Open({}, config);
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(Append(*log, Batch(21, 0, 2 * i, 2)).ok());
  const size_t segments = log->segment_count();
  ASSERT_GE(segments, 4u);
  // A snapshot per roll, at each new segment's base.
  std::vector<int64_t> bases;
  for (size_t i = 1; i < segments; ++i) bases.push_back(log->segment(i).base_offset());
  EXPECT_EQ(SnapshotFiles(), bases);
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(SnapshotFiles(),
            (std::vector<int64_t>{bases[bases.size() - 2], bases[bases.size() - 1]}));
  // Retention takes the segments and their snapshots; the producer stays (Kafka: until it
  // expires), so its duplicate is still recognised below the log start.
  auto deleted = log->DeleteExpiredSegments(kTime + 1000000);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, segments - 1);
  EXPECT_EQ(SnapshotFiles(), (std::vector<int64_t>{bases.back()}));
  auto start = log->DeleteRecordsBefore(log->log_end_offset());
  ASSERT_TRUE(start.ok());
  EXPECT_NE(log->producer_state().Find(21), nullptr);
  auto dup = Append(*log, Batch(21, 0, 22, 2));
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->base_offset, 22);
}

TEST_F(ProducerLogTest, IdleProducersExpire) {
  LogConfig config;
  config.producer_id_expiration_ms = 60000;
  auto log = Open({}, config);
  ASSERT_TRUE(Append(*log, Batch(1, 0, 0, 1, kTime)).ok());
  ASSERT_TRUE(Append(*log, Batch(2, 0, 0, 1, kTime + 30000)).ok());
  EXPECT_EQ(log->RemoveExpiredProducers(kTime + 59999), 0u);
  EXPECT_EQ(log->RemoveExpiredProducers(kTime + 60000), 1u);  // Kafka's >=
  EXPECT_EQ(log->producer_state().Find(1), nullptr);
  ASSERT_NE(log->producer_state().Find(2), nullptr);
  // Forgotten: its next batch may carry any sequence, and is no duplicate.
  auto again = Append(*log, Batch(1, 0, 0, 1, kTime));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->duplicate);
  EXPECT_EQ(again->base_offset, 2);
  // An open transaction keeps its producer.
  ASSERT_TRUE(Append(*log, Batch(3, 0, 0, 1, kTime, /*transactional=*/true)).ok());
  EXPECT_EQ(log->RemoveExpiredProducers(kTime + 10 * 60000), 2u);
  EXPECT_NE(log->producer_state().Find(3), nullptr);

  // Loading a snapshot drops the producers expired by now.
  ASSERT_TRUE(Append(*log, Batch(4, 0, 0, 1, kTime)).ok());
  ASSERT_TRUE(log->Close().ok());
  auto reopened = Open({.recovery_point = 5, .log_start_offset = 0, .clean_shutdown = true},
                       config);  // kTime is long past
  EXPECT_EQ(reopened->producer_state().Find(4), nullptr);
  EXPECT_NE(reopened->producer_state().Find(3), nullptr);
}

TEST(ProducerLogInMemoryTest, SnapshotsLiveInTheMemoryFileSystem) {
  const fs::path root =
      fs::temp_directory_path() / ("producer_state_mem_" + std::to_string(::getpid()));
  MemoryFileSystem mem;
  MemoryFileSystem* previous = SwapFileSystemForTesting(&mem);
  LogConfig config;
  config.producer_id_expiration_ms = std::numeric_limits<int64_t>::max();
  {
    auto log = PartitionLog::Open(root / "t-0", config);
    ASSERT_TRUE(log.ok());
    std::string batch = Batch(5, 0, 0, 2);
    ASSERT_TRUE((*log)->Append(batch.data(), batch.size()).ok());
    ASSERT_TRUE((*log)->Close().ok());
  }
  EXPECT_TRUE(IsRegularFile(root / "t-0" / "00000000000000000002.snapshot"));
  {
    auto log = PartitionLog::Open(root / "t-0", config, {2, 0, true});
    ASSERT_TRUE(log.ok());
    std::string batch = Batch(5, 0, 0, 2);
    auto dup = (*log)->Append(batch.data(), batch.size());
    ASSERT_TRUE(dup.ok());
    EXPECT_TRUE(dup->duplicate);
  }
  SwapFileSystemForTesting(previous);
  EXPECT_FALSE(fs::exists(root));
}

}  // namespace
}  // namespace runnel::storage
