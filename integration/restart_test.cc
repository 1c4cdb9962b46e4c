// Durability across a clean restart: produce to a real runnel process, stop
// it with SIGTERM (exit code 0), start it again on the same data dir, and
// read everything back at the same offsets with the same content.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "broker_process.h"
#include "expect_log.h"
#include "kafka_client.h"

namespace runnel::integration {
namespace {

constexpr int kPartitions = 3;

TEST(RestartTest, SameOffsetsAndContentAfterSigterm) {
  // Small segments, so the data spans several segment files.
  BrokerProcess broker(BrokerProcess::DefaultBinary(), {"log.segment.bytes=1048576"});
  std::string error;
  ASSERT_TRUE(broker.Start(&error)) << error;

  const std::string topic = "restart";
  ASSERT_EQ(CreateTopic(broker.bootstrap(), topic, kPartitions), "");
  std::vector<Message> messages = MakeMessages(30000, kPartitions, topic);
  ASSERT_EQ(Produce(broker.bootstrap(), topic, &messages, {"all", "none"}), "");
  std::vector<int64_t> counts(kPartitions, 0);
  for (const auto& m : messages) counts[m.partition]++;
  ExpectLog(broker.bootstrap(), topic, messages, counts);
  if (HasFatalFailure()) return;

  ASSERT_EQ(broker.Stop(), 0) << broker.Output();
  ASSERT_TRUE(broker.Restart(&error)) << error;
  ExpectLog(broker.bootstrap(), topic, messages, counts);
  if (HasFatalFailure()) return;

  // The restarted log keeps appending after the old end.
  std::vector<Message> more = MakeMessages(300, kPartitions, topic + "-more");
  ASSERT_EQ(Produce(broker.bootstrap(), topic, &more, {"1", "none"}), "");
  for (const auto& m : more) {
    EXPECT_EQ(m.offset, counts[m.partition]++) << Describe(m);
  }
  messages.insert(messages.end(), more.begin(), more.end());

  ASSERT_EQ(broker.Stop(), 0) << broker.Output();
  ASSERT_TRUE(broker.Restart(&error)) << error;
  ExpectLog(broker.bootstrap(), topic, messages, counts);
  EXPECT_EQ(broker.Stop(), 0) << broker.Output();
}

// Acknowledged data has been handed to the OS, so it survives the broker
// process being SIGKILLed (unlike a machine crash); the restart also has to
// recover logs that were not closed cleanly.
TEST(RestartTest, AcknowledgedDataSurvivesSigkill) {
  BrokerProcess broker(BrokerProcess::DefaultBinary(), {"log.segment.bytes=1048576"});
  std::string error;
  ASSERT_TRUE(broker.Start(&error)) << error;

  const std::string topic = "killed";
  ASSERT_EQ(CreateTopic(broker.bootstrap(), topic, kPartitions), "");
  std::vector<Message> messages = MakeMessages(20000, kPartitions, topic);
  ASSERT_EQ(Produce(broker.bootstrap(), topic, &messages, {"1", "snappy"}), "");
  std::vector<int64_t> counts(kPartitions, 0);
  for (const auto& m : messages) counts[m.partition]++;

  broker.Kill();
  ASSERT_TRUE(broker.Restart(&error)) << error;
  ExpectLog(broker.bootstrap(), topic, messages, counts);
  EXPECT_EQ(broker.Stop(), 0) << broker.Output();
}

}  // namespace
}  // namespace runnel::integration
