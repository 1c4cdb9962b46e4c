// Produces 100k keyed messages with headers and CreateTime timestamps to a
// 3-partition topic on a real runnel process, reads them back with assign()
// from the beginning, and checks every record: key, value, headers,
// timestamp, per-partition order, offsets 0..n-1, and end offsets.
//
// All 15 pairs of codec (none, gzip, snappy, lz4, zstd) and acks (0, 1,
// all); each case starts its own broker and takes a few seconds.

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "broker_process.h"
#include "expect_log.h"
#include "kafka_client.h"

namespace runnel::integration {
namespace {

constexpr int kMessages = 100000;
constexpr int kPartitions = 3;

struct Case {
  std::string compression;
  std::string acks;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << "compression=" << c.compression << " acks=" << c.acks;
}

class ProduceConsumeTest : public ::testing::TestWithParam<Case> {};

TEST_P(ProduceConsumeTest, ReadsBackExactly) {
  const Case& c = GetParam();
  BrokerProcess broker(BrokerProcess::DefaultBinary());
  std::string error;
  ASSERT_TRUE(broker.Start(&error)) << error;
  const std::string bootstrap = broker.bootstrap();
  const std::string topic = "pc-" + c.compression + "-acks" + c.acks;
  ASSERT_EQ(CreateTopic(bootstrap, topic, kPartitions), "");

  std::vector<Message> messages = MakeMessages(kMessages, kPartitions, topic);
  ASSERT_EQ(Produce(bootstrap, topic, &messages, {c.acks, c.compression}), "");

  std::vector<int64_t> counts(kPartitions, 0);
  for (const auto& m : messages) counts[m.partition]++;
  if (c.acks == "0") {
    // Nothing is acknowledged: wait for the broker to have appended it all.
    ASSERT_EQ(WaitForEndOffsets(bootstrap, topic, counts, std::chrono::seconds(60)), "");
  } else {
    // Acknowledged offsets are consecutive per partition in send order.
    std::vector<int64_t> next(kPartitions, 0);
    for (const auto& m : messages) {
      ASSERT_EQ(m.offset, next[m.partition]++) << Describe(m);
    }
  }

  ExpectLog(bootstrap, topic, messages, counts);

  EXPECT_EQ(broker.Stop(), 0) << broker.Output();
}

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  for (const char* codec : {"none", "gzip", "snappy", "lz4", "zstd"}) {
    for (const char* acks : {"0", "1", "all"}) cases.push_back({codec, acks});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(CodecsAndAcks, ProduceConsumeTest, ::testing::ValuesIn(AllCases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.compression + "_acks" + info.param.acks;
                         });

}  // namespace
}  // namespace runnel::integration
