// Unit tests for TransactionCoordinator: Kafka's InitProducerId, AddPartitions,
// VerifyPartition, AddOffsets and EndTxn rules (classic and transactions v2), markers
// (through a fake writer that records them), timed-out aborts, expiry, reloads from
// __transaction_state, and DescribeTransactions/ListTransactions.
#include "broker/transaction_coordinator.h"

#include <stdlib.h>

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"

namespace runnel::broker {
namespace {

struct Marker {
  std::string topic;
  int32_t partition;
  int64_t producer_id;
  int16_t producer_epoch;
  int32_t coordinator_epoch;
  bool commit;
  bool operator==(const Marker&) const = default;
};

class FakeMarkerWriter : public TransactionMarkerWriter {
 public:
  ErrorCode WriteMarker(const std::string& topic, int32_t partition, int64_t producer_id,
                        int16_t producer_epoch, int32_t coordinator_epoch, bool commit) override {
    attempts++;
    if (error != ErrorCode::kNone) return error;
    markers.push_back({topic, partition, producer_id, producer_epoch, coordinator_epoch, commit});
    return ErrorCode::kNone;
  }
  bool PartitionExists(const std::string& topic, int32_t partition) override {
    return existing.count({topic, partition}) > 0;
  }

  std::set<std::pair<std::string, int32_t>> existing = {{"t", 0}, {"t", 1}, {"u", 0}};
  ErrorCode error = ErrorCode::kNone;  // answer to every WriteMarker
  int attempts = 0;
  std::vector<Marker> markers;
};

constexpr int32_t kTimeout = 60000;

class TransactionCoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "transaction_coordinator_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    config_.log_partitions = 5;
    ids_ = std::make_unique<ProducerIdManager>(dir_, 1);
    Reopen();
  }
  void TearDown() override {
    if (tc_) {
      EXPECT_TRUE(tc_->Close().ok());
    }
    tc_.reset();
    io_.restart();
    io_.poll();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    if (tc_) {
      ASSERT_TRUE(tc_->Close().ok());
    }
    tc_.reset();
    tc_ = std::make_unique<TransactionCoordinator>(&io_, config_, dir_, ids_.get(), &writer_);
    tc_->SetClockForTesting([this] { return now_; });
    ASSERT_TRUE(tc_->Load(/*clean_shutdown=*/false).ok());
  }
  // Writes a record straight into __transaction_state (with the coordinator closed), to
  // start from states that take 32000 requests to reach.
  void WriteRecord(const TransactionRecord& r) {
    ASSERT_TRUE(tc_->Close().ok());
    tc_.reset();
    TransactionLog log(dir_, config_.log_partitions, config_.log_segment_bytes);
    ASSERT_TRUE(log.Load(false).ok());
    ASSERT_TRUE(log.Append(r, now_).ok());
    ASSERT_TRUE(log.Close().ok());
    Reopen();
  }
  TransactionCoordinator::InitProducerIdResult Init(const std::string& id, int64_t pid = -1,
                                                    int16_t epoch = -1) {
    return tc_->InitProducerId(id, kTimeout, pid, epoch);
  }
  ErrorCode Add(const std::string& id, int64_t pid, int16_t epoch,
                std::vector<std::pair<std::string, int32_t>> partitions,
                std::vector<ErrorCode>* errors = nullptr) {
    std::vector<ErrorCode> local;
    return tc_->AddPartitions(id, pid, epoch, partitions, errors ? errors : &local);
  }
  std::string State(const std::string& id) { return tc_->Describe(id).state; }

  std::filesystem::path dir_;
  asio::io_context io_;
  TransactionCoordinatorConfig config_;
  std::unique_ptr<ProducerIdManager> ids_;
  FakeMarkerWriter writer_;
  int64_t now_ = 1'000'000;
  std::unique_ptr<TransactionCoordinator> tc_;
};

