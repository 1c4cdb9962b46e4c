// Unit tests for TransactionLog: the __transaction_state key/value bytes against Kafka's
// layout (a record captured from a Kafka 4.0 broker), the tagged fields, version 0, the
// partition of a transactional id, and Load's last-record-wins replay with tombstones.
#include "broker/transaction_log.h"

#include <stdlib.h>

#include <filesystem>
#include <string>

#include "gtest/gtest.h"

namespace runnel::broker {
namespace {

std::string Hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

TEST(TransactionLogFormatTest, OngoingValueMatchesKafkaBytes) {
  // The Ongoing record a Kafka 4.0 broker (transaction.version 1) wrote for "my-txn-id"
  // producing to txtest-0, copied out of __transaction_state-11.
  TransactionRecord r;
  r.transactional_id = "my-txn-id";
  r.producer_id = 0;
  r.producer_epoch = 0;
  r.timeout_ms = 60000;
  r.state = TransactionState::kOngoing;
  r.partitions["txtest"] = {0};
  r.last_update_ms = 0x0000019e7b4b367a;
  r.start_ms = 0x0000019e7b4b367a;
  EXPECT_EQ(Hex(EncodeTransactionLogValue(r)),
            "0001"
            "0000000000000000"
            "0000"
            "0000ea60"
            "01"
            "02"
            "07747874657374"
            "02"
            "00000000"
            "00"
            "0000019e7b4b367a"
            "0000019e7b4b367a"
            "00");
  EXPECT_EQ(Hex(EncodeTransactionLogKey("my-txn-id")),
            "0000"
            "0009"
            "6d792d74786e2d6964");
}

TEST(TransactionLogFormatTest, TaggedFieldsRoundTrip) {
  TransactionRecord r;
  r.transactional_id = "t";
  r.producer_id = 1000;
  r.previous_producer_id = 999;
  r.next_producer_id = 1001;
  r.producer_epoch = 32767;
  r.timeout_ms = 1000;
  r.state = TransactionState::kPrepareCommit;
  r.partitions["a"] = {0, 2};
  r.partitions["__consumer_offsets"] = {7};
  r.last_update_ms = 5;
  r.start_ms = 4;
  r.client_transaction_version = 2;
  std::string value = EncodeTransactionLogValue(r);
  // The tagged section: 3 fields, tags 0, 1, 2 with their sizes.
  EXPECT_EQ(Hex(value.substr(value.size() - 25)),
            "03"
            "0008"
            "00000000000003e7"
            "0108"
            "00000000000003e9"
            "0202"
            "0002");
  TransactionRecord back;
  back.transactional_id = "t";
  ASSERT_TRUE(DecodeTransactionLogValue(value, &back).ok());
  EXPECT_EQ(back, r);
  EXPECT_EQ(back.last_producer_epoch, -1);  // not stored
}

TEST(TransactionLogFormatTest, EmptyHasNullPartitions) {
  TransactionRecord r;
  r.producer_id = 3;
  r.producer_epoch = 0;
  r.timeout_ms = 10;
  r.state = TransactionState::kEmpty;
  r.last_update_ms = 1;
  std::string value = EncodeTransactionLogValue(r);
  // version, producer id, epoch, timeout, state, then a null compact array (0).
  EXPECT_EQ(Hex(value.substr(2 + 8 + 2 + 4 + 1, 1)), "00");
  TransactionRecord back;
  ASSERT_TRUE(DecodeTransactionLogValue(value, &back).ok());
  EXPECT_TRUE(back.partitions.empty());
  EXPECT_EQ(back.state, TransactionState::kEmpty);
  EXPECT_EQ(back.start_ms, -1);
}

TEST(TransactionLogFormatTest, DecodesVersionZero) {
  std::string v;
  auto put = [&v](uint64_t x, int n) {
    for (int i = n - 1; i >= 0; --i) v.push_back(static_cast<char>(x >> (8 * i)));
  };
  put(0, 2);            // version 0
  put(42, 8);           // producer id
  put(3, 2);            // epoch
  put(60000, 4);        // timeout
  put(4, 1);            // CompleteCommit
  put(1, 4);            // one topic
  put(1, 2), v += "x";  // "x"
  put(2, 4), put(5, 4), put(6, 4);
  put(100, 8), put(90, 8);  // last update, start
  TransactionRecord r;
  ASSERT_TRUE(DecodeTransactionLogValue(v, &r).ok());
  EXPECT_EQ(r.producer_id, 42);
  EXPECT_EQ(r.producer_epoch, 3);
  EXPECT_EQ(r.timeout_ms, 60000);
  EXPECT_EQ(r.state, TransactionState::kCompleteCommit);
  EXPECT_EQ(r.partitions.at("x"), (std::set<int32_t>{5, 6}));
  EXPECT_EQ(r.last_update_ms, 100);
  EXPECT_EQ(r.start_ms, 90);
  EXPECT_EQ(r.previous_producer_id, -1);
  EXPECT_EQ(r.client_transaction_version, 0);

  EXPECT_FALSE(DecodeTransactionLogValue(std::string("\x00\x02", 2) + v.substr(2), &r).ok());
  EXPECT_FALSE(DecodeTransactionLogValue(v.substr(0, v.size() - 3), &r).ok());
  EXPECT_EQ(DecodeTransactionLogKey(EncodeTransactionLogKey("id")), "id");
  EXPECT_EQ(DecodeTransactionLogKey(std::string("\x00\x01\x00\x00", 4)), std::nullopt);
}

TEST(TransactionLogFormatTest, StateNames) {
  EXPECT_STREQ(TransactionStateName(TransactionState::kPrepareEpochFence), "PrepareEpochFence");
  EXPECT_STREQ(TransactionStateName(TransactionState::kCompleteAbort), "CompleteAbort");
  EXPECT_EQ(TransactionStateFromName("Ongoing"), TransactionState::kOngoing);
  EXPECT_EQ(TransactionStateFromName("ongoing"), std::nullopt);
  EXPECT_EQ(static_cast<int>(TransactionState::kDead), 6);
}

class TransactionLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "transaction_log_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
};

TEST_F(TransactionLogTest, PartitionIsJavaHashCodeModPartitions) {
  TransactionLog log(dir_, 50, 1 << 20);
  // Where Kafka 4.0 put "my-txn-id" with the default 50 partitions.
  EXPECT_EQ(log.PartitionFor("my-txn-id"), 11);
}

TEST_F(TransactionLogTest, LoadReplaysLastRecordPerIdAndTombstones) {
  TransactionRecord a;
  a.transactional_id = "a";
  a.producer_id = 1;
  a.producer_epoch = 0;
  a.timeout_ms = 100;
  a.state = TransactionState::kEmpty;
  a.last_update_ms = 10;
  TransactionRecord b = a;
  b.transactional_id = "b";
  b.producer_id = 2;
  {
    TransactionLog log(dir_, 3, 1 << 20);
    ASSERT_TRUE(log.Load(false).ok());
    ASSERT_TRUE(log.Append(a, 1).ok());
    ASSERT_TRUE(log.Append(b, 1).ok());
    b.state = TransactionState::kOngoing;
    b.partitions["t"] = {1};
    b.start_ms = 11;
    ASSERT_TRUE(log.Append(b, 2).ok());
    std::vector<std::string> written;
    ASSERT_TRUE(log.AppendTombstones({"a"}, 3, &written).ok());
    EXPECT_EQ(written, std::vector<std::string>{"a"});
    int logs = 0;
    log.ForEachLog([&logs](int32_t, storage::PartitionLog&) { ++logs; });
    EXPECT_GE(logs, 1);
    ASSERT_TRUE(log.Close().ok());
  }
  EXPECT_TRUE(std::filesystem::is_directory(
      dir_ /
      ("__transaction_state-" + std::to_string(TransactionLog(dir_, 3, 1).PartitionFor("b")))));
  TransactionLog log(dir_, 3, 1 << 20);
  auto loaded = log.Load(/*clean_shutdown=*/true);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_EQ(loaded->at("b"), b);
  ASSERT_TRUE(log.Close().ok());
}

}  // namespace
}  // namespace runnel::broker
