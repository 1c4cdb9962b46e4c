// Topic-level configs: Kafka's names, validation, and how they resolve against the
// broker's defaults into the storage engine's LogConfig.
#ifndef RUNNEL_BROKER_TOPIC_CONFIG_H_
#define RUNNEL_BROKER_TOPIC_CONFIG_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "broker/config.h"
#include "storage/partition_log.h"

namespace runnel::broker {

// InvalidArgument naming the key for an unknown name or a malformed value, with
// Kafka's wording ("Unknown topic config name: x").
absl::Status ValidateTopicConfigs(const std::map<std::string, std::string>& configs);

storage::LogConfig ResolveLogConfig(const BrokerConfig& broker,
                                    const std::map<std::string, std::string>& configs);

// max.message.bytes, falling back to the broker's message.max.bytes.
int32_t ResolveMaxMessageBytes(const BrokerConfig& broker,
                               const std::map<std::string, std::string>& configs);

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_TOPIC_CONFIG_H_
