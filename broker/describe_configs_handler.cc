// DescribeConfigs (key 32): the configs of topics and of this broker, with their sources
// and synonyms (config_catalog.h), as Kafka's ConfigHelper answers:
//   TOPIC: every topic config; UNKNOWN_TOPIC_OR_PARTITION (no message) if the topic does
//     not exist, INVALID_TOPIC_EXCEPTION for an invalid name.
//   BROKER "<node.id>": every broker config; "": the cluster-wide dynamic defaults only;
//     any other id, or a name that is not a number, INVALID_REQUEST.
//   BROKER_LOGGER: Runnel has no log4j loggers, so this broker answers an empty list;
//     another id or "" is INVALID_REQUEST as in Kafka.
// configuration_keys (null or empty: all) filters; documentation is always null.
#include "broker/broker.h"
#include "broker/config_catalog.h"
#include "broker/dynamic_config.h"
#include "broker/handlers.h"
#include "protocol/messages/describe_configs_request.h"
#include "protocol/messages/describe_configs_response.h"

namespace runnel::broker {
namespace {

using protocol::DescribeConfigsRequest;
using protocol::DescribeConfigsResponse;
using protocol::ErrorCode;

struct Outcome {
  ErrorCode error = ErrorCode::kNone;
  std::optional<std::string> message;
  std::vector<ConfigEntry> entries;
};

Outcome Describe(Broker& broker, const DescribeConfigsRequest::DescribeConfigsResource& resource) {
  const std::string& name = resource.resource_name;
  int32_t node_id = broker.config().node_id;
  switch (resource.resource_type) {
    case kResourceTopic: {
      if (std::string why = Broker::TopicNameError(name); !why.empty()) {
        return {ErrorCode::kInvalidTopicException, why, {}};
      }
      const storage::TopicMetadata* topic = broker.logs().FindTopic(name);
      if (topic == nullptr) return {ErrorCode::kUnknownTopicOrPartition, std::nullopt, {}};
      return {ErrorCode::kNone, std::nullopt,
              DescribeTopicConfigs(broker.config_layers(), topic->configs)};
    }
    case kResourceBroker: {
      if (name.empty()) {
        return {ErrorCode::kNone, std::nullopt,
                DescribeBrokerConfigs(broker.config_layers(), /*per_broker=*/false)};
      }
      std::optional<int32_t> id = ParseBrokerId(name);
      if (!id) {
        return {ErrorCode::kInvalidRequest, "Broker id must be an integer, but it is: " + name, {}};
      }
      if (*id != node_id) {
        return {ErrorCode::kInvalidRequest,
                absl::StrCat("Unexpected broker id, expected ", node_id,
                             " or empty string, but received ", name),
                {}};
      }
      return {ErrorCode::kNone, std::nullopt,
              DescribeBrokerConfigs(broker.config_layers(), /*per_broker=*/true)};
    }
    case kResourceBrokerLogger: {
      if (name.empty()) return {ErrorCode::kInvalidRequest, "Broker id must not be empty", {}};
      std::optional<int32_t> id = ParseBrokerId(name);
      if (!id) {
        return {ErrorCode::kInvalidRequest, "Broker id must be an integer, but it is: " + name, {}};
      }
      if (*id != node_id) {
        return {ErrorCode::kInvalidRequest,
                absl::StrCat("Unexpected broker id, expected ", node_id, " but received ", name),
                {}};
      }
      return {};
    }
    default:
      return {ErrorCode::kInvalidRequest,
              absl::StrCat("Unsupported resource type: ", resource.resource_type),
              {}};
  }
}

bool Wanted(const DescribeConfigsRequest::DescribeConfigsResource& resource,
            const std::string& name) {
  if (!resource.configuration_keys || resource.configuration_keys->empty()) return true;
  const auto& keys = *resource.configuration_keys;
  return std::find(keys.begin(), keys.end(), name) != keys.end();
}

}  // namespace

void HandleDescribeConfigs(RequestContext& ctx) {
  DescribeConfigsRequest request;
  if (!ctx.Decode(&request)) return;
  DescribeConfigsResponse response;
  for (const auto& resource : request.resources) {
    Outcome outcome = Describe(ctx.broker(), resource);
    auto& result = response.results.emplace_back();
    result.error_code = protocol::Code(outcome.error);
    result.error_message = outcome.message;
    result.resource_type = resource.resource_type;
    result.resource_name = resource.resource_name;
    for (ConfigEntry& e : outcome.entries) {
      if (!Wanted(resource, e.name)) continue;
      auto& config = result.configs.emplace_back();
      config.name = std::move(e.name);
      config.value = std::move(e.value);
      config.read_only = e.read_only;
      config.config_source = static_cast<int8_t>(e.source);
      config.is_sensitive = e.sensitive;
      config.config_type = static_cast<int8_t>(e.type);
      config.documentation.reset();
      if (request.include_synonyms) {
        for (ConfigSynonymEntry& s : e.synonyms) {
          config.synonyms.push_back(
              {std::move(s.name), std::move(s.value), static_cast<int8_t>(s.source)});
        }
      }
    }
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
