// The config catalog (config_catalog.h): values, sources and synonyms as Kafka's
// DescribeConfigs shows them, topic-config validation, dynamic broker config validation
// and persistence format.
#include "broker/config_catalog.h"

#include <map>
#include <string>
#include <vector>

#include "broker/config.h"
#include "broker/dynamic_config.h"
#include "broker/topic_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace runnel::broker {
namespace {

using Map = std::map<std::string, std::string>;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// "SOURCE:name=value" per synonym, as kafka-configs.sh prints them.
std::vector<std::string> Synonyms(const ConfigEntry& e) {
  std::vector<std::string> out;
  for (const ConfigSynonymEntry& s : e.synonyms) {
    out.push_back(std::to_string(static_cast<int>(s.source)) + ":" + s.name + "=" +
                  s.value.value_or("null"));
  }
  return out;
}

const ConfigEntry& Find(const std::vector<ConfigEntry>& entries, const std::string& name) {
  for (const ConfigEntry& e : entries) {
    if (e.name == name) return e;
  }
  static const ConfigEntry kMissing = [] {
    ConfigEntry e;
    e.name = "<missing>";
    return e;
  }();
  ADD_FAILURE() << name << " not described";
  return kMissing;
}

struct Layers {
  Map static_props, cluster, broker;
  ConfigLayers get() const { return {&static_props, &cluster, &broker}; }
};

TEST(ConfigCatalogTest, TopicDefaultsAsKafka) {
  Layers l;
  std::vector<ConfigEntry> entries = DescribeTopicConfigs(l.get(), {});
  ASSERT_EQ(entries.size(), 33u);  // Kafka 4.x's LogConfig
  const ConfigEntry& segment_bytes = Find(entries, "segment.bytes");
  EXPECT_EQ(segment_bytes.value, "1073741824");
  EXPECT_EQ(segment_bytes.source, ConfigSource::kDefault);
  EXPECT_EQ(segment_bytes.type, ConfigType::kInt);
  EXPECT_FALSE(segment_bytes.read_only);
  EXPECT_THAT(Synonyms(segment_bytes), ElementsAre("5:log.segment.bytes=1073741824"));
  // log.retention.ms has no default: the value comes from log.retention.hours, and Kafka
  // drops the synonyms before the first log.retention.ms.
  const ConfigEntry& retention = Find(entries, "retention.ms");
  EXPECT_EQ(retention.value, "604800000");
  EXPECT_EQ(retention.source, ConfigSource::kDefault);
  EXPECT_THAT(retention.synonyms, IsEmpty());
  EXPECT_EQ(Find(entries, "flush.ms").value, "9223372036854775807");
  EXPECT_EQ(Find(entries, "segment.ms").value, "604800000");
  EXPECT_EQ(Find(entries, "cleanup.policy").type, ConfigType::kList);
  EXPECT_EQ(Find(entries, "min.cleanable.dirty.ratio").type, ConfigType::kDouble);
  EXPECT_EQ(Find(entries, "remote.storage.enable").value, "false");
  EXPECT_THAT(Find(entries, "remote.storage.enable").synonyms, IsEmpty());
  EXPECT_EQ(Find(entries, "leader.replication.throttled.replicas").value, "");
  EXPECT_EQ(Find(entries, "max.message.bytes").value, "1048588");
}

TEST(ConfigCatalogTest, TopicPrecedenceAndSynonymOrder) {
  Layers l;
  l.static_props = {{"log.retention.ms", "5000"}, {"log.retention.hours", "1"}};
  l.cluster = {{"log.retention.ms", "7000"}};
  l.broker = {{"log.retention.ms", "9000"}};
  std::vector<ConfigEntry> entries = DescribeTopicConfigs(l.get(), {{"retention.ms", "100"}});
  const ConfigEntry& e = Find(entries, "retention.ms");
  EXPECT_EQ(e.value, "100");
  EXPECT_EQ(e.source, ConfigSource::kTopic);
  EXPECT_THAT(Synonyms(e), ElementsAre("1:retention.ms=100", "2:log.retention.ms=9000",
                                       "3:log.retention.ms=7000", "4:log.retention.ms=5000",
                                       "4:log.retention.hours=1", "5:log.retention.hours=168"));
  // Without the topic's own value, the per-broker dynamic one wins.
  entries = DescribeTopicConfigs(l.get(), {});
  EXPECT_EQ(Find(entries, "retention.ms").value, "9000");
  EXPECT_EQ(Find(entries, "retention.ms").source, ConfigSource::kDynamicBroker);
  // log.retention.hours converts to ms.
  Layers hours;
  hours.static_props = {{"log.retention.hours", "2"}};
  EXPECT_EQ(Find(DescribeTopicConfigs(hours.get(), {}), "retention.ms").value, "7200000");
}

TEST(ConfigCatalogTest, BrokerEntries) {
  Layers l;
  l.static_props = {{"message.max.bytes", "2000000"}, {"custom.key", "x"}};
  l.cluster = {{"message.max.bytes", "3000000"}};
  std::vector<ConfigEntry> entries = DescribeBrokerConfigs(l.get(), /*per_broker=*/true);
  const ConfigEntry& mmb = Find(entries, "message.max.bytes");
  EXPECT_EQ(mmb.value, "3000000");
  EXPECT_EQ(mmb.source, ConfigSource::kDynamicDefaultBroker);
  EXPECT_FALSE(mmb.read_only);
  EXPECT_THAT(Synonyms(mmb),
              ElementsAre("3:message.max.bytes=3000000", "4:message.max.bytes=2000000",
                          "5:message.max.bytes=1048588"));
  const ConfigEntry& dirs = Find(entries, "log.dirs");
  EXPECT_TRUE(dirs.read_only);
  EXPECT_EQ(dirs.value, std::nullopt);
  // A key Kafka does not know is UNKNOWN, hence sensitive: no value.
  const ConfigEntry& custom = Find(entries, "custom.key");
  EXPECT_EQ(custom.type, ConfigType::kUnknown);
  EXPECT_TRUE(custom.sensitive);
  EXPECT_EQ(custom.value, std::nullopt);
  EXPECT_EQ(custom.source, ConfigSource::kStaticBroker);
  // The cluster-default resource shows only its own keys and layer.
  std::vector<ConfigEntry> defaults = DescribeBrokerConfigs(l.get(), /*per_broker=*/false);
  ASSERT_EQ(defaults.size(), 1u);
  EXPECT_EQ(defaults[0].name, "message.max.bytes");
  EXPECT_THAT(Synonyms(defaults[0]), ElementsAre("3:message.max.bytes=3000000"));
}

TEST(ConfigCatalogTest, BrokerKeysHaveKafkasDynamicModes) {
  EXPECT_EQ(FindBrokerKey("log.retention.ms")->dynamic, DynamicUpdate::kClusterWide);
  EXPECT_EQ(FindBrokerKey("log.retention.hours")->dynamic, DynamicUpdate::kReadOnly);
  EXPECT_EQ(FindBrokerKey("log.cleaner.threads")->dynamic, DynamicUpdate::kClusterWide);
  EXPECT_EQ(FindBrokerKey("listeners")->dynamic, DynamicUpdate::kPerBroker);
  EXPECT_EQ(FindBrokerKey("log.dirs")->dynamic, DynamicUpdate::kReadOnly);
  // Every topic config's first synonym is a dynamic broker key (DynamicLogConfig).
  for (const TopicKey& k : TopicKeys()) {
    if (k.synonyms[0].broker_key.empty()) continue;
    const BrokerKey* b = FindBrokerKey(k.synonyms[0].broker_key);
    ASSERT_NE(b, nullptr) << k.synonyms[0].broker_key;
    EXPECT_EQ(b->dynamic, DynamicUpdate::kClusterWide) << b->name;
  }
}

TEST(ConfigCatalogTest, ValidateDynamicBrokerConfigs) {
  EXPECT_TRUE(ValidateDynamicBrokerConfigs({{"log.retention.ms", "1000"}}, false).ok());
  EXPECT_EQ(
      ValidateDynamicBrokerConfigs({{"log.dirs", "/x"}, {"num.partitions", "3"}}, true).message(),
      "Cannot update these configs dynamically: [log.dirs, num.partitions]");
  EXPECT_EQ(ValidateDynamicBrokerConfigs({{"listeners", "PLAINTEXT://:1"}}, false).message(),
            "Cannot update these configs at default cluster level, broker id must be "
            "specified: [listeners]");
  EXPECT_TRUE(ValidateDynamicBrokerConfigs({{"listeners", "PLAINTEXT://:1"}}, true).ok());
  EXPECT_EQ(ValidateDynamicBrokerConfigs({{"message.max.bytes", "abc"}}, true).message(),
            "Invalid value abc for configuration message.max.bytes: Not a number of type INT");
  EXPECT_TRUE(ValidateDynamicBrokerConfigs({{"unknown.custom", "1"}}, true).ok());
}

TEST(ConfigCatalogTest, ValidateTopicConfigs) {
  EXPECT_TRUE(
      ValidateTopicConfigs({{"segment.bytes", "1048576"}, {"cleanup.policy", "compact"}}).ok());
  EXPECT_EQ(ValidateTopicConfigs({{"nope", "1"}}).message(), "Unknown topic config name: nope");
  EXPECT_EQ(ValidateTopicConfigs({{"segment.bytes", "1000"}}).message(),
            "Invalid value 1000 for configuration segment.bytes: Value must be at least 1048576");
  EXPECT_EQ(ValidateTopicConfigs({{"compression.type", "brotli"}}).message(),
            "Invalid value brotli for configuration compression.type: String must be one of: "
            "uncompressed, zstd, lz4, snappy, gzip, producer");
  EXPECT_EQ(ValidateTopicConfigs({{"min.compaction.lag.ms", "10"}, {"max.compaction.lag.ms", "5"}})
                .message(),
            "conflict topic config setting min.compaction.lag.ms (10) > max.compaction.lag.ms (5)");
  EXPECT_TRUE(ValidateTopicConfigs({{"compression.gzip.level", "-1"}}).ok());
}

TEST(ConfigCatalogTest, DynamicConfigFileRoundTrip) {
  DynamicBrokerConfigs c;
  c.cluster_defaults = {{"log.retention.ms", "1000"}, {"odd key=:", "v #with\nnewline "}};
  c.per_broker = {{"message.max.bytes", " 2000"}};
  absl::StatusOr<DynamicBrokerConfigs> back = ParseDynamicConfigs(SerializeDynamicConfigs(c));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->cluster_defaults, c.cluster_defaults);
  EXPECT_EQ(back->per_broker, c.per_broker);
  EXPECT_FALSE(ParseDynamicConfigs("other=1\n").ok());
}

TEST(ConfigCatalogTest, MergedPropertiesPrecedence) {
  Layers l;
  l.static_props = {{"a", "s"}, {"b", "s"}, {"c", "s"}};
  l.cluster = {{"b", "c"}, {"c", "c"}};
  l.broker = {{"c", "b"}};
  EXPECT_EQ(MergedProperties(l.get()), (Map{{"a", "s"}, {"b", "c"}, {"c", "b"}}));
  EXPECT_EQ(EffectiveBrokerValue(l.get(), "log.retention.hours"), "168");
  EXPECT_EQ(EffectiveBrokerValue(l.get(), "log.retention.ms"), std::nullopt);
}

}  // namespace
}  // namespace runnel::broker