TEST_F(TransactionCoordinatorTest, InitProducerIdNewAndExisting) {
  auto first = Init("a");
  ASSERT_EQ(first.error, ErrorCode::kNone);
  EXPECT_GE(first.producer_id, 0);
  EXPECT_EQ(first.producer_epoch, 0);
  EXPECT_EQ(State("a"), "Empty");
  // A new producer instance with the same id fences the old one.
  auto second = Init("a");
  ASSERT_EQ(second.error, ErrorCode::kNone);
  EXPECT_EQ(second.producer_id, first.producer_id);
  EXPECT_EQ(second.producer_epoch, 1);
  EXPECT_EQ(Add("a", first.producer_id, 0, {{"t", 0}}), ErrorCode::kProducerFenced);
  // Another id gets another producer id.
  EXPECT_NE(Init("b").producer_id, first.producer_id);
}

TEST_F(TransactionCoordinatorTest, InitProducerIdRejectsBadRequests) {
  EXPECT_EQ(Init("").error, ErrorCode::kInvalidRequest);
  EXPECT_EQ(tc_->InitProducerId("a", 900001, -1, -1).error, ErrorCode::kInvalidTransactionTimeout);
  EXPECT_EQ(tc_->InitProducerId("a", 0, -1, -1).error, ErrorCode::kInvalidTransactionTimeout);
  EXPECT_EQ(tc_->InitProducerId("a", 900000, -1, -1).error, ErrorCode::kNone);
  EXPECT_EQ(tc_->Describe("a").timeout_ms, 900000);
}

TEST_F(TransactionCoordinatorTest, InitProducerIdWithExpectedEpoch) {
  auto p = Init("a");
  // KIP-360: the producer bumps its own epoch after an error.
  auto bumped = Init("a", p.producer_id, 0);
  ASSERT_EQ(bumped.error, ErrorCode::kNone);
  EXPECT_EQ(bumped.producer_epoch, 1);
  // The same request again (its answer was lost): the same epoch, no second bump.
  auto retried = Init("a", p.producer_id, 0);
  ASSERT_EQ(retried.error, ErrorCode::kNone);
  EXPECT_EQ(retried.producer_epoch, 1);
  // An epoch that is neither current nor the last one, or a foreign producer id.
  EXPECT_EQ(Init("a", p.producer_id, 7).error, ErrorCode::kProducerFenced);
  EXPECT_EQ(Init("a", p.producer_id + 100, 1).error, ErrorCode::kProducerFenced);
}

TEST_F(TransactionCoordinatorTest, InitProducerIdAbortsOngoingTransaction) {
  auto p = Init("a");
  ASSERT_EQ(Add("a", p.producer_id, 0, {{"t", 0}, {"u", 0}}), ErrorCode::kNone);
  auto again = Init("a");
  ASSERT_EQ(again.error, ErrorCode::kNone);
  // Fenced (epoch 1, never returned), aborted with the v2 bump (epoch 2), then bumped for
  // the new producer (epoch 3).
  std::vector<Marker> expected = {{"t", 0, p.producer_id, 2, 0, false},
                                  {"u", 0, p.producer_id, 2, 0, false}};
  EXPECT_EQ(writer_.markers, expected);
  EXPECT_EQ(again.producer_id, p.producer_id);
  EXPECT_EQ(again.producer_epoch, 3);
  EXPECT_EQ(State("a"), "Empty");
  EXPECT_EQ(tc_->EndTxn("a", p.producer_id, 0, true, false).error, ErrorCode::kProducerFenced);
}

