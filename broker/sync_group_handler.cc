// SyncGroup (key 14): the leader sends the assignment, every member receives its own.
// Delegates to the GroupCoordinator, which answers when the leader's assignment arrives.
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/messages/sync_group_request.h"
#include "protocol/messages/sync_group_response.h"

namespace runnel::broker {

using protocol::SyncGroupRequest;
using protocol::SyncGroupResponse;

void HandleSyncGroup(RequestContext& ctx) {
  SyncGroupRequest request;
  if (!ctx.Decode(&request)) return;
  SyncGroupParams p;
  p.group_id = request.group_id;
  p.generation_id = request.generation_id;
  p.member_id = request.member_id;
  p.group_instance_id = request.group_instance_id;
  p.protocol_type = request.protocol_type;
  p.protocol_name = request.protocol_name;
  for (auto& a : request.assignments) p.assignments.emplace_back(a.member_id, a.assignment);
  auto shared = std::make_shared<RequestContext>(std::move(ctx));
  shared->broker().groups().SyncGroup(p, [shared](const SyncGroupResult& r) {
    SyncGroupResponse response;
    response.error_code = protocol::Code(r.error);
    response.protocol_type = r.protocol_type;
    response.protocol_name = r.protocol_name;
    response.assignment = r.assignment;
    shared->Respond(response);
  });
}

}  // namespace runnel::broker
