// IncrementalAlterConfigs (key 44): changes single keys of a resource's config with SET,
// DELETE, APPEND or SUBTRACT (the last two for LIST keys: comma-separated items added if
// absent / removed, starting from the default when the key is unset), then stores the
// result as AlterConfigs does (alter_configs_handler.cc). Kafka's errors: APPEND or
// SUBTRACT on a non-list key is INVALID_CONFIG, a null value for anything but DELETE,
// a duplicate key or resource, or an unknown operation is INVALID_REQUEST.
// BROKER_LOGGER (log4j levels) is not supported: Runnel has no loggers to change.
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "broker/alter_resources.h"
#include "broker/broker.h"
#include "broker/dynamic_config.h"
#include "broker/handlers.h"
#include "broker/topic_config.h"
#include "protocol/messages/incremental_alter_configs_request.h"
#include "protocol/messages/incremental_alter_configs_response.h"

namespace runnel::broker {
namespace {

using protocol::ErrorCode;
using protocol::IncrementalAlterConfigsRequest;
using protocol::IncrementalAlterConfigsResponse;
using Resource = IncrementalAlterConfigsRequest::AlterConfigsResource;
using Map = std::map<std::string, std::string>;

enum Op : int8_t { kSet = 0, kDelete = 1, kAppend = 2, kSubtract = 3 };

std::vector<std::string> Items(absl::string_view list) {
  std::vector<std::string> items;
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    if (!item.empty()) items.emplace_back(item);
  }
  return items;
}

// APPEND / SUBTRACT on the current value (or `fallback` if unset).
std::string ApplyListOp(Op op, const Map& current, const std::string& key,
                        const std::string& fallback, const std::string& operand) {
  auto it = current.find(key);
  std::vector<std::string> items = Items(it != current.end() ? it->second : fallback);
  for (absl::string_view piece : absl::StrSplit(operand, ',')) {
    std::string v(piece);
    auto pos = std::find(items.begin(), items.end(), v);
    if (op == kAppend && pos == items.end()) items.push_back(v);
    if (op == kSubtract && pos != items.end()) items.erase(pos);
  }
  return absl::StrJoin(items, ",");
}

// Applies the operations to `configs`; an error is Kafka's (code, message).
TopicResult ApplyOps(const Resource& resource, bool is_topic, Map* configs) {
  Map next = *configs;
  for (const auto& c : resource.configs) {
    Op op = static_cast<Op>(c.config_operation);
    const std::string& key = c.name;
    switch (op) {
      case kSet:
        next[key] = *c.value;
        break;
      case kDelete:
        next.erase(key);
        break;
      case kAppend:
      case kSubtract: {
        std::string fallback;
        bool is_list = false;
        if (is_topic) {
          const TopicKey* k = FindTopicKey(key);
          is_list = k != nullptr && k->type == ConfigType::kList;
          if (is_list && k->default_value != nullptr) fallback = k->default_value;
          if (is_list && !k->synonyms[0].broker_key.empty()) {
            const BrokerKey* b = FindBrokerKey(k->synonyms[0].broker_key);
            if (b != nullptr && b->default_value != nullptr) fallback = b->default_value;
          }
          if (!is_list) {
            return {ErrorCode::kInvalidConfig,
                    absl::StrCat("Can't ", op == kAppend ? "APPEND" : "SUBTRACT", " to key ", key,
                                 " because its type is not LIST.")};
          }
        } else {
          const BrokerKey* k = FindBrokerKey(key);
          if (k == nullptr) return {ErrorCode::kInvalidConfig, "Unknown config name: " + key};
          if (k->type != ConfigType::kList) {
            return {ErrorCode::kInvalidConfig,
                    absl::StrCat("Config value ", op == kAppend ? "append" : "subtract",
                                 " is not allowed for config key: ", key)};
          }
          if (k->default_value != nullptr) fallback = k->default_value;
        }
        next[key] = ApplyListOp(op, next, key, fallback, *c.value);
        break;
      }
      default:
        return {ErrorCode::kInvalidRequest,
                absl::StrCat("Unknown operations type ", c.config_operation)};
    }
  }
  *configs = std::move(next);
  return {};
}

TopicResult AlterOne(Broker& broker, const Resource& resource, bool validate_only) {
  std::set<std::string> keys;
  std::vector<std::string> nulls;
  for (const auto& c : resource.configs) {
    if (!keys.insert(c.name).second) {
      return {ErrorCode::kInvalidRequest, "Error due to duplicate config keys"};
    }
    if (c.config_operation != kDelete && !c.value) nulls.push_back(c.name);
  }
  if (!nulls.empty()) {
    return {ErrorCode::kInvalidRequest,
            "Null value not supported for : " + absl::StrJoin(nulls, ", ")};
  }
  switch (resource.resource_type) {
    case kResourceBroker: {
      std::string why = BrokerResourceNameError(resource.resource_name, broker.config().node_id);
      if (!why.empty()) return {ErrorCode::kInvalidRequest, why};
      bool per_broker = !resource.resource_name.empty();
      const DynamicBrokerConfigs& current = broker.dynamic_configs();
      Map configs = per_broker ? current.per_broker : current.cluster_defaults;
      if (TopicResult r = ApplyOps(resource, false, &configs); r.error != ErrorCode::kNone) {
        return r;
      }
      return broker.SetDynamicBrokerConfigs(per_broker, std::move(configs), validate_only);
    }
    case kResourceTopic: {
      const storage::TopicMetadata* topic = broker.logs().FindTopic(resource.resource_name);
      Map configs = topic != nullptr ? topic->configs : Map{};
      if (TopicResult r = ApplyOps(resource, true, &configs); r.error != ErrorCode::kNone) {
        return r;
      }
      return broker.SetTopicConfigs(resource.resource_name, configs, validate_only);
    }
    case kResourceBrokerLogger:
      return {ErrorCode::kInvalidRequest, "Runnel has no broker loggers to configure."};
    default:
      return {ErrorCode::kInvalidRequest,
              absl::StrCat("Unknown resource type ", resource.resource_type)};
  }
}

}  // namespace

void HandleIncrementalAlterConfigs(RequestContext& ctx) {
  IncrementalAlterConfigsRequest request;
  if (!ctx.Decode(&request)) return;
  ctx.Respond(AlterEachResource<IncrementalAlterConfigsResponse>(
      request.resources, [&](const auto& resource) {
        return AlterOne(ctx.broker(), resource, request.validate_only);
      }));
}

}  // namespace runnel::broker
