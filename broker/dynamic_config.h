// DynamicBrokerConfigs: the broker configs set at runtime with AlterConfigs or
// IncrementalAlterConfigs on BROKER resources, as Kafka keeps them (KIP-226): one layer
// for the cluster-wide default (resource name "") and one for this broker (resource
// name = node.id). Precedence: this broker > cluster default > static > Kafka's default
// (config_catalog.h).
//
// Persisted in the log dir as `dynamic-broker-configs.properties`, a Java .properties
// file (properties.h) whose keys are `cluster/<key>` or `broker/<key>`, replaced
// atomically (storage::WriteFileAtomically) on every change. A missing file is empty.
#ifndef RUNNEL_BROKER_DYNAMIC_CONFIG_H_
#define RUNNEL_BROKER_DYNAMIC_CONFIG_H_

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace runnel::broker {

inline constexpr char kDynamicConfigFile[] = "dynamic-broker-configs.properties";

struct DynamicBrokerConfigs {
  std::map<std::string, std::string> cluster_defaults;  // resource ""
  std::map<std::string, std::string> per_broker;        // resource "<node.id>"
};

std::string SerializeDynamicConfigs(const DynamicBrokerConfigs& configs);
absl::StatusOr<DynamicBrokerConfigs> ParseDynamicConfigs(absl::string_view text);

// Reads <dir>/kDynamicConfigFile; empty configs if it does not exist.
absl::StatusOr<DynamicBrokerConfigs> LoadDynamicConfigs(const std::filesystem::path& dir);
absl::Status SaveDynamicConfigs(const std::filesystem::path& dir,
                                const DynamicBrokerConfigs& configs);

// Config resource types (ConfigResource.Type) the config APIs use.
inline constexpr int8_t kResourceTopic = 2;
inline constexpr int8_t kResourceBroker = 4;
inline constexpr int8_t kResourceBrokerLogger = 8;

// A broker resource name as Java's Integer.parseInt reads it; nullopt if it is not one.
std::optional<int32_t> ParseBrokerId(absl::string_view name);

// AlterConfigs' check of a BROKER resource name (ConfigAdminManager): "" or this
// node's id. Returns Kafka's INVALID_REQUEST message, or "" if the name is fine.
std::string BrokerResourceNameError(absl::string_view name, int32_t node_id);

// Kafka's DynamicBrokerConfig.validateConfigs for a new layer: InvalidArgument with
// Kafka's message when a key cannot change at runtime ("Cannot update these configs
// dynamically: [k]"), only per broker ("Cannot update these configs at default cluster
// level, broker id must be specified: [k]"), or has a malformed value. Unknown keys
// pass, as in Kafka.
absl::Status ValidateDynamicBrokerConfigs(const std::map<std::string, std::string>& configs,
                                          bool per_broker);

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_DYNAMIC_CONFIG_H_
