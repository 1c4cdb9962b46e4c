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
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
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
  // min.compaction.lag.ms,max.compaction.lag.ms}, log.flush.interval.{messages,ms}.
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
  int32_t message_max_bytes = 1048588;           // message.max.bytes
  int32_t socket_request_max_bytes = 104857600;  // socket.request.max.bytes
  std::string cluster_id;                        // not a broker key; empty = generate later
  // Every key as given, after overrides, for logging and DescribeConfigs.
  std::map<std::string, std::string> properties;
};

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
