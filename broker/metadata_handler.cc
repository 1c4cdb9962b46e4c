// Metadata (key 3): brokers, the cluster id and controller, and topics with their
// partitions. Unknown topics are auto-created when both the broker and the request
// allow it. __consumer_offsets (owned by the group coordinator, not the topic table) is
// described, as Kafka does, as an internal topic led by this node when asked for by
// name or id; it is left out of the all-topics listing and never auto-created.
#include <algorithm>

#include "broker/broker.h"
#include "broker/handlers.h"
#include "broker/topic_ids.h"
#include "protocol/errors.h"
#include "protocol/messages/metadata_request.h"
#include "protocol/messages/metadata_response.h"

namespace runnel::broker {

using protocol::ErrorCode;
using protocol::MetadataRequest;
using protocol::MetadataResponse;

namespace {

MetadataResponse::MetadataResponseTopic DescribeTopic(const storage::TopicMetadata& topic,
                                                      int32_t node_id) {
  MetadataResponse::MetadataResponseTopic t;
  t.name = topic.name;
  t.topic_id = ToUuid(topic.id);
  for (int32_t p = 0; p < topic.partitions; ++p) {
    auto& part = t.partitions.emplace_back();
    part.partition_index = p;
    part.leader_id = node_id;
    part.leader_epoch = 0;
    part.replica_nodes = {node_id};
    part.isr_nodes = {node_id};
  }
  return t;
}

// Kafka's answer for its internal topics (__consumer_offsets, __transaction_state): one
// partition per offsets.topic.num.partitions / transaction.state.log.num.partitions, all
// led by this (single) node. nullopt for other topics.
std::optional<MetadataResponse::MetadataResponseTopic> DescribeInternalTopic(
    Broker& broker, const std::optional<std::string>& name, const std::array<uint8_t, 16>& id) {
  storage::TopicMetadata topic;
  if (name == kConsumerOffsetsTopic || id == kConsumerOffsetsTopicId) {
    topic = {kConsumerOffsetsTopic,
             kConsumerOffsetsTopicId,
             broker.groups().offsets_topic_partitions(),
             {}};
  } else if (name == kTransactionStateTopic || id == kTransactionStateTopicId) {
    topic = {kTransactionStateTopic,
             kTransactionStateTopicId,
             broker.transactions().transaction_state_partitions(),
             {}};
  } else {
    return std::nullopt;
  }
  MetadataResponse::MetadataResponseTopic t = DescribeTopic(topic, broker.config().node_id);
  t.is_internal = true;
  return t;
}

MetadataResponse::MetadataResponseTopic TopicError(std::optional<std::string> name,
                                                   protocol::Uuid id, ErrorCode error) {
  MetadataResponse::MetadataResponseTopic t;
  t.name = std::move(name);
  t.topic_id = id;
  t.error_code = protocol::Code(error);
  return t;
}

}  // namespace

void HandleMetadata(RequestContext& ctx) {
  MetadataRequest request;
  if (!ctx.Decode(&request)) return;
  Broker& broker = ctx.broker();
  const BrokerConfig& config = broker.config();

  MetadataResponse response;
  response.brokers.push_back(
      {config.node_id, ctx.advertised().host, ctx.advertised().port, std::nullopt});
  response.cluster_id = broker.cluster_id();
  response.controller_id = config.node_id;

  // v0 asks for every topic with an empty list; later versions with null.
  bool all_topics = !request.topics || (ctx.api_version() == 0 && request.topics->empty());
  if (all_topics) {
    for (const storage::TopicMetadata* topic : broker.logs().Topics()) {
      response.topics.push_back(DescribeTopic(*topic, config.node_id));
    }
    return ctx.Respond(response);
  }

  bool auto_create = config.auto_create_topics_enable && request.allow_auto_topic_creation;
  for (const auto& wanted : *request.topics) {
    if (auto internal = DescribeInternalTopic(broker, wanted.name, FromUuid(wanted.topic_id))) {
      response.topics.push_back(std::move(*internal));
      continue;
    }
    if (!wanted.name) {
      const storage::TopicMetadata* topic = broker.logs().FindTopicById(FromUuid(wanted.topic_id));
      response.topics.push_back(
          topic ? DescribeTopic(*topic, config.node_id)
                : TopicError(std::nullopt, wanted.topic_id, ErrorCode::kUnknownTopicId));
      continue;
    }
    const std::string& name = *wanted.name;
    const storage::TopicMetadata* topic = broker.logs().FindTopic(name);
    if (topic == nullptr && auto_create) {
      TopicResult created = broker.CreateTopic(name, -1, -1, {}, false);
      if (created.error != ErrorCode::kNone) {
        response.topics.push_back(TopicError(name, {}, created.error));
        continue;
      }
      topic = created.topic;
    }
    response.topics.push_back(topic ? DescribeTopic(*topic, config.node_id)
                                    : TopicError(name, {}, ErrorCode::kUnknownTopicOrPartition));
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
