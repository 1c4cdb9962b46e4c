#include "broker/config.h"

#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace runnel::broker {
namespace {

using Map = std::map<std::string, std::string>;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string HostName() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name;
}

// Endpoints as NAME://host:port strings, for readable comparisons.
std::vector<std::string> Eps(const std::vector<Endpoint>& eps) {
  std::vector<std::string> out;
  for (const Endpoint& ep : eps) {
    out.push_back(ep.listener_name + "://" + ep.host + ":" + std::to_string(ep.port));
  }
  return out;
}

BrokerConfig Build(const Map& props, std::vector<std::string>* warnings = nullptr) {
  absl::StatusOr<BrokerConfig> cfg = BuildConfig(props, warnings);
  EXPECT_TRUE(cfg.ok()) << cfg.status();
  return cfg.ok() ? *cfg : BrokerConfig{};
}

// The message of the error BuildConfig returns; "" if it succeeds.
std::string Error(const Map& props) {
  absl::StatusOr<BrokerConfig> cfg = BuildConfig(props, nullptr);
  if (cfg.ok()) return "";
  EXPECT_EQ(cfg.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(cfg.status().message());
}

TEST(BuildConfigTest, DefaultsMatchKafka) {
  std::vector<std::string> warnings;
  BrokerConfig cfg = Build({}, &warnings);
  EXPECT_TRUE(warnings.empty());
  EXPECT_EQ(cfg.node_id, 1);
  EXPECT_THAT(Eps(cfg.listeners), ElementsAre("PLAINTEXT://:9092"));
  EXPECT_THAT(Eps(cfg.advertised_listeners), ElementsAre("PLAINTEXT://" + HostName() + ":9092"));
  EXPECT_EQ(cfg.listener_security_protocol_map, (Map{{"PLAINTEXT", "PLAINTEXT"},
                                                     {"SSL", "SSL"},
                                                     {"SASL_PLAINTEXT", "SASL_PLAINTEXT"},
                                                     {"SASL_SSL", "SASL_SSL"}}));
  EXPECT_THAT(cfg.log_dirs, ElementsAre("/tmp/kafka-logs"));
  EXPECT_EQ(cfg.num_partitions, 1);
  EXPECT_EQ(cfg.default_replication_factor, 1);
  EXPECT_TRUE(cfg.auto_create_topics_enable);
  EXPECT_TRUE(cfg.delete_topic_enable);
  EXPECT_EQ(cfg.log_defaults.segment_bytes, 1073741824);
  EXPECT_EQ(cfg.log_defaults.index_interval_bytes, 4096);
  EXPECT_EQ(cfg.log_defaults.segment_index_bytes, 10485760);
  EXPECT_EQ(cfg.log_defaults.segment_ms, 7 * 24 * 3600 * 1000LL);
  EXPECT_EQ(cfg.log_defaults.retention_ms, 7 * 24 * 3600 * 1000LL);
  EXPECT_EQ(cfg.log_defaults.retention_bytes, storage::kNoLimit);
  EXPECT_TRUE(cfg.log_defaults.delete_policy);
  EXPECT_FALSE(cfg.log_defaults.compact_policy);
  EXPECT_EQ(cfg.log_defaults.flush_messages, storage::kNoLimit);
  EXPECT_EQ(cfg.log_defaults.flush_ms, storage::kNoLimit);
  EXPECT_FALSE(cfg.log_fsync_before_ack);
  EXPECT_EQ(cfg.message_max_bytes, 1048588);
  EXPECT_EQ(cfg.socket_request_max_bytes, 104857600);
  EXPECT_EQ(cfg.cluster_id, "");
  EXPECT_TRUE(cfg.properties.empty());
}

// The keys of Kafka's shipped KRaft config/server.properties.
TEST(BuildConfigTest, KafkaShippedServerPropertiesAreKnown) {
  Map props = {
      {"process.roles", "broker,controller"},
      {"node.id", "1"},
      {"controller.quorum.bootstrap.servers", "localhost:9093"},
      {"controller.quorum.voters", "1@localhost:9093"},
      {"listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"},
      {"inter.broker.listener.name", "PLAINTEXT"},
      {"advertised.listeners", "PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093"},
      {"controller.listener.names", "CONTROLLER"},
      {"listener.security.protocol.map",
       "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:"
       "SASL_SSL"},
      {"num.network.threads", "3"},
      {"num.io.threads", "8"},
      {"socket.send.buffer.bytes", "102400"},
      {"socket.receive.buffer.bytes", "102400"},
      {"socket.request.max.bytes", "104857600"},
      {"log.dirs", "/tmp/kraft-combined-logs"},
      {"num.partitions", "1"},
      {"num.recovery.threads.per.data.dir", "1"},
      {"offsets.topic.replication.factor", "1"},
      {"share.coordinator.state.topic.replication.factor", "1"},
      {"share.coordinator.state.topic.min.isr", "1"},
      {"transaction.state.log.replication.factor", "1"},
      {"transaction.state.log.min.isr", "1"},
      {"log.retention.hours", "168"},
      {"log.segment.bytes", "1073741824"},
      {"log.retention.check.interval.ms", "300000"},
      {"group.initial.rebalance.delay.ms", "0"},
      {"broker.id", "1"},
      {"zookeeper.connect", "localhost:2181"},
      {"zookeeper.connection.timeout.ms", "18000"},
      {"log.flush.interval.messages", "10000"},
      {"log.flush.interval.ms", "1000"},
      {"log.retention.bytes", "1073741824"},
      {"log.retention.ms", "604800000"},
      {"log.retention.minutes", "10080"},
      {"compression.type", "producer"},
      {"min.insync.replicas", "1"},
  };
  std::vector<std::string> warnings;
  BrokerConfig cfg = Build(props, &warnings);
  EXPECT_TRUE(warnings.empty()) << warnings.front();
  // The controller listener is neither bound nor advertised.
  EXPECT_THAT(Eps(cfg.listeners), ElementsAre("PLAINTEXT://:9092"));
  EXPECT_THAT(Eps(cfg.advertised_listeners), ElementsAre("PLAINTEXT://localhost:9092"));
  EXPECT_EQ(cfg.listener_security_protocol_map.at("CONTROLLER"), "PLAINTEXT");
  EXPECT_THAT(cfg.log_dirs, ElementsAre("/tmp/kraft-combined-logs"));
  EXPECT_EQ(cfg.properties, props);
  // What the startup log names as ignored: known, accepted, and without effect here.
  EXPECT_THAT(
      cfg.keys_without_effect,
      ElementsAre("controller.quorum.bootstrap.servers", "controller.quorum.voters",
                  "num.io.threads", "num.network.threads", "num.recovery.threads.per.data.dir",
                  "offsets.topic.replication.factor", "share.coordinator.state.topic.min.isr",
                  "share.coordinator.state.topic.replication.factor", "socket.receive.buffer.bytes",
                  "socket.send.buffer.bytes", "transaction.state.log.min.isr",
                  "transaction.state.log.replication.factor", "zookeeper.connect",
                  "zookeeper.connection.timeout.ms"));
}

TEST(BuildConfigTest, ReadsEveryField) {
  BrokerConfig cfg = Build({{"node.id", "7"},
                            {"num.partitions", " 12 "},
                            {"default.replication.factor", "+3"},
                            {"auto.create.topics.enable", "  FALSE "},
                            {"delete.topic.enable", "False"},
                            {"log.segment.bytes", "1048576"},
                            {"log.index.interval.bytes", "0"},
                            {"log.index.size.max.bytes", "4"},
                            {"message.max.bytes", "0"},
                            {"socket.request.max.bytes", "2147483647"},
                            {"log.dirs", " /data/a , /data/b,/data/c "}});
  EXPECT_EQ(cfg.node_id, 7);
  EXPECT_EQ(cfg.num_partitions, 12);
  EXPECT_EQ(cfg.default_replication_factor, 3);
  EXPECT_FALSE(cfg.auto_create_topics_enable);
  EXPECT_FALSE(cfg.delete_topic_enable);
  EXPECT_EQ(cfg.log_defaults.segment_bytes, 1048576);
  EXPECT_EQ(cfg.log_defaults.index_interval_bytes, 0);
  EXPECT_EQ(cfg.log_defaults.segment_index_bytes, 4);
  EXPECT_EQ(cfg.message_max_bytes, 0);
  EXPECT_EQ(cfg.socket_request_max_bytes, 2147483647);
  EXPECT_THAT(cfg.log_dirs, ElementsAre("/data/a", "/data/b", "/data/c"));
}

TEST(BuildConfigTest, MalformedValuesNameTheKey) {
  EXPECT_EQ(Error({{"num.partitions", "abc"}}),
            "Invalid value abc for configuration num.partitions: Not a number of type INT");
  EXPECT_EQ(Error({{"num.partitions", ""}}),
            "Invalid value  for configuration num.partitions: Not a number of type INT");
  EXPECT_EQ(Error({{"num.partitions", "1.5"}}),
            "Invalid value 1.5 for configuration num.partitions: Not a number of type INT");
  EXPECT_EQ(Error({{"message.max.bytes", "2147483648"}}),
            "Invalid value 2147483648 for configuration message.max.bytes: Not a number of type "
            "INT");
  EXPECT_EQ(Error({{"offsets.topic.replication.factor", "40000"}}),
            "Invalid value 40000 for configuration offsets.topic.replication.factor: Not a number "
            "of type SHORT");
  EXPECT_EQ(Error({{"log.retention.ms", "1e9"}}),
            "Invalid value 1e9 for configuration log.retention.ms: Not a number of type LONG");
  EXPECT_EQ(Error({{"delete.topic.enable", "yes"}}),
            "Invalid value yes for configuration delete.topic.enable: Expected value to be either "
            "true or false");
  EXPECT_EQ(Error({{"compression.type", "brotli"}}),
            "Invalid value brotli for configuration compression.type: String must be one of: "
            "uncompressed, zstd, lz4, snappy, gzip, producer");
  EXPECT_EQ(Error({{"process.roles", "broker,observer"}}),
            "Invalid value observer for configuration process.roles: String must be one of: "
            "broker, controller");
  EXPECT_EQ(Error({{"default.replication.factor", "40000"}}),
            "Invalid value 40000 for configuration default.replication.factor: Not a number of "
            "type SHORT");
}

TEST(BuildConfigTest, LogSettingsTakeKafkasUnitsAndPrecedence) {
  BrokerConfig cfg = Build({{"log.retention.hours", "1"},
                            {"log.retention.minutes", "2"},
                            {"log.roll.hours", "3"},
                            {"log.retention.bytes", "1000"},
                            {"log.cleanup.policy", "compact, delete"},
                            {"log.cleaner.min.cleanable.ratio", "0.25"},
                            {"log.flush.interval.messages", "10"},
                            {"log.flush.scheduler.interval.ms", "500"},
                            {"log.fsync.before.ack", "true"}});
  EXPECT_EQ(cfg.log_defaults.retention_ms, 2 * 60 * 1000);  // minutes beat hours
  EXPECT_EQ(cfg.log_defaults.segment_ms, 3 * 3600 * 1000);
  EXPECT_EQ(cfg.log_defaults.retention_bytes, 1000);
  EXPECT_TRUE(cfg.log_defaults.compact_policy);
  EXPECT_TRUE(cfg.log_defaults.delete_policy);
  EXPECT_EQ(cfg.log_defaults.min_cleanable_dirty_ratio, 0.25);
  EXPECT_EQ(cfg.log_defaults.flush_messages, 10);
  EXPECT_EQ(cfg.log_defaults.flush_ms, 500);  // log.flush.interval.ms falls back to it
  EXPECT_TRUE(cfg.log_fsync_before_ack);

  cfg = Build({{"log.retention.ms", "-1"}, {"log.retention.hours", "1"}, {"log.roll.ms", "9"}});
  EXPECT_EQ(cfg.log_defaults.retention_ms, storage::kNoLimit);  // ms wins; -1 is no limit
  EXPECT_EQ(cfg.log_defaults.segment_ms, 9);
  EXPECT_EQ(Error({{"log.cleaner.min.cleanable.ratio", "1.5"}}),
            "Invalid value 1.5 for configuration log.cleaner.min.cleanable.ratio: Value must be "
            "no more than 1");
  EXPECT_EQ(Error({{"log.cleanup.policy", "compact,shred"}}),
            "Invalid value shred for configuration log.cleanup.policy: String must be one of: "
            "compact, delete");
}

TEST(BuildConfigTest, RangesAsKafkaDeclaresThem) {
  EXPECT_EQ(Error({{"num.partitions", "0"}}),
            "Invalid value 0 for configuration num.partitions: Value must be at least 1");
  EXPECT_EQ(Error({{"message.max.bytes", "-1"}}),
            "Invalid value -1 for configuration message.max.bytes: Value must be at least 0");
  EXPECT_EQ(Error({{"log.segment.bytes", "1048575"}}),
            "Invalid value 1048575 for configuration log.segment.bytes: Value must be at least "
            "1048576");
  EXPECT_EQ(Error({{"log.index.size.max.bytes", "3"}}),
            "Invalid value 3 for configuration log.index.size.max.bytes: Value must be at least 4");
  EXPECT_EQ(
      Error({{"log.index.interval.bytes", "-1"}}),
      "Invalid value -1 for configuration log.index.interval.bytes: Value must be at least 0");
  EXPECT_EQ(Error({{"socket.request.max.bytes", "0"}}),
            "Invalid value 0 for configuration socket.request.max.bytes: Value must be at least 1");
  EXPECT_EQ(Error({{"num.io.threads", "0"}}),
            "Invalid value 0 for configuration num.io.threads: Value must be at least 1");
  EXPECT_EQ(Error({{"node.id", "-1"}}),
            "Invalid value -1 for configuration node.id: Value must be at least 0");
}

TEST(BuildConfigTest, UnknownKeyWarnsButSucceeds) {
  std::vector<std::string> warnings;
  BrokerConfig cfg = Build({{"foo.bar", "1"}, {"num.partitions", "2"}, {"zzz", ""}}, &warnings);
  EXPECT_THAT(warnings, ElementsAre("The configuration 'foo.bar' was supplied but isn't a known "
                                    "config.",
                                    "The configuration 'zzz' was supplied but isn't a known "
                                    "config."));
  EXPECT_EQ(cfg.num_partitions, 2);
  EXPECT_EQ(cfg.properties.at("foo.bar"), "1");
  // A null warnings pointer is allowed.
  EXPECT_TRUE(BuildConfig({{"foo.bar", "1"}}, nullptr).ok());
}

TEST(BuildConfigTest, BrokerIdIsNodeIdsOldName) {
  EXPECT_EQ(Build({{"broker.id", "5"}}).node_id, 5);
  EXPECT_EQ(Build({{"broker.id", "5"}, {"node.id", "5"}}).node_id, 5);
  EXPECT_EQ(Error({{"broker.id", "5"}, {"node.id", "6"}}),
            "You must set `node.id` to the same value as `broker.id`.");
  EXPECT_EQ(Error({{"broker.id", "-1"}}),
            "Invalid value -1 for configuration node.id: Value must be at least 0");
}

TEST(BuildConfigTest, LogDirs) {
  EXPECT_THAT(Build({{"log.dir", "/one"}}).log_dirs, ElementsAre("/one"));
  EXPECT_THAT(Build({{"log.dir", "/one"}, {"log.dirs", "/two,/three"}}).log_dirs,
              ElementsAre("/two", "/three"));
  EXPECT_EQ(Error({{"log.dirs", "  "}}),
            "Configuration 'log.dirs' must not be empty. Valid values include: any non-empty "
            "value");
  EXPECT_EQ(Error({{"log.dirs", "/a,/b,/a"}}),
            "Configuration 'log.dirs' values must not be duplicated.");
  EXPECT_EQ(Error({{"log.dir", "/a,,/b"}}), "Configuration 'log.dir' values must not be empty.");
}

TEST(ListenersTest, Ipv4Ipv6AndNames) {
  BrokerConfig cfg =
      Build({{"listeners", "plaintext://127.0.0.1:9092, EXTERNAL://[::1]:9093"},
             {"listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,external:ssl"}});
  EXPECT_THAT(Eps(cfg.listeners), ElementsAre("PLAINTEXT://127.0.0.1:9092", "EXTERNAL://::1:9093"));
  EXPECT_EQ(Eps(cfg.advertised_listeners), Eps(cfg.listeners));
  EXPECT_EQ(cfg.listener_security_protocol_map,
            (Map{{"PLAINTEXT", "PLAINTEXT"}, {"EXTERNAL", "SSL"}}));
}

TEST(ListenersTest, HostForms) {
  EXPECT_THAT(Eps(Build({{"listeners", "PLAINTEXT://::1:9092"}}).listeners),
              ElementsAre("PLAINTEXT://::1:9092"));
  EXPECT_THAT(Eps(Build({{"listeners", "PLAINTEXT://[fe80::1%eth0]:9092"}}).listeners),
              ElementsAre("PLAINTEXT://fe80::1%eth0:9092"));
  EXPECT_THAT(Eps(Build({{"listeners", "PLAINTEXT://my-host_1.example.com:19092"}}).listeners),
              ElementsAre("PLAINTEXT://my-host_1.example.com:19092"));
  EXPECT_THAT(Eps(Build({{"listeners", "PLAINTEXT://:65535"}}).listeners),
              ElementsAre("PLAINTEXT://:65535"));
}

TEST(ListenersTest, EmptyHostAdvertisesHostName) {
  BrokerConfig cfg = Build({{"listeners", "PLAINTEXT://:9092,SSL://localhost:9093"}});
  EXPECT_THAT(Eps(cfg.listeners), ElementsAre("PLAINTEXT://:9092", "SSL://localhost:9093"));
  EXPECT_THAT(Eps(cfg.advertised_listeners),
              ElementsAre("PLAINTEXT://" + HostName() + ":9092", "SSL://localhost:9093"));
}

TEST(ListenersTest, PortZeroIsEphemeralAndMayRepeat) {
  BrokerConfig cfg = Build({{"listeners", "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0"}});
  EXPECT_THAT(Eps(cfg.listeners), ElementsAre("PLAINTEXT://127.0.0.1:0", "SSL://127.0.0.1:0"));
}

TEST(ListenersTest, AdvertisedListenersOverride) {
  BrokerConfig cfg = Build({{"listeners", "PLAINTEXT://0.0.0.0:9092"},
                            {"advertised.listeners", "PLAINTEXT://broker1.example.com:19092"}});
  EXPECT_THAT(Eps(cfg.listeners), ElementsAre("PLAINTEXT://0.0.0.0:9092"));
  EXPECT_THAT(Eps(cfg.advertised_listeners), ElementsAre("PLAINTEXT://broker1.example.com:19092"));
  // Advertised listeners may share a port.
  cfg = Build({{"listeners", "A://:9092,B://:9093"},
               {"listener.security.protocol.map", "A:PLAINTEXT,B:PLAINTEXT"},
               {"advertised.listeners", "A://lb:9092,B://lb:9092"}});
  EXPECT_THAT(Eps(cfg.advertised_listeners), ElementsAre("A://lb:9092", "B://lb:9092"));
}

TEST(ListenersTest, WildcardAddressIsNotAdvertised) {
  const std::string kMessage =
      "advertised.listeners cannot use the nonroutable meta-address 0.0.0.0. Use a routable IP "
      "address.";
  EXPECT_EQ(Error({{"listeners", "PLAINTEXT://0.0.0.0:9092"}}), kMessage);
  EXPECT_EQ(Error({{"advertised.listeners", "PLAINTEXT://0.0.0.0:9092"}}), kMessage);
}

TEST(ListenersTest, Unparsable) {
  EXPECT_EQ(Error({{"listeners", "PLAINTEXT://localhost"}}),
            "Invalid value PLAINTEXT://localhost for configuration listeners: Unable to parse "
            "PLAINTEXT://localhost to a broker endpoint");
  EXPECT_EQ(Error({{"listeners", "localhost:9092"}}),
            "Invalid value localhost:9092 for configuration listeners: Unable to parse "
            "localhost:9092 to a broker endpoint");
  EXPECT_EQ(Error({{"listeners", "PLAINTEXT://host/x:9092"}}),
            "Invalid value PLAINTEXT://host/x:9092 for configuration listeners: Unable to parse "
            "PLAINTEXT://host/x:9092 to a broker endpoint");
  EXPECT_EQ(Error({{"listeners", "PLAINTEXT://:port"}}),
            "Invalid value PLAINTEXT://:port for configuration listeners: Unable to parse "
            "PLAINTEXT://:port to a broker endpoint");
  EXPECT_EQ(Error({{"advertised.listeners", "PLAINTEXT://x"}}),
            "Invalid value PLAINTEXT://x for configuration advertised.listeners: Unable to parse "
            "PLAINTEXT://x to a broker endpoint");
}

TEST(ListenersTest, PortRange) {
  EXPECT_EQ(Error({{"listeners", "PLAINTEXT://:65536"}}),
            "Invalid value PLAINTEXT://:65536 for configuration listeners: port out of range: "
            "65536");
  EXPECT_EQ(Error({{"listeners", "PLAINTEXT://:-1"}}),
            "Invalid value PLAINTEXT://:-1 for configuration listeners: port out of range: -1");
}

TEST(ListenersTest, NamesNeedASecurityProtocol) {
  EXPECT_EQ(Error({{"listeners", "PLAINTEXT://:9092,EXTERNAL://:9093"}}),
            "Invalid value PLAINTEXT://:9092,EXTERNAL://:9093 for configuration listeners: No "
            "security protocol defined for listener EXTERNAL");
  EXPECT_EQ(Error({{"listener.security.protocol.map", "PLAINTEXT:TLS"}}),
            "Invalid security protocol `TLS` defined in listener.security.protocol.map");
  EXPECT_THAT(Error({{"listener.security.protocol.map", "PLAINTEXT"}}),
              StartsWith("Error parsing configuration property 'listener.security.protocol.map'"));
}

TEST(ListenersTest, NamesAndPortsMustBeDistinct) {
  EXPECT_EQ(Error({{"listeners", "PLAINTEXT://:9092,plaintext://:9093"}}),
            "Invalid value PLAINTEXT://:9092,plaintext://:9093 for configuration listeners: Each "
            "listener must have a different name, listeners: PLAINTEXT://:9092,plaintext://:9093");
  EXPECT_EQ(Error({{"listeners", "PLAINTEXT://:9092,SSL://localhost:9092"}}),
            "Invalid value PLAINTEXT://:9092,SSL://localhost:9092 for configuration listeners: "
            "Each listener must have a different port, listeners: "
            "PLAINTEXT://:9092,SSL://localhost:9092");
  // One IPv4 and one IPv6 address may share a port.
  EXPECT_THAT(Eps(Build({{"listeners", "PLAINTEXT://127.0.0.1:9092,SSL://[::1]:9092"}}).listeners),
              ElementsAre("PLAINTEXT://127.0.0.1:9092", "SSL://::1:9092"));
  EXPECT_THAT(Error({{"listeners", "PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.2:9092"}}),
              HasSubstr("If you have two listeners on the same port then one needs to be IPv4 and "
                        "the other IPv6"));
  EXPECT_THAT(Error({{"listeners", "PLAINTEXT://127.0.0.1:9092,SSL://:9092"}}),
              HasSubstr("Each listener must have a different port unless exactly one listener "
                        "has an IPv4 address and the other IPv6 address"));
}

TEST(ListenersTest, AdvertisedMustBeASubsetOfListeners) {
  EXPECT_EQ(Error({{"advertised.listeners", "SSL://host:9093"}}),
            "advertised.listeners listener names must be equal to or a subset of the ones defined "
            "in listeners. Found SSL. The valid options based on the current configuration are "
            "PLAINTEXT");
}

TEST(ListenersTest, NeedsABrokerListener) {
  EXPECT_EQ(Error({{"listeners", ""}}), "There must be at least one broker advertised listener.");
  EXPECT_EQ(Error({{"listeners", "CONTROLLER://:9093"},
                   {"controller.listener.names", "CONTROLLER"},
                   {"process.roles", "broker,controller"}}),
            "There must be at least one broker advertised listener. Perhaps all listeners appear "
            "in controller.listener.names?");
}

TEST(ListenersTest, ControllerListenersDefaultToPlaintext) {
  BrokerConfig cfg = Build({{"listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"},
                            {"controller.listener.names", "CONTROLLER"}});
  EXPECT_EQ(cfg.listener_security_protocol_map.at("CONTROLLER"), "PLAINTEXT");
  EXPECT_THAT(Eps(cfg.listeners), ElementsAre("PLAINTEXT://:9092"));
  // Not when SSL is in use, nor when the map is given.
  EXPECT_THAT(Error({{"listeners", "SSL://:9092,CONTROLLER://:9093"},
                     {"controller.listener.names", "CONTROLLER"}}),
              HasSubstr("No security protocol defined for listener CONTROLLER"));
  EXPECT_THAT(Error({{"listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"},
                     {"controller.listener.names", "CONTROLLER"},
                     {"listener.security.protocol.map", "PLAINTEXT:PLAINTEXT"}}),
              HasSubstr("No security protocol defined for listener CONTROLLER"));
}

TEST(ListenersTest, InterBrokerListenerMustBeAdvertised) {
  EXPECT_TRUE(BuildConfig({{"inter.broker.listener.name", "plaintext"}}, nullptr).ok());
  EXPECT_EQ(Error({{"inter.broker.listener.name", "INTERNAL"}}),
            "Listener with name INTERNAL defined in inter.broker.listener.name not found in "
            "listener.security.protocol.map.");
  EXPECT_EQ(Error({{"inter.broker.listener.name", "SSL"}}),
            "inter.broker.listener.name must be a listener name defined in advertised.listeners. "
            "The valid options based on currently configured listeners are PLAINTEXT");
}

TEST(CommandLineTest, FileOnly) {
  const char* argv[] = {"runnel", "config/server.properties"};
  absl::StatusOr<ParsedCommandLine> cmd = ParseCommandLine(2, argv);
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->properties_file, "config/server.properties");
  EXPECT_TRUE(cmd->overrides.empty());
}

