// AlterConfigs (key 33), the legacy API: replaces the whole config of each resource.
//   TOPIC: the topic's configs (Broker::SetTopicConfigs).
//   BROKER "": the cluster-wide dynamic defaults; "<node.id>": this broker's dynamic
//     configs (Broker::SetDynamicBrokerConfigs); only Kafka's dynamic keys.
// As Kafka's ConfigAdminManager: a resource named twice, a key named twice or a null
// value fail that resource with INVALID_REQUEST; other resource types too.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "broker/alter_resources.h"
#include "broker/broker.h"
#include "broker/dynamic_config.h"
#include "broker/handlers.h"
#include "protocol/messages/alter_configs_request.h"
#include "protocol/messages/alter_configs_response.h"

namespace runnel::broker {
namespace {

using protocol::AlterConfigsRequest;
using protocol::AlterConfigsResponse;
using protocol::ErrorCode;

TopicResult AlterOne(Broker& broker, const AlterConfigsRequest::AlterConfigsResource& resource,
                     bool validate_only) {
  std::map<std::string, std::string> configs;
  std::vector<std::string> nulls;
  for (const auto& c : resource.configs) {
    if (configs.count(c.name) > 0) {
      return {ErrorCode::kInvalidRequest, "Error due to duplicate config keys"};
    }
    configs[c.name] = c.value.value_or("");
    if (!c.value) nulls.push_back(c.name);
  }
  if (!nulls.empty()) {
    return {ErrorCode::kInvalidRequest,
            "Null value not supported for : " + absl::StrJoin(nulls, ", ")};
  }
  switch (resource.resource_type) {
    case kResourceBroker: {
      std::string why = BrokerResourceNameError(resource.resource_name, broker.config().node_id);
      if (!why.empty()) return {ErrorCode::kInvalidRequest, why};
      return broker.SetDynamicBrokerConfigs(!resource.resource_name.empty(), std::move(configs),
                                            validate_only);
    }
    case kResourceTopic:
      return broker.SetTopicConfigs(resource.resource_name, configs, validate_only);
    default:
      return {ErrorCode::kInvalidRequest,
              absl::StrCat("Unknown resource type ", resource.resource_type)};
  }
}

}  // namespace

void HandleAlterConfigs(RequestContext& ctx) {
  AlterConfigsRequest request;
  if (!ctx.Decode(&request)) return;
  ctx.Respond(AlterEachResource<AlterConfigsResponse>(request.resources, [&](const auto& resource) {
    return AlterOne(ctx.broker(), resource, request.validate_only);
  }));
}

}  // namespace runnel::broker
