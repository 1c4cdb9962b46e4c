// FindCoordinator (key 10): this broker coordinates every group (key type 0) and every
// transactional id (key type 1). Answers with its node id and the advertised endpoint of
// the listener the request came on; v4+ answers each of the batched keys. Share groups
// (key type 2) are not served: COORDINATOR_NOT_AVAILABLE.
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/messages/find_coordinator_request.h"
#include "protocol/messages/find_coordinator_response.h"

namespace runnel::broker {

using protocol::FindCoordinatorRequest;
using protocol::FindCoordinatorResponse;

void HandleFindCoordinator(RequestContext& ctx) {
  FindCoordinatorRequest request;
  if (!ctx.Decode(&request)) return;
  const Endpoint& ep = ctx.advertised();
  int32_t node_id = ctx.broker().config().node_id;
  ErrorCode error = request.key_type <= 1 ? ErrorCode::kNone : ErrorCode::kCoordinatorNotAvailable;
  auto fill = [&](auto* out) {
    out->error_code = protocol::Code(error);
    out->error_message = std::nullopt;
    if (error == ErrorCode::kNone) {
      out->node_id = node_id;
      out->host = ep.host;
      out->port = ep.port;
    } else {
      out->node_id = -1;
      out->port = -1;
    }
  };
  FindCoordinatorResponse response;
  if (ctx.api_version() >= 4) {
    for (const std::string& key : request.coordinator_keys) {
      auto& c = response.coordinators.emplace_back();
      c.key = key;
      fill(&c);
    }
  } else {
    fill(&response);
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