TEST_F(TransactionCoordinatorTest, InitProducerIdRotatesExhaustedEpoch) {
  TransactionRecord r;
  r.transactional_id = "a";
  r.producer_id = 500;
  r.producer_epoch = 32766;
  r.timeout_ms = kTimeout;
  r.state = TransactionState::kCompleteCommit;
  r.last_update_ms = now_;
  r.start_ms = now_ - 1;
  WriteRecord(r);
  auto rotated = Init("a", 500, 32766);
  ASSERT_EQ(rotated.error, ErrorCode::kNone);
  EXPECT_NE(rotated.producer_id, 500);
  EXPECT_EQ(rotated.producer_epoch, 0);
  EXPECT_EQ(tc_->Find("a")->previous_producer_id, 500);
  // The answer was lost and the producer asks again with its old id: the same answer.
  auto retried = Init("a", 500, 32766);
  ASSERT_EQ(retried.error, ErrorCode::kNone);
  EXPECT_EQ(retried.producer_id, rotated.producer_id);
  EXPECT_EQ(retried.producer_epoch, 0);
}

TEST_F(TransactionCoordinatorTest, AddPartitionsStatesAndErrors) {
  std::vector<ErrorCode> errors;
  EXPECT_EQ(Add("a", 0, 0, {{"t", 0}}), ErrorCode::kInvalidProducerIdMapping);
  auto p = Init("a");
  EXPECT_EQ(Add("a", p.producer_id + 1, 0, {{"t", 0}}), ErrorCode::kInvalidProducerIdMapping);
  EXPECT_EQ(Add("a", p.producer_id, 1, {{"t", 0}}), ErrorCode::kProducerFenced);
  EXPECT_EQ(Add("a", p.producer_id, 0, {{"t", 0}, {"nope", 0}, {"t", 9}}, &errors),
            ErrorCode::kUnknownTopicOrPartition);
  EXPECT_EQ(errors, (std::vector<ErrorCode>{ErrorCode::kOperationNotAttempted,
                                            ErrorCode::kUnknownTopicOrPartition,
                                            ErrorCode::kUnknownTopicOrPartition}));
  EXPECT_EQ(State("a"), "Empty");
  now_ += 5;
  EXPECT_EQ(Add("a", p.producer_id, 0, {{"t", 0}}, &errors), ErrorCode::kNone);
  EXPECT_EQ(errors, std::vector<ErrorCode>{ErrorCode::kNone});
  auto d = tc_->Describe("a");
  EXPECT_EQ(d.state, "Ongoing");
  EXPECT_EQ(d.start_ms, now_);
  now_ += 5;
  EXPECT_EQ(Add("a", p.producer_id, 0, {{"t", 1}}), ErrorCode::kNone);
  EXPECT_EQ(tc_->AddOffsets("a", p.producer_id, 0, "group", 7), ErrorCode::kNone);
  d = tc_->Describe("a");
  EXPECT_EQ(d.start_ms, now_ - 5);  // the transaction started with its first partition
  using P = std::vector<std::pair<std::string, std::vector<int32_t>>>;
  EXPECT_EQ(d.partitions, (P{{"__consumer_offsets", {7}}, {"t", {0, 1}}}));
}

