// Heartbeat (key 12): keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to
// rejoin.
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/messages/heartbeat_request.h"
#include "protocol/messages/heartbeat_response.h"

namespace runnel::broker {

void HandleHeartbeat(RequestContext& ctx) {
  protocol::HeartbeatRequest request;
  if (!ctx.Decode(&request)) return;
  protocol::HeartbeatResponse response;
  response.error_code = protocol::Code(ctx.broker().groups().Heartbeat(
      request.group_id, request.member_id, request.group_instance_id, request.generation_id));
  ctx.Respond(response);
}

}  // namespace runnel::broker
