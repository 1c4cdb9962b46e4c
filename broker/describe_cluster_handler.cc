// DescribeCluster (key 60): the cluster id, this broker as the only broker and as the
// "controller" (a KRaft broker names a random alive broker, since clients cannot reach
// the real controller), with the address of the listener the request arrived on.
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/messages/describe_cluster_request.h"
#include "protocol/messages/describe_cluster_response.h"

namespace runnel::broker {
namespace {

constexpr int8_t kEndpointTypeBroker = 1;      // EndpointType.BROKER
constexpr int8_t kEndpointTypeController = 2;  // EndpointType.CONTROLLER

// Without an authorizer Kafka grants every operation a CLUSTER resource supports
// (AclEntry.supportedOperations): CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE, as a bit field of AclOperation codes.
constexpr int32_t kClusterOperations =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

}  // namespace

void HandleDescribeCluster(RequestContext& ctx) {
  protocol::DescribeClusterRequest request;
  if (!ctx.Decode(&request)) return;
  protocol::DescribeClusterResponse response;
  // AuthHelper.computeDescribeClusterResponse: v0 answers both problems with INVALID_REQUEST.
  int8_t type = request.endpoint_type;
  if (type != kEndpointTypeBroker) {
    bool known = type == kEndpointTypeController;
    response.error_code =
        protocol::Code(ctx.api_version() == 0 ? protocol::ErrorCode::kInvalidRequest
                       : known                ? protocol::ErrorCode::kMismatchedEndpointType
                                              : protocol::ErrorCode::kUnsupportedEndpointType);
    response.error_message =
        known ? "The request was sent to an endpoint of type BROKER, but we wanted an endpoint "
                "of type CONTROLLER"
              : "Unsupported endpoint type " + std::to_string(type);
    return ctx.Respond(response);
  }
  const BrokerConfig& config = ctx.broker().config();
  response.cluster_id = ctx.broker().cluster_id();
  response.controller_id = config.node_id;
  auto& self = response.brokers.emplace_back();
  self.broker_id = config.node_id;
  self.host = ctx.advertised().host;
  self.port = ctx.advertised().port;
  if (request.include_cluster_authorized_operations) {
    response.cluster_authorized_operations = kClusterOperations;
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
