// LeaveGroup (key 13): v0-2 name one member (its error is the response's); v3+ carry a
// batch of members (by member id or group.instance.id) with an error each.
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/messages/leave_group_request.h"
#include "protocol/messages/leave_group_response.h"

namespace runnel::broker {

void HandleLeaveGroup(RequestContext& ctx) {
  protocol::LeaveGroupRequest request;
  if (!ctx.Decode(&request)) return;
  std::vector<LeaveGroupMember> members;
  bool batched = ctx.api_version() >= 3;
  if (batched) {
    for (const auto& m : request.members) members.push_back({m.member_id, m.group_instance_id});
  } else {
    members.push_back({request.member_id, std::nullopt});
  }
  auto [error, errors] = ctx.broker().groups().LeaveGroup(request.group_id, members);
  protocol::LeaveGroupResponse response;
  response.error_code = protocol::Code(error);
  if (!batched) {
    if (error == ErrorCode::kNone && !errors.empty()) {
      response.error_code = protocol::Code(errors.front());
    }
  } else if (error == ErrorCode::kNone) {
    for (size_t i = 0; i < members.size(); ++i) {
      response.members.push_back(
          {members[i].member_id, members[i].group_instance_id, protocol::Code(errors[i])});
    }
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