TEST(CommandLineTest, NoArguments) {
  const char* argv[] = {"runnel"};
  absl::StatusOr<ParsedCommandLine> cmd = ParseCommandLine(1, argv);
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_FALSE(cmd->properties_file.has_value());
  EXPECT_TRUE(cmd->overrides.empty());
}

TEST(CommandLineTest, OverridesOnly) {
  const char* argv[] = {"runnel",     "--override", "node.id=2",  "--override=log.dirs=/a,/b",
                        "--override", "url=x=y",    "--override", "empty="};
  absl::StatusOr<ParsedCommandLine> cmd = ParseCommandLine(8, argv);
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_FALSE(cmd->properties_file.has_value());
  using Pair = std::pair<std::string, std::string>;
  EXPECT_THAT(cmd->overrides, ElementsAre(Pair("node.id", "2"), Pair("log.dirs", "/a,/b"),
                                          Pair("url", "x=y"), Pair("empty", "")));
}

TEST(CommandLineTest, FileAndOverrides) {
  const char* argv[] = {"runnel", "server.properties", "--override", "a=1", "--override", "a=2"};
  absl::StatusOr<ParsedCommandLine> cmd = ParseCommandLine(6, argv);
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->properties_file, "server.properties");
  using Pair = std::pair<std::string, std::string>;
  EXPECT_THAT(cmd->overrides, ElementsAre(Pair("a", "1"), Pair("a", "2")));
}