TEST_F(TransactionCoordinatorTest, EndTxnCommitClassic) {
  auto p = Init("a");
  ASSERT_EQ(Add("a", p.producer_id, 0, {{"t", 0}, {"t", 1}}), ErrorCode::kNone);
  ASSERT_EQ(tc_->AddOffsets("a", p.producer_id, 0, "g", 7), ErrorCode::kNone);
  EXPECT_EQ(tc_->EndTxn("a", p.producer_id, 1, true, false).error, ErrorCode::kProducerFenced);
  EXPECT_EQ(tc_->EndTxn("a", p.producer_id + 1, 0, true, false).error,
            ErrorCode::kInvalidProducerIdMapping);
  auto end = tc_->EndTxn("a", p.producer_id, 0, true, false);
  EXPECT_EQ(end.error, ErrorCode::kNone);
  EXPECT_EQ(end.producer_id, -1);
  EXPECT_EQ(end.producer_epoch, -1);
  std::vector<Marker> expected = {{"__consumer_offsets", 7, p.producer_id, 0, 0, true},
                                  {"t", 0, p.producer_id, 0, 0, true},
                                  {"t", 1, p.producer_id, 0, 0, true}};
  EXPECT_EQ(writer_.markers, expected);
  auto d = tc_->Describe("a");
  EXPECT_EQ(d.state, "CompleteCommit");
  EXPECT_TRUE(d.partitions.empty());
  EXPECT_EQ(d.producer_epoch, 0);  // classic: no bump
  // A retried commit succeeds without new markers; an abort now is refused.
  EXPECT_EQ(tc_->EndTxn("a", p.producer_id, 0, true, false).error, ErrorCode::kNone);
  EXPECT_EQ(writer_.markers.size(), 3u);
  EXPECT_EQ(tc_->EndTxn("a", p.producer_id, 0, false, false).error, ErrorCode::kInvalidTxnState);
  // The next transaction reuses the epoch.
  ASSERT_EQ(Add("a", p.producer_id, 0, {{"u", 0}}), ErrorCode::kNone);
  ASSERT_EQ(tc_->EndTxn("a", p.producer_id, 0, false, false).error, ErrorCode::kNone);
  EXPECT_EQ(writer_.markers.back(), (Marker{"u", 0, p.producer_id, 0, 0, false}));
  EXPECT_EQ(State("a"), "CompleteAbort");
  EXPECT_EQ(tc_->EndTxn("a", p.producer_id, 0, true, false).error, ErrorCode::kInvalidTxnState);
  EXPECT_EQ(tc_->EndTxn("a", p.producer_id, 0, false, false).error, ErrorCode::kNone);
}

TEST_F(TransactionCoordinatorTest, EndTxnWithoutTransactionClassic) {
  auto p = Init("a");
  EXPECT_EQ(tc_->EndTxn("a", p.producer_id, 0, true, false).error, ErrorCode::kInvalidTxnState);
  EXPECT_EQ(tc_->EndTxn("a", p.producer_id, 0, false, false).error, ErrorCode::kInvalidTxnState);
  EXPECT_EQ(tc_->EndTxn("b", 0, 0, true, false).error, ErrorCode::kInvalidProducerIdMapping);
}

TEST_F(TransactionCoordinatorTest, TransactionsV2BumpEpochAtEveryEnd) {
  auto p = Init("a");
  // Produce v12 adds the partition itself.
  EXPECT_EQ(tc_->VerifyPartition("a", p.producer_id, 0, "t", 0, VerifyOperation::kAdd),
            ErrorCode::kNone);
  EXPECT_EQ(State("a"), "Ongoing");
  EXPECT_EQ(tc_->Find("a")->client_transaction_version, 2);
  auto end = tc_->EndTxn("a", p.producer_id, 0, true, true);
  ASSERT_EQ(end.error, ErrorCode::kNone);
  EXPECT_EQ(end.producer_id, p.producer_id);
  EXPECT_EQ(end.producer_epoch, 1);
  // The markers carry the bumped epoch, which fences the transaction's own epoch.
  EXPECT_EQ(writer_.markers, (std::vector<Marker>{{"t", 0, p.producer_id, 1, 0, true}}));
  EXPECT_EQ(State("a"), "CompleteCommit");
  // The same EndTxn retried with the old epoch: already done, the same answer.
  end = tc_->EndTxn("a", p.producer_id, 0, true, true);
  EXPECT_EQ(end.error, ErrorCode::kNone);
  EXPECT_EQ(end.producer_epoch, 1);
  EXPECT_EQ(writer_.markers.size(), 1u);
  EXPECT_EQ(tc_->EndTxn("a", p.producer_id, 0, false, true).error, ErrorCode::kInvalidTxnState);
  // A commit with the new epoch and no transaction is refused; an abort bumps again.
  EXPECT_EQ(tc_->EndTxn("a", p.producer_id, 1, true, true).error, ErrorCode::kInvalidTxnState);
  end = tc_->EndTxn("a", p.producer_id, 1, false, true);
  EXPECT_EQ(end.error, ErrorCode::kNone);
  EXPECT_EQ(end.producer_epoch, 2);
  EXPECT_EQ(writer_.markers.size(), 1u);  // nothing to mark
  EXPECT_EQ(State("a"), "CompleteAbort");
  // Older epochs are fenced everywhere.
  EXPECT_EQ(tc_->EndTxn("a", p.producer_id, 0, false, true).error, ErrorCode::kProducerFenced);
  EXPECT_EQ(tc_->VerifyPartition("a", p.producer_id, 1, "t", 0, VerifyOperation::kAdd),
            ErrorCode::kInvalidProducerEpoch);
  // The next transaction through TxnOffsetCommit v5 and an abort.
  EXPECT_EQ(
      tc_->VerifyPartition("a", p.producer_id, 2, "__consumer_offsets", 3, VerifyOperation::kAdd),
      ErrorCode::kNone);
  end = tc_->EndTxn("a", p.producer_id, 2, false, true);
  EXPECT_EQ(end.producer_epoch, 3);
  EXPECT_EQ(writer_.markers.back(), (Marker{"__consumer_offsets", 3, p.producer_id, 3, 0, false}));
}

