// JoinGroup (key 11): decodes, hands the join to the GroupCoordinator, and answers when
// the coordinator completes it (possibly after the rebalance delay or timeout). v0 has
// no rebalance timeout: it is the session timeout, as in Kafka.
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/messages/join_group_request.h"
#include "protocol/messages/join_group_response.h"

namespace runnel::broker {

using protocol::JoinGroupRequest;
using protocol::JoinGroupResponse;

void HandleJoinGroup(RequestContext& ctx) {
  JoinGroupRequest request;
  if (!ctx.Decode(&request)) return;
  JoinGroupParams p;
  p.group_id = request.group_id;
  p.member_id = request.member_id;
  p.group_instance_id = request.group_instance_id;
  p.client_id = ctx.header().client_id.value_or("");
  p.client_host = ctx.client_host();
  p.session_timeout_ms = request.session_timeout_ms;
  p.rebalance_timeout_ms =
      ctx.api_version() >= 1 ? request.rebalance_timeout_ms : request.session_timeout_ms;
  p.protocol_type = request.protocol_type;
  for (auto& proto : request.protocols) p.protocols.emplace_back(proto.name, proto.metadata);
  p.require_known_member_id = ctx.api_version() >= 4;
  // The context outlives the call: the coordinator answers exactly once, maybe later.
  auto shared = std::make_shared<RequestContext>(std::move(ctx));
  shared->broker().groups().JoinGroup(p, [shared](const JoinGroupResult& r) {
    JoinGroupResponse response;
    response.error_code = protocol::Code(r.error);
    response.generation_id = r.generation_id;
    response.protocol_type = r.protocol_type;
    response.protocol_name = r.protocol_name;
    if (shared->api_version() < 7 && !response.protocol_name) response.protocol_name = "";
    response.leader = r.leader;
    response.skip_assignment = r.skip_assignment;
    response.member_id = r.member_id;
    for (const auto& m : r.members) {
      response.members.push_back({m.member_id, m.group_instance_id, m.metadata});
    }
    shared->Respond(response);
  });
}

}  // namespace runnel::broker
