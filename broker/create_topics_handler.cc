// CreateTopics (key 19): creates topics (or only validates, validate_only), with a
// partition count and replication factor or an explicit replica assignment. The
// response lists every config of a new topic as DescribeConfigs does (config_catalog.h).
#include <set>

#include "broker/broker.h"
#include "broker/config_catalog.h"
#include "broker/handlers.h"
#include "broker/topic_ids.h"
#include "protocol/errors.h"
#include "protocol/messages/create_topics_request.h"
#include "protocol/messages/create_topics_response.h"

namespace runnel::broker {

using protocol::CreateTopicsRequest;
using protocol::CreateTopicsResponse;
using protocol::ErrorCode;

namespace {

// The new topic's configs (v5+), as DescribeConfigs shows them.
void FillConfigs(Broker& broker, const std::map<std::string, std::string>& topic_configs,
                 CreateTopicsResponse::CreatableTopicResult* out) {
  out->configs.emplace();
  for (ConfigEntry& e : DescribeTopicConfigs(broker.config_layers(), topic_configs)) {
    out->configs->push_back(
        {e.name, e.value, e.read_only, static_cast<int8_t>(e.source), e.sensitive});
  }
}

TopicResult CreateOne(Broker& broker, const CreateTopicsRequest::CreatableTopic& topic,
                      bool validate_only) {
  int32_t partitions = topic.num_partitions;
  int16_t replication_factor = topic.replication_factor;
  if (!topic.assignments.empty()) {
    if (partitions != -1 || replication_factor != -1) {
      return {ErrorCode::kInvalidRequest,
              "Both numPartitions or replicationFactor and replicasAssignments were set. Both "
              "cannot be used at the same time."};
    }
    partitions = static_cast<int32_t>(topic.assignments.size());
    replication_factor = 1;
    for (const auto& a : topic.assignments) {
      bool valid = a.partition_index >= 0 && a.partition_index < partitions &&
                   a.broker_ids.size() == 1 && a.broker_ids[0] == broker.config().node_id;
      if (!valid) {
        return {ErrorCode::kInvalidReplicaAssignment,
                "Replica assignment for partition " + std::to_string(a.partition_index) +
                    " is invalid: only broker " + std::to_string(broker.config().node_id) +
                    " exists."};
      }
    }
  }
  std::map<std::string, std::string> configs;
  for (const auto& c : topic.configs) {
    if (c.value) configs[c.name] = *c.value;
  }
  return broker.CreateTopic(topic.name, partitions, replication_factor, configs, validate_only);
}

}  // namespace

void HandleCreateTopics(RequestContext& ctx) {
  CreateTopicsRequest request;
  if (!ctx.Decode(&request)) return;
  std::multiset<std::string> names;
  for (const auto& topic : request.topics) names.insert(topic.name);

  CreateTopicsResponse response;
  for (const auto& topic : request.topics) {
    auto& out = response.topics.emplace_back();
    out.name = topic.name;
    TopicResult result;
    if (names.count(topic.name) > 1) {
      result = {ErrorCode::kInvalidRequest, "Duplicate topic name."};
    } else {
      result = CreateOne(ctx.broker(), topic, request.validate_only);
    }
    out.error_code = protocol::Code(result.error);
    if (result.error != ErrorCode::kNone) {
      out.error_message = result.message;
      out.configs.reset();
      continue;
    }
    out.error_message.reset();
    if (result.topic != nullptr) {
      out.topic_id = ToUuid(result.topic->id);
      out.num_partitions = result.topic->partitions;
      out.replication_factor = 1;
      FillConfigs(ctx.broker(), result.topic->configs, &out);
    } else {  // validate_only
      out.num_partitions =
          topic.num_partitions == -1 ? ctx.broker().config().num_partitions : topic.num_partitions;
      out.replication_factor = 1;
      std::map<std::string, std::string> configs;
      for (const auto& c : topic.configs) {
        if (c.value) configs[c.name] = *c.value;
      }
      FillConfigs(ctx.broker(), configs, &out);
    }
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
