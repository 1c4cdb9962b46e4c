#include "broker/config_catalog.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "broker/topic_config.h"

namespace runnel::broker {
namespace {

using Map = std::map<std::string, std::string>;

std::string Trimmed(absl::string_view s) {
  while (!s.empty() && static_cast<unsigned char>(s.front()) <= ' ') s.remove_prefix(1);
  while (!s.empty() && static_cast<unsigned char>(s.back()) <= ' ') s.remove_suffix(1);
  return std::string(s);
}

const std::string* Lookup(const Map* map, absl::string_view key) {
  if (map == nullptr) return nullptr;
  auto it = map->find(std::string(key));
  return it == map->end() ? nullptr : &it->second;
}

std::optional<std::string> DefaultOf(absl::string_view key) {
  const BrokerKey* k = FindBrokerKey(key);
  if (k == nullptr || k->default_value == nullptr) return std::nullopt;
  return std::string(k->default_value);
}

// Kafka's DynamicBrokerConfig.brokerConfigSynonyms: the keys that stand for the same
// setting, highest precedence first.
std::vector<absl::string_view> BrokerSynonyms(absl::string_view name) {
  static const std::vector<std::vector<absl::string_view>> kGroups = {
      {"log.roll.ms", "log.roll.hours"},
      {"log.roll.jitter.ms", "log.roll.jitter.hours"},
      {"log.retention.ms", "log.retention.minutes", "log.retention.hours"},
  };
  for (const auto& group : kGroups) {
    if (std::find(group.begin(), group.end(), name) != group.end()) return group;
  }
  // log.flush.scheduler.interval.ms is log.flush.interval.ms' default, not the reverse.
  if (name == "log.flush.interval.ms") return {name, "log.flush.scheduler.interval.ms"};
  return {name};
}

// ConfigHelper.configSynonyms: layer by layer, synonyms in order, starting at `name`.
std::vector<ConfigSynonymEntry> LayeredSynonyms(const ConfigLayers& layers, absl::string_view name,
                                                bool sensitive) {
  std::vector<ConfigSynonymEntry> all;
  auto add_layer = [&](const Map* map, ConfigSource source) {
    for (absl::string_view s : BrokerSynonyms(name)) {
      if (const std::string* v = Lookup(map, s)) {
        all.push_back({std::string(s), sensitive ? std::nullopt : std::optional(*v), source});
      }
    }
  };
  add_layer(layers.per_broker, ConfigSource::kDynamicBroker);
  add_layer(layers.cluster_defaults, ConfigSource::kDynamicDefaultBroker);
  add_layer(layers.static_props, ConfigSource::kStaticBroker);
  for (absl::string_view s : BrokerSynonyms(name)) {
    if (std::optional<std::string> d = DefaultOf(s)) {
      all.push_back({std::string(s), sensitive ? std::nullopt : d, ConfigSource::kDefault});
    }
  }
  auto first = std::find_if(all.begin(), all.end(),
                            [&](const ConfigSynonymEntry& e) { return e.name == name; });
  return {first, all.end()};
}

// KafkaConfig.maybeSensitive: passwords, and keys of unknown type.
bool IsSensitive(ConfigType type) {
  return type == ConfigType::kUnknown || type == ConfigType::kPassword;
}

// A topic config's value from its broker synonyms, converted to the topic's unit.
std::optional<std::string> TopicDefault(const ConfigLayers& layers, const TopicKey& key) {
  for (const TopicSynonym& s : key.synonyms) {
    if (s.broker_key.empty()) break;
    std::optional<std::string> v = EffectiveBrokerValue(layers, s.broker_key);
    if (!v) continue;
    int64_t n = 0;
    if (s.to_ms != 1 && absl::SimpleAtoi(*v, &n)) return absl::StrCat(n * s.to_ms);
    return v;
  }
  if (key.default_value != nullptr) return std::string(key.default_value);
  return std::nullopt;
}

}  // namespace

std::optional<std::string> EffectiveBrokerValue(const ConfigLayers& layers, absl::string_view key) {
  for (const Map* map : {layers.per_broker, layers.cluster_defaults, layers.static_props}) {
    if (const std::string* v = Lookup(map, key)) return Trimmed(*v);
  }
  return DefaultOf(key);
}

std::vector<ConfigEntry> DescribeTopicConfigs(const ConfigLayers& layers,
                                              const Map& topic_configs) {
  std::vector<ConfigEntry> out;
  for (const TopicKey& key : TopicKeys()) {
    ConfigEntry e;
    e.name = std::string(key.name);
    e.type = key.type;
    e.sensitive = IsSensitive(key.type);
    auto own = topic_configs.find(e.name);
    e.value = own != topic_configs.end() ? std::optional(Trimmed(own->second))
                                         : TopicDefault(layers, key);
    if (e.sensitive) e.value.reset();
    if (!key.synonyms[0].broker_key.empty()) {
      e.synonyms = LayeredSynonyms(layers, key.synonyms[0].broker_key, e.sensitive);
    }
    if (own != topic_configs.end()) {
      e.synonyms.insert(e.synonyms.begin(), {e.name, e.value, ConfigSource::kTopic});
    }
    e.source = e.synonyms.empty() ? ConfigSource::kDefault : e.synonyms.front().source;
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<ConfigEntry> DescribeBrokerConfigs(const ConfigLayers& layers, bool per_broker) {
  std::set<std::string> names;
  if (per_broker) {
    for (const BrokerKey& k : BrokerKeys()) names.emplace(k.name);
    for (const Map* map : {layers.per_broker, layers.static_props}) {
      if (map == nullptr) continue;
      for (const auto& [name, value] : *map) names.insert(name);
    }
  }
  if (layers.cluster_defaults != nullptr) {
    for (const auto& [name, value] : *layers.cluster_defaults) names.insert(name);
  }
  std::vector<ConfigEntry> out;
  for (const std::string& name : names) {
    const BrokerKey* key = FindBrokerKey(name);
    ConfigEntry e;
    e.name = name;
    e.type = key != nullptr ? key->type : ConfigType::kUnknown;
    e.sensitive = IsSensitive(e.type);
    e.read_only = key == nullptr || key->dynamic == DynamicUpdate::kReadOnly;
    if (per_broker) {
      e.value = EffectiveBrokerValue(layers, name);
    } else if (const std::string* v = Lookup(layers.cluster_defaults, name)) {
      e.value = *v;
    }
    if (e.sensitive) e.value.reset();
    e.synonyms = LayeredSynonyms(layers, name, e.sensitive);
    if (!per_broker) {
      std::erase_if(e.synonyms, [](const ConfigSynonymEntry& s) {
        return s.source != ConfigSource::kDynamicDefaultBroker;
      });
    }
    e.source = e.synonyms.empty() ? ConfigSource::kDefault : e.synonyms.front().source;
    out.push_back(std::move(e));
  }
  return out;
}

Map MergedProperties(const ConfigLayers& layers) {
  Map merged;
  for (const Map* map : {layers.static_props, layers.cluster_defaults, layers.per_broker}) {
    if (map == nullptr) continue;
    for (const auto& [k, v] : *map) merged[k] = v;
  }
  return merged;
}

}  // namespace runnel::broker
