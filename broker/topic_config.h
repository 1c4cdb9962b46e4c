// Topic-level configs: the catalog of Kafka's topic config names (LogConfig), their
// types, validation and broker synonyms, and how a topic's configs resolve against the
// broker's defaults into the storage engine's LogConfig.
//
// The catalog is Kafka 4.x's LogConfig, sorted by name. Each key either falls back to
// broker keys (ServerTopicConfigSynonyms, in precedence order, with a unit factor for
// log.roll.hours, log.retention.minutes, ...) or, if it has none, to its own default.
#ifndef RUNNEL_BROKER_TOPIC_CONFIG_H_
#define RUNNEL_BROKER_TOPIC_CONFIG_H_

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "broker/config.h"
#include "storage/partition_log.h"

namespace runnel::broker {

struct TopicSynonym {
  absl::string_view broker_key;
  int64_t to_ms = 1;  // the broker value times this is the topic value (hours -> ms)
};

struct TopicKey {
  absl::string_view name;
  ConfigType type;
  std::optional<int64_t> min = std::nullopt;  // Range.atLeast for INT and LONG
  absl::string_view valid = {};               // allowed values, ", "-separated
  // Broker keys it falls back to, first wins; empty for keys with no server default.
  std::array<TopicSynonym, 3> synonyms = {};
  const char* default_value = nullptr;  // only for keys without synonyms
};

// Every topic config, sorted by name.
std::span<const TopicKey> TopicKeys();
const TopicKey* FindTopicKey(absl::string_view name);  // nullptr if unknown

// InvalidArgument for an unknown name ("Unknown topic config name: x") or a malformed
// or out-of-range value, with Kafka's wording.
absl::Status ValidateTopicConfigs(const std::map<std::string, std::string>& configs);

storage::LogConfig ResolveLogConfig(const BrokerConfig& broker,
                                    const std::map<std::string, std::string>& configs);

// max.message.bytes, falling back to the broker's message.max.bytes.
int32_t ResolveMaxMessageBytes(const BrokerConfig& broker,
                               const std::map<std::string, std::string>& configs);

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_TOPIC_CONFIG_H_