TEST(CommandLineTest, BadArguments) {
  auto error = [](std::vector<const char*> args) -> std::string {
    args.insert(args.begin(), "runnel");
    absl::StatusOr<ParsedCommandLine> cmd =
        ParseCommandLine(static_cast<int>(args.size()), args.data());
    if (cmd.ok()) return "";
    EXPECT_EQ(cmd.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(cmd.status().message());
  };
  const std::string kUsage = "\nUSAGE: runnel [server.properties] [--override property=value]*";
  EXPECT_EQ(error({"--override", "node.id"}),
            "Invalid override 'node.id': expected property=value" + kUsage);
  EXPECT_EQ(error({"--override", "=1"}), "Invalid override '=1': expected property=value" + kUsage);
  EXPECT_EQ(error({"f.properties", "--override"}), "Option override requires an argument" + kUsage);
  EXPECT_EQ(error({"--overide", "a=1"}), "--overide is not a recognized option" + kUsage);
  EXPECT_EQ(error({"-x"}), "-x is not a recognized option" + kUsage);
  EXPECT_EQ(error({"a.properties", "b.properties"}),
            "Found non argument parameters: b.properties" + kUsage);
  EXPECT_THAT(error({"--help"}), HasSubstr(kUsage));
}

class LoadConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/config_test_server.properties";
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fputs(
        "# test broker\n"
        "node.id=4\n"
        "num.partitions=3\n"
        "listeners=PLAINTEXT://127.0.0.1:9092\n"
        "log.dirs=/var/lib/runnel\n"
        "custom.key=value\n",
        f);
    std::fclose(f);
  }
  void TearDown() override { std::remove(path_.c_str()); }

  std::string path_;
};

