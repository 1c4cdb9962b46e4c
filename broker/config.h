// The broker's static configuration, taken as Kafka's kafka-server-start.sh takes it:
//
//   runnel [server.properties] [--override key=value]...
//
// The file is a Java .properties file (properties.h). Each override replaces the file's
// value for its key, later overrides winning. Keys and meanings are Kafka's (KafkaConfig):
// values are trimmed, parsed and range-checked as Kafka's ConfigDef declares them, and
// errors use Kafka's wording, e.g.
//   Invalid value abc for configuration num.partitions: Not a number of type INT
// Known keys that Runnel does not act on (thread counts, retention, KRaft quorum, ...) are
// still type-checked, then ignored. Unknown keys are accepted with a warning.
//
// Listeners are a comma list of NAME://host:port. NAME is upper-cased and must be in
// listener.security.protocol.map. host may be empty (all interfaces), a host name, an IPv4
// address, or an IPv6 address with or without brackets. Port 0 asks for an ephemeral port,
// which the server fills in after binding. Listeners named in controller.listener.names are
// KRaft controller listeners: Runnel has no controller, so they are validated but neither
// bound nor advertised.
#ifndef RUNNEL_BROKER_CONFIG_H_
#define RUNNEL_BROKER_CONFIG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/log_config.h"

