// DeleteGroups (key 42): deletes empty groups and their offsets (NON_EMPTY_GROUP while
// members remain, GROUP_ID_NOT_FOUND for unknown groups).
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/messages/delete_groups_request.h"
#include "protocol/messages/delete_groups_response.h"

namespace runnel::broker {

void HandleDeleteGroups(RequestContext& ctx) {
  protocol::DeleteGroupsRequest request;
  if (!ctx.Decode(&request)) return;
  protocol::DeleteGroupsResponse response;
  for (const std::string& id : request.groups_names) {
    auto& r = response.results.emplace_back();
    r.group_id = id;
    r.error_code = protocol::Code(ctx.broker().groups().DeleteGroup(id));
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
