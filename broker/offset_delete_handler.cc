// OffsetDelete (key 47): deletes committed offsets of a group that is not consuming
// them (GROUP_SUBSCRIBED_TO_TOPIC otherwise, by Kafka's isSubscribedToTopic rule).
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/messages/offset_delete_request.h"
#include "protocol/messages/offset_delete_response.h"

namespace runnel::broker {

void HandleOffsetDelete(RequestContext& ctx) {
  protocol::OffsetDeleteRequest request;
  if (!ctx.Decode(&request)) return;
  std::vector<std::pair<std::string, int32_t>> partitions;
  for (const auto& t : request.topics) {
    for (const auto& p : t.partitions) partitions.emplace_back(t.name, p.partition_index);
  }
  std::vector<ErrorCode> errors;
  ErrorCode error = ctx.broker().groups().DeleteOffsets(request.group_id, partitions, &errors);
  protocol::OffsetDeleteResponse response;
  response.error_code = protocol::Code(error);
  if (error == ErrorCode::kNone) {
    size_t i = 0;
    for (const auto& t : request.topics) {
      auto& topic = response.topics.emplace_back();
      topic.name = t.name;
      for (const auto& p : t.partitions) {
        topic.partitions.push_back({p.partition_index, protocol::Code(errors[i++])});
      }
    }
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
