// ProducerIdManager: ids in blocks of 1000 recorded in latest_producer_id_block before
// use, never reused across restarts; and the producer.id.expiration.* broker keys.
#include "broker/producer_id_manager.h"

#include <stdlib.h>

#include <filesystem>
#include <string>

#include "broker/config.h"
#include "gtest/gtest.h"
#include "storage/file.h"

namespace runnel::broker {
namespace {

namespace fs = std::filesystem;

class ProducerIdManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "producer_id_manager_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Record() const {
    absl::StatusOr<std::string> text = storage::ReadFileToString(dir_ / kProducerIdBlockFile);
    return text.ok() ? *text : "<" + text.status().ToString() + ">";
  }

  fs::path dir_;
};

TEST_F(ProducerIdManagerTest, BlocksAreRecordedBeforeUseAndNeverReused) {
  {
    ProducerIdManager ids(dir_, 3);
    EXPECT_FALSE(fs::exists(dir_ / kProducerIdBlockFile));  // nothing before the first id
    EXPECT_EQ(*ids.Next(), 0);
    EXPECT_EQ(Record(), R"({"version":1,"broker":3,"block_start":"0","block_end":"999"})");
    for (int64_t want = 1; want < 1000; ++want) ASSERT_EQ(*ids.Next(), want);
    EXPECT_EQ(*ids.Next(), 1000);  // the block ran out: the next one is claimed first
    EXPECT_EQ(Record(), R"({"version":1,"broker":3,"block_start":"1000","block_end":"1999"})");
    EXPECT_EQ(*ids.Next(), 1001);
  }
  // A restart (clean or not) never hands out the rest of the last block.
  ProducerIdManager after(dir_, 3);
  EXPECT_EQ(*after.Next(), 2000);
  EXPECT_EQ(Record(), R"({"version":1,"broker":3,"block_start":"2000","block_end":"2999"})");
}

TEST_F(ProducerIdManagerTest, UnreadableRecordIsRefused) {
  ASSERT_TRUE(storage::WriteFileAtomically(dir_ / kProducerIdBlockFile, "{\"version\":1}").ok());
  ProducerIdManager ids(dir_, 1);
  absl::StatusOr<int64_t> id = ids.Next();
  EXPECT_EQ(id.status().code(), absl::StatusCode::kDataLoss) << id.status();
  EXPECT_EQ(ProducerIdManager::ParseBlockEnd(ProducerIdManager::FormatBlock(1, 5000, 5999)).value(),
            5999);
  EXPECT_FALSE(ProducerIdManager::ParseBlockEnd(
                   R"({"version":1,"broker":1,"block_start":"9","block_end":"3"})")
                   .ok());
}

TEST_F(ProducerIdManagerTest, ExhaustedIdsAreAnError) {
  ASSERT_TRUE(storage::WriteFileAtomically(
                  dir_ / kProducerIdBlockFile,
                  ProducerIdManager::FormatBlock(1, 0, INT64_MAX - kProducerIdBlockSize + 1))
                  .ok());
  EXPECT_EQ(ProducerIdManager(dir_, 1).Next().status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(ProducerIdConfigTest, ExpirationKeysHaveKafkasDefaultsAndChecks) {
  absl::StatusOr<BrokerConfig> defaults = BuildConfig({}, nullptr);
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->log_defaults.producer_id_expiration_ms, 86400000);
  EXPECT_EQ(defaults->producer_id_expiration_check_interval_ms, 600000);

  absl::StatusOr<BrokerConfig> set = BuildConfig(
      {{"producer.id.expiration.ms", "5000"}, {"producer.id.expiration.check.interval.ms", "500"}},
      nullptr);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->log_defaults.producer_id_expiration_ms, 5000);
  EXPECT_EQ(set->producer_id_expiration_check_interval_ms, 500);

  EXPECT_EQ(BuildConfig({{"producer.id.expiration.ms", "0"}}, nullptr).status().message(),
            "Invalid value 0 for configuration producer.id.expiration.ms: Value must be at "
            "least 1");
  EXPECT_EQ(BuildConfig({{"producer.id.expiration.ms", "3000000000"}}, nullptr).status().message(),
            "Invalid value 3000000000 for configuration producer.id.expiration.ms: Not a number "
            "of type INT");
  // Kafka lets AlterConfigs change the expiration (cluster-wide or per broker), not the
  // check interval.
  EXPECT_EQ(FindBrokerKey("producer.id.expiration.ms")->dynamic, DynamicUpdate::kClusterWide);
  EXPECT_EQ(FindBrokerKey("producer.id.expiration.check.interval.ms")->dynamic,
            DynamicUpdate::kReadOnly);
}

}  // namespace
}  // namespace runnel::broker
