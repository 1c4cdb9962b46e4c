// ListGroups (key 16): every group, filtered by state (v4+, case-insensitive as Kafka)
// and type (v5+: only "classic" groups exist here).
#include "absl/strings/ascii.h"
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/messages/list_groups_request.h"
#include "protocol/messages/list_groups_response.h"

namespace runnel::broker {

void HandleListGroups(RequestContext& ctx) {
  protocol::ListGroupsRequest request;
  if (!ctx.Decode(&request)) return;
  auto matches = [](const std::vector<std::string>& filter, const std::string& value) {
    if (filter.empty()) return true;
    for (const std::string& f : filter) {
      if (absl::AsciiStrToLower(f) == absl::AsciiStrToLower(value)) return true;
    }
    return false;
  };
  protocol::ListGroupsResponse response;
  for (const auto& [id, type, state] : ctx.broker().groups().ListGroups()) {
    if (!matches(request.states_filter, state) || !matches(request.types_filter, "classic")) {
      continue;
    }
    auto& g = response.groups.emplace_back();
    g.group_id = id;
    g.protocol_type = type;
    g.group_state = state;
    g.group_type = "classic";
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
