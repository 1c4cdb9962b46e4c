// The config catalog as DescribeConfigs and CreateTopics show it: every topic config
// (topic_config.h) and every broker key (config.h), each with its value, the source it
// came from, and its synonyms, computed as Kafka's ConfigHelper does.
//
// A broker key's value comes from four layers, highest precedence first:
//   DYNAMIC_BROKER_CONFIG (2)          AlterConfigs on resource "<node id>"
//   DYNAMIC_DEFAULT_BROKER_CONFIG (3)  AlterConfigs on resource "" (cluster-wide default)
//   STATIC_BROKER_CONFIG (4)           server.properties and --override
//   DEFAULT_CONFIG (5)                 Kafka's default (nothing if it is null)
// A topic config is TOPIC_CONFIG (1) if the topic sets it, else its first broker synonym
// that has a value (retention.ms: log.retention.ms, .minutes, .hours), else its default.
// Synonyms are listed layer by layer, within a layer in synonym order, and the list
// starts at the first entry named like the described key (Kafka drops what comes before,
// so a retention.ms that comes from log.retention.hours has no synonyms and shows
// DEFAULT_CONFIG).
#ifndef RUNNEL_BROKER_CONFIG_CATALOG_H_
#define RUNNEL_BROKER_CONFIG_CATALOG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/config.h"

namespace runnel::broker {

// DescribeConfigsResponse.ConfigSource.
enum class ConfigSource : int8_t {
  kUnknown = 0,
  kTopic = 1,
  kDynamicBroker = 2,
  kDynamicDefaultBroker = 3,
  kStaticBroker = 4,
  kDefault = 5,
};

// The broker's config layers (maps of key -> value as given). Pointers must outlive it.
struct ConfigLayers {
  const std::map<std::string, std::string>* static_props;
  const std::map<std::string, std::string>* cluster_defaults;
  const std::map<std::string, std::string>* per_broker;
};

struct ConfigSynonymEntry {
  std::string name;
  std::optional<std::string> value;
  ConfigSource source;
};

struct ConfigEntry {
  std::string name;
  std::optional<std::string> value;  // null when sensitive or unset
  ConfigSource source = ConfigSource::kDefault;
  ConfigType type = ConfigType::kUnknown;
  bool read_only = false;
  bool sensitive = false;
  std::vector<ConfigSynonymEntry> synonyms;
};

// The effective value of a broker key over the layers (per broker > cluster default >
// static > default); nullopt if none has one.
std::optional<std::string> EffectiveBrokerValue(const ConfigLayers& layers, absl::string_view key);

// Every topic config of a topic whose own configs are `topic_configs`, sorted by name.
std::vector<ConfigEntry> DescribeTopicConfigs(
    const ConfigLayers& layers, const std::map<std::string, std::string>& topic_configs);

// Broker configs. For this broker (per_broker): every catalog key plus any unknown key
// set in a layer (type UNKNOWN, hence sensitive as in Kafka); for the cluster default
// resource (""): only the keys set at that level, with only that level as synonym.
std::vector<ConfigEntry> DescribeBrokerConfigs(const ConfigLayers& layers, bool per_broker);

// The static properties with the dynamic layers applied: what BuildConfig should see.
std::map<std::string, std::string> MergedProperties(const ConfigLayers& layers);

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_CONFIG_CATALOG_H_
