// CreatePartitions (key 37): raises a topic's partition count.
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/errors.h"
#include "protocol/messages/create_partitions_request.h"
#include "protocol/messages/create_partitions_response.h"

namespace runnel::broker {

using protocol::CreatePartitionsRequest;
using protocol::CreatePartitionsResponse;
using protocol::ErrorCode;

void HandleCreatePartitions(RequestContext& ctx) {
  CreatePartitionsRequest request;
  if (!ctx.Decode(&request)) return;
  int32_t node_id = ctx.broker().config().node_id;
  CreatePartitionsResponse response;
  for (const auto& topic : request.topics) {
    auto& out = response.results.emplace_back();
    out.name = topic.name;
    TopicResult result;
    bool bad_assignment = false;
    if (topic.assignments) {
      for (const auto& a : *topic.assignments) {
        bad_assignment |= a.broker_ids.size() != 1 || a.broker_ids[0] != node_id;
      }
    }
    if (bad_assignment) {
      result = {ErrorCode::kInvalidReplicaAssignment,
                "Replica assignments may only name broker " + std::to_string(node_id) + "."};
    } else {
      result = ctx.broker().CreatePartitions(topic.name, topic.count, request.validate_only);
    }
    out.error_code = protocol::Code(result.error);
    if (result.error != ErrorCode::kNone) out.error_message = result.message;
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