TEST_F(TransactionCoordinatorTest, TransactionsV2AbortFromEmpty) {
  auto p = Init("a");
  EXPECT_EQ(tc_->EndTxn("a", p.producer_id, 0, true, true).error, ErrorCode::kInvalidTxnState);
  auto end = tc_->EndTxn("a", p.producer_id, 0, false, true);
  EXPECT_EQ(end.error, ErrorCode::kNone);
  EXPECT_EQ(end.producer_epoch, 1);
  EXPECT_EQ(tc_->Describe("a").start_ms, now_);
}

TEST_F(TransactionCoordinatorTest, TransactionsV2EpochExhaustionRollsProducerId) {
  TransactionRecord r;
  r.transactional_id = "a";
  r.producer_id = 500;
  r.producer_epoch = 32766;
  r.timeout_ms = kTimeout;
  r.state = TransactionState::kOngoing;
  r.partitions["t"] = {0};
  r.last_update_ms = now_;
  r.start_ms = now_;
  r.client_transaction_version = 2;
  WriteRecord(r);
  auto end = tc_->EndTxn("a", 500, 32766, true, true);
  ASSERT_EQ(end.error, ErrorCode::kNone);
  EXPECT_NE(end.producer_id, 500);
  EXPECT_EQ(end.producer_epoch, 0);
  // The markers go out under the old id at the last epoch.
  EXPECT_EQ(writer_.markers, (std::vector<Marker>{{"t", 0, 500, 32767, 0, true}}));
  const TransactionRecord* now = tc_->Find("a");
  EXPECT_EQ(now->state, TransactionState::kCompleteCommit);
  EXPECT_EQ(now->producer_id, end.producer_id);
  EXPECT_EQ(now->previous_producer_id, 500);
  EXPECT_EQ(now->next_producer_id, -1);
  // A retry with the old id and epoch gets the new ones.
  auto retried = tc_->EndTxn("a", 500, 32766, true, true);
  EXPECT_EQ(retried.error, ErrorCode::kNone);
  EXPECT_EQ(retried.producer_id, end.producer_id);
  EXPECT_EQ(retried.producer_epoch, 0);
  // And the new id works.
  EXPECT_EQ(tc_->VerifyPartition("a", end.producer_id, 0, "t", 1, VerifyOperation::kAdd),
            ErrorCode::kNone);
}

