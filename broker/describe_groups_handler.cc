// DescribeGroups (key 15): state, protocol and members of each group. Unknown groups
// are reported Dead (v0-5) or GROUP_ID_NOT_FOUND (v6+), as Kafka does.
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/messages/describe_groups_request.h"
#include "protocol/messages/describe_groups_response.h"

namespace runnel::broker {

void HandleDescribeGroups(RequestContext& ctx) {
  protocol::DescribeGroupsRequest request;
  if (!ctx.Decode(&request)) return;
  protocol::DescribeGroupsResponse response;
  for (const std::string& id : request.groups) {
    GroupDescription d = ctx.broker().groups().DescribeGroup(id);
    auto& g = response.groups.emplace_back();
    g.group_id = id;
    g.group_state = d.state;
    g.protocol_type = d.protocol_type;
    g.protocol_data = d.protocol;
    if (id.empty()) {
      g.error_code = protocol::Code(ErrorCode::kInvalidGroupId);
    } else if (d.state == "Dead" && ctx.api_version() >= 6) {
      g.error_code = protocol::Code(ErrorCode::kGroupIdNotFound);
      g.error_message = "Group " + id + " not found.";
    }
    for (auto& m : d.members) {
      auto& out = g.members.emplace_back();
      out.member_id = m.member_id;
      out.group_instance_id = m.group_instance_id;
      out.client_id = m.client_id;
      out.client_host = m.client_host;
      out.member_metadata = m.metadata;
      out.member_assignment = m.assignment;
    }
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