TEST_F(LoadConfigTest, FileOnly) {
  std::vector<std::string> warnings;
  absl::StatusOr<BrokerConfig> cfg = LoadConfig({path_, {}}, &warnings);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->node_id, 4);
  EXPECT_EQ(cfg->num_partitions, 3);
  EXPECT_THAT(Eps(cfg->advertised_listeners), ElementsAre("PLAINTEXT://127.0.0.1:9092"));
  EXPECT_THAT(cfg->log_dirs, ElementsAre("/var/lib/runnel"));
  EXPECT_THAT(warnings, ElementsAre(HasSubstr("'custom.key'")));
}

TEST_F(LoadConfigTest, OverridesWinOverTheFileAndEachOther) {
  absl::StatusOr<BrokerConfig> cfg = LoadConfig(
      {path_, {{"num.partitions", "5"}, {"num.partitions", "6"}, {"message.max.bytes", "100"}}},
      nullptr);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->num_partitions, 6);
  EXPECT_EQ(cfg->message_max_bytes, 100);
  EXPECT_EQ(cfg->node_id, 4);
  EXPECT_EQ(cfg->properties.at("num.partitions"), "6");
  EXPECT_EQ(cfg->properties.at("custom.key"), "value");
}

TEST_F(LoadConfigTest, OverridesOnly) {
  absl::StatusOr<BrokerConfig> cfg =
      LoadConfig({std::nullopt, {{"listeners", "PLAINTEXT://localhost:0"}}}, nullptr);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_THAT(Eps(cfg->listeners), ElementsAre("PLAINTEXT://localhost:0"));
  EXPECT_EQ(cfg->properties, (Map{{"listeners", "PLAINTEXT://localhost:0"}}));
}

TEST_F(LoadConfigTest, BadOverrideValueNamesTheKey) {
  absl::StatusOr<BrokerConfig> cfg = LoadConfig({path_, {{"num.partitions", "many"}}}, nullptr);
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message(),
            "Invalid value many for configuration num.partitions: Not a number of type INT");
}

TEST_F(LoadConfigTest, MissingFile) {
  absl::StatusOr<BrokerConfig> cfg = LoadConfig({path_ + ".missing", {}}, nullptr);
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(cfg.status().message(), HasSubstr(path_ + ".missing"));
}

}  // namespace
}  // namespace runnel::broker