TEST_F(TransactionCoordinatorTest, VerifyPartitionClassic) {
  auto p = Init("a");
  EXPECT_EQ(tc_->VerifyPartition("a", p.producer_id, 0, "t", 0, VerifyOperation::kVerify),
            ErrorCode::kInvalidTxnState);
  EXPECT_EQ(tc_->VerifyPartitionInTransaction("a", p.producer_id, 0, "t", 0),
            ErrorCode::kTransactionAbortable);
  ASSERT_EQ(Add("a", p.producer_id, 0, {{"t", 0}}), ErrorCode::kNone);
  EXPECT_EQ(tc_->VerifyPartition("a", p.producer_id, 0, "t", 0, VerifyOperation::kVerify),
            ErrorCode::kNone);
  EXPECT_EQ(tc_->VerifyPartition("a", p.producer_id, 0, "t", 1, VerifyOperation::kVerify),
            ErrorCode::kInvalidTxnState);
  EXPECT_EQ(tc_->VerifyPartition("a", p.producer_id + 1, 0, "t", 0, VerifyOperation::kVerify),
            ErrorCode::kInvalidProducerIdMapping);
  EXPECT_EQ(tc_->VerifyPartition("a", p.producer_id, 3, "t", 0, VerifyOperation::kVerify),
            ErrorCode::kInvalidProducerEpoch);
  EXPECT_EQ(tc_->VerifyPartitionInTransaction("a", p.producer_id, 3, "t", 0),
            ErrorCode::kProducerFenced);
  EXPECT_EQ(tc_->VerifyPartition("zz", 1, 0, "t", 0, VerifyOperation::kVerify),
            ErrorCode::kInvalidProducerIdMapping);
}

TEST_F(TransactionCoordinatorTest, TimedOutTransactionIsAbortedAndProducerFenced) {
  auto p = tc_->InitProducerId("a", 1000, -1, -1);
  const int64_t start = now_;
  ASSERT_EQ(Add("a", p.producer_id, 0, {{"t", 0}}), ErrorCode::kNone);
  tc_->AbortTimedOutTransactions(start + 1000);
  EXPECT_EQ(State("a"), "Ongoing");
  tc_->AbortTimedOutTransactions(start + 1001);
  EXPECT_EQ(State("a"), "CompleteAbort");
  // Fenced (epoch 1) and aborted with the v2 bump (epoch 2).
  EXPECT_EQ(writer_.markers, (std::vector<Marker>{{"t", 0, p.producer_id, 2, 0, false}}));
  EXPECT_EQ(tc_->Describe("a").producer_epoch, 2);
  EXPECT_EQ(tc_->EndTxn("a", p.producer_id, 0, true, false).error, ErrorCode::kProducerFenced);
  EXPECT_EQ(tc_->EndTxn("a", p.producer_id, 0, true, true).error, ErrorCode::kProducerFenced);
  EXPECT_EQ(Add("a", p.producer_id, 0, {{"t", 0}}), ErrorCode::kProducerFenced);
  EXPECT_EQ(tc_->VerifyPartition("a", p.producer_id, 0, "t", 0, VerifyOperation::kAdd),
            ErrorCode::kInvalidProducerEpoch);
  // A new producer instance starts over.
  auto again = Init("a");
  EXPECT_EQ(again.producer_epoch, 3);
}

TEST_F(TransactionCoordinatorTest, ReloadKeepsOngoingTransaction) {
  auto p = tc_->InitProducerId("a", 5000, -1, -1);
  ASSERT_EQ(Add("a", p.producer_id, 0, {{"t", 0}}), ErrorCode::kNone);
  const int64_t start = now_;
  now_ += 1000;
  Reopen();
  auto d = tc_->Describe("a");
  EXPECT_EQ(d.state, "Ongoing");
  EXPECT_EQ(d.start_ms, start);
  EXPECT_EQ(d.producer_id, p.producer_id);
  EXPECT_EQ(d.producer_epoch, 0);
  EXPECT_TRUE(writer_.markers.empty());
  // The producer carries on after the restart, and the timeout still counts from the start.
  EXPECT_EQ(Add("a", p.producer_id, 0, {{"t", 1}}), ErrorCode::kNone);
  tc_->AbortTimedOutTransactions(start + 5001);
  EXPECT_EQ(State("a"), "CompleteAbort");
  EXPECT_EQ(writer_.markers.size(), 2u);
}

