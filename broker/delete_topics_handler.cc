// DeleteTopics (key 20): deletes topics named by name or (v6+) by topic id.
#include "broker/broker.h"
#include "broker/handlers.h"
#include "broker/topic_ids.h"
#include "protocol/errors.h"
#include "protocol/messages/delete_topics_request.h"
#include "protocol/messages/delete_topics_response.h"

namespace runnel::broker {

using protocol::DeleteTopicsRequest;
using protocol::DeleteTopicsResponse;
using protocol::ErrorCode;

void HandleDeleteTopics(RequestContext& ctx) {
  DeleteTopicsRequest request;
  if (!ctx.Decode(&request)) return;
  // Before v6 topics come as names only.
  for (const std::string& name : request.topic_names) {
    request.topics.push_back({name, protocol::Uuid{}});
  }
  Broker& broker = ctx.broker();
  DeleteTopicsResponse response;
  for (const auto& wanted : request.topics) {
    auto& out = response.responses.emplace_back();
    out.name = wanted.name;
    out.topic_id = wanted.topic_id;
    const storage::TopicMetadata* topic =
        wanted.name ? broker.logs().FindTopic(*wanted.name)
                    : broker.logs().FindTopicById(FromUuid(wanted.topic_id));
    if (topic == nullptr) {
      out.error_code = protocol::Code(wanted.name ? ErrorCode::kUnknownTopicOrPartition
                                                  : ErrorCode::kUnknownTopicId);
      continue;
    }
    out.name = topic->name;
    out.topic_id = ToUuid(topic->id);
    TopicResult result = broker.DeleteTopic(std::string(topic->name));
    out.error_code = protocol::Code(result.error);
    if (result.error != ErrorCode::kNone) out.error_message = result.message;
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