namespace runnel::broker {

struct Endpoint {
  std::string listener_name;  // upper-cased, e.g. PLAINTEXT
  std::string host;           // empty = all interfaces; IPv6 without brackets
  uint16_t port = 0;          // 0 = ephemeral
};

struct BrokerConfig {
  int32_t node_id = 1;  // node.id, or its old name broker.id
  // listeners (default PLAINTEXT://:9092), less the controller listeners.
  std::vector<Endpoint> listeners;
  // advertised.listeners, else listeners; less the controller listeners. An empty host
  // is replaced by this machine's host name, as Kafka does.
  std::vector<Endpoint> advertised_listeners;
  // listener.security.protocol.map: upper-cased listener name -> security protocol.
  std::map<std::string, std::string> listener_security_protocol_map;
  std::vector<std::string> log_dirs;       // log.dirs, else log.dir
  int32_t num_partitions = 1;              // num.partitions
  int16_t default_replication_factor = 1;  // default.replication.factor
  bool auto_create_topics_enable = true;   // auto.create.topics.enable
  bool delete_topic_enable = true;         // delete.topic.enable
  // The topic-config defaults, from log.segment.bytes, log.index.interval.bytes,
  // log.index.size.max.bytes, log.roll.{ms,hours}, log.retention.{ms,minutes,hours,bytes},
  // log.cleanup.policy, log.cleaner.{delete.retention.ms,min.cleanable.ratio,
  // min.compaction.lag.ms,max.compaction.lag.ms}, log.flush.interval.{messages,ms}, and
  // producer.id.expiration.ms.
  storage::LogConfig log_defaults;
  // Runnel's own durability option: answer a Produce with acks=all only once its data
  // are fsynced (log.fsync.before.ack). Off by default, as Kafka leaves data in the page
  // cache and counts on replication.
  bool log_fsync_before_ack = false;
  int64_t log_retention_check_interval_ms = 300000;             // log.retention.check.interval.ms
  bool log_cleaner_enable = true;                               // log.cleaner.enable
  int64_t log_cleaner_backoff_ms = 15000;                       // log.cleaner.backoff.ms
  int64_t log_cleaner_dedupe_buffer_size = 134217728;           // log.cleaner.dedupe.buffer.size
  int64_t log_flush_scheduler_interval_ms = storage::kNoLimit;  // log.flush.scheduler.interval.ms
  int32_t log_flush_offset_checkpoint_interval_ms = 60000;
  int32_t log_flush_start_offset_checkpoint_interval_ms = 60000;
  // producer.id.expiration.check.interval.ms: how often idle producers are forgotten
  // (producer.id.expiration.ms itself is in log_defaults).
  int32_t producer_id_expiration_check_interval_ms = 600000;
  int32_t message_max_bytes = 1048588;           // message.max.bytes
  int32_t socket_request_max_bytes = 104857600;  // socket.request.max.bytes
  // cluster.id: used when the log dir has no meta.properties yet (Kafka takes it from
  // `kafka-storage format --cluster-id`); must match it otherwise. Empty = generate.
  std::string cluster_id;
  // Runnel's own keys.
  bool log_in_memory = false;                // log.in.memory: no files at all
  std::string logging_level = "INFO";        // logging.level: TRACE, DEBUG, INFO, WARN, ERROR
  std::optional<Endpoint> metrics_listener;  // metrics.listener (host:port): Prometheus over HTTP
  // Every key as given, after overrides, for logging and DescribeConfigs.
  std::map<std::string, std::string> properties;
  // The keys given that Kafka defines but that change nothing in a single Runnel broker
  // (quorum, replication factors of internal topics, thread pools, socket buffers, ...),
  // sorted: the startup log names them once.
  std::vector<std::string> keys_without_effect;
};

// ConfigDef's types, numbered as DescribeConfigs' config_type (DescribeConfigsResponse.
// ConfigType); kUnknown is a key Kafka does not define.
enum class ConfigType : int8_t {
  kUnknown = 0,
  kBoolean = 1,
  kString = 2,
  kInt = 3,
  kShort = 4,
  kLong = 5,
  kDouble = 6,
  kList = 7,
  kClass = 8,
  kPassword = 9,
};

// Whether AlterConfigs may change a broker key at runtime, and at which level (Kafka's
// DynamicBrokerConfig.ALL_DYNAMIC_CONFIGS, PER_BROKER_CONFIGS).
enum class DynamicUpdate : uint8_t {
  kReadOnly,     // static only: server.properties / --override
  kClusterWide,  // per broker, or for all brokers with resource name ""
  kPerBroker,    // only per broker (listeners, SSL)
};

// One broker key of the catalog: how it is parsed and checked, Kafka's default as
// DescribeConfigs shows it (nullptr: Kafka's null), and whether it is dynamic.
struct BrokerKey {
  absl::string_view name;
  ConfigType type;
  std::optional<int64_t> min = std::nullopt;  // ConfigDef Range.atLeast
  absl::string_view valid = {};  // allowed values, ", "-separated (ValidString, ValidList.in)
  const char* default_value = nullptr;
  DynamicUpdate dynamic = DynamicUpdate::kReadOnly;
};

// Every broker key Runnel knows, sorted by name.
std::span<const BrokerKey> BrokerKeys();
const BrokerKey* FindBrokerKey(absl::string_view name);  // nullptr if unknown
// Parses a value as its key's type and applies the key's validator; InvalidArgument with
// Kafka's ConfigException wording.
absl::Status CheckBrokerValue(const BrokerKey& key, absl::string_view value);

struct ParsedCommandLine {
  std::optional<std::string> properties_file;
  std::vector<std::pair<std::string, std::string>> overrides;  // in command-line order
};

// Parses argv (argv[0] is the program). Accepts one properties file and any number of
// `--override key=value` (or `--override=key=value`). Fails with InvalidArgument, whose
// message ends with the usage line, on an unknown option, a second file, `--help`, or an
// override that is not key=value.
absl::StatusOr<ParsedCommandLine> ParseCommandLine(int argc, const char* const* argv);

// Builds the config from properties (file contents with overrides applied). Appends one
// line to *warnings (if not null) per unknown key. A malformed or out-of-range value, or an
// inconsistent listener setup, fails with InvalidArgument naming the key.
absl::StatusOr<BrokerConfig> BuildConfig(const std::map<std::string, std::string>& properties,
                                         std::vector<std::string>* warnings);

// Reads the properties file (if any), applies the overrides in order, calls BuildConfig.
absl::StatusOr<BrokerConfig> LoadConfig(const ParsedCommandLine& cmd,
                                        std::vector<std::string>* warnings);

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_CONFIG_H_