TEST_F(TransactionCoordinatorTest, PrepareCommitIsCompletedOnLoadAndRetried) {
  auto p = Init("a");
  ASSERT_EQ(Add("a", p.producer_id, 0, {{"t", 0}, {"u", 0}}), ErrorCode::kNone);
  writer_.error = ErrorCode::kKafkaStorageError;
  // The decision is durable, so EndTxn succeeds; the markers wait.
  EXPECT_EQ(tc_->EndTxn("a", p.producer_id, 0, true, false).error, ErrorCode::kNone);
  EXPECT_EQ(State("a"), "PrepareCommit");
  EXPECT_EQ(tc_->EndTxn("a", p.producer_id, 0, true, false).error,
            ErrorCode::kConcurrentTransactions);
  EXPECT_EQ(tc_->EndTxn("a", p.producer_id, 0, false, false).error, ErrorCode::kInvalidTxnState);
  EXPECT_EQ(Init("a").error, ErrorCode::kConcurrentTransactions);
  EXPECT_EQ(Add("a", p.producer_id, 0, {{"t", 1}}), ErrorCode::kConcurrentTransactions);
  EXPECT_EQ(tc_->VerifyPartition("a", p.producer_id, 0, "t", 0, VerifyOperation::kVerify),
            ErrorCode::kNotEnoughReplicas);
  // A restart finds the PrepareCommit and completes it.
  writer_.error = ErrorCode::kNone;
  Reopen();
  EXPECT_EQ(State("a"), "CompleteCommit");
  EXPECT_EQ(writer_.markers, (std::vector<Marker>{{"t", 0, p.producer_id, 0, 0, true},
                                                  {"u", 0, p.producer_id, 0, 0, true}}));
  Reopen();
  EXPECT_EQ(State("a"), "CompleteCommit");
  EXPECT_EQ(writer_.markers.size(), 2u);
}

TEST_F(TransactionCoordinatorTest, PendingMarkersAreRetried) {
  auto p = Init("a");
  ASSERT_EQ(Add("a", p.producer_id, 0, {{"t", 0}}), ErrorCode::kNone);
  writer_.error = ErrorCode::kNotLeaderOrFollower;
  ASSERT_EQ(tc_->EndTxn("a", p.producer_id, 0, false, false).error, ErrorCode::kNone);
  EXPECT_EQ(State("a"), "PrepareAbort");
  writer_.error = ErrorCode::kNone;
  // The next request about the id writes them first and then answers as for the retry.
  EXPECT_EQ(tc_->EndTxn("a", p.producer_id, 0, false, false).error, ErrorCode::kNone);
  EXPECT_EQ(State("a"), "CompleteAbort");
  EXPECT_EQ(writer_.markers.size(), 1u);
}

TEST_F(TransactionCoordinatorTest, VanishedPartitionCountsAsMarked) {
  auto p = Init("a");
  ASSERT_EQ(Add("a", p.producer_id, 0, {{"t", 0}}), ErrorCode::kNone);
  writer_.error = ErrorCode::kUnknownTopicOrPartition;
  ASSERT_EQ(tc_->EndTxn("a", p.producer_id, 0, true, false).error, ErrorCode::kNone);
  EXPECT_EQ(State("a"), "CompleteCommit");
  EXPECT_EQ(writer_.attempts, 1);
}

TEST_F(TransactionCoordinatorTest, IdleIdsExpire) {
  config_.transactional_id_expiration_ms = 1000;
  Reopen();
  auto a = Init("a");
  Init("b");
  ASSERT_EQ(Add("b", tc_->Find("b")->producer_id, 0, {{"t", 0}}), ErrorCode::kNone);
  tc_->RemoveExpiredTransactionalIds(now_ + 999);
  EXPECT_EQ(tc_->Describe("a").error, ErrorCode::kNone);
  tc_->RemoveExpiredTransactionalIds(now_ + 1000);
  EXPECT_EQ(tc_->Describe("a").error, ErrorCode::kTransactionalIdNotFound);
  EXPECT_EQ(State("b"), "Ongoing");  // an open transaction never expires
  Reopen();
  EXPECT_EQ(tc_->Describe("a").error, ErrorCode::kTransactionalIdNotFound);
  EXPECT_EQ(State("b"), "Ongoing");
  // The id starts over with a new producer id.
  auto fresh = Init("a");
  EXPECT_EQ(fresh.producer_epoch, 0);
  EXPECT_NE(fresh.producer_id, a.producer_id);
}

TEST_F(TransactionCoordinatorTest, DescribeAndList) {
  EXPECT_EQ(tc_->Describe("nobody").error, ErrorCode::kTransactionalIdNotFound);
  auto a = Init("a");
  auto b = Init("b");
  ASSERT_EQ(Add("b", b.producer_id, 0, {{"t", 0}}), ErrorCode::kNone);
  auto d = tc_->Describe("b");
  EXPECT_EQ(d.error, ErrorCode::kNone);
  EXPECT_EQ(d.state, "Ongoing");
  EXPECT_EQ(d.timeout_ms, kTimeout);
  EXPECT_EQ(tc_->Describe("a").start_ms, -1);

  auto ids = [](const std::vector<TransactionCoordinator::TransactionListing>& l) {
    std::vector<std::string> out;
    for (const auto& t : l) out.push_back(t.transactional_id + ":" + t.state);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids(tc_->List({}, {}, -1)), (V{"a:Empty", "b:Ongoing"}));
  EXPECT_EQ(ids(tc_->List({"Ongoing"}, {}, -1)), (V{"b:Ongoing"}));
  EXPECT_EQ(ids(tc_->List({"Bogus"}, {}, -1)), V{});
  EXPECT_EQ(ids(tc_->List({}, {a.producer_id}, -1)), (V{"a:Empty"}));
  // Running longer than the duration (b started now).
  now_ += 100;
  EXPECT_EQ(ids(tc_->List({"Ongoing"}, {}, 100)), V{});
  EXPECT_EQ(ids(tc_->List({"Ongoing"}, {}, 99)), (V{"b:Ongoing"}));
}

TEST_F(TransactionCoordinatorTest, ConfigFromProperties) {
  auto c = TransactionCoordinatorConfig::FromProperties({});
  EXPECT_EQ(c.max_timeout_ms, 900000);
  EXPECT_EQ(c.transactional_id_expiration_ms, 604800000);
  EXPECT_EQ(c.abort_timed_out_interval_ms, 10000);
  EXPECT_EQ(c.remove_expired_interval_ms, 3600000);
  EXPECT_EQ(c.log_partitions, 50);
  EXPECT_EQ(c.log_segment_bytes, 104857600);
  c = TransactionCoordinatorConfig::FromProperties(
      {{"transaction.max.timeout.ms", "1000"},
       {"transaction.state.log.num.partitions", "3"},
       {"transaction.abort.timed.out.transaction.cleanup.interval.ms", "77"}});
  EXPECT_EQ(c.max_timeout_ms, 1000);
  EXPECT_EQ(c.log_partitions, 3);
  EXPECT_EQ(c.abort_timed_out_interval_ms, 77);
}

TEST_F(TransactionCoordinatorTest, AbortCheckRunsOnTimer) {
  config_.abort_timed_out_interval_ms = 5;
  Reopen();
  auto p = tc_->InitProducerId("a", 1, -1, -1);
  ASSERT_EQ(Add("a", p.producer_id, 0, {{"t", 0}}), ErrorCode::kNone);
  now_ += 10;
  io_.restart();
  io_.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(State("a"), "CompleteAbort");
}

}  // namespace
}  // namespace runnel::broker
