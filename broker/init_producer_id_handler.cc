// InitProducerId (key 22): a producer id and epoch for an idempotent producer, as Kafka's
// TransactionCoordinator.handleInitProducerId answers a null transactional.id: a new id
// (ProducerIdManager) with epoch 0, whatever producer id and epoch the request carries.
// Before that, as KafkaApis: a producer id without an epoch or the reverse (v3+) is
// INVALID_REQUEST. Transactional ids are not served yet: an empty one is INVALID_REQUEST
// (the coordinator's check), any other COORDINATOR_NOT_AVAILABLE, what a Kafka broker
// answers while its transaction coordinator cannot serve (no __transaction_state
// partition, e.g. too few brokers for its replication factor). It is retriable, matches
// what FindCoordinator says of transaction coordinators here, and claims no fencing or
// authorization that did not happen. Errors carry producer id -1 and epoch -1.
#include "broker/broker.h"
#include "broker/handlers.h"
#include "broker/log.h"
#include "protocol/errors.h"
#include "protocol/messages/init_producer_id_request.h"
#include "protocol/messages/init_producer_id_response.h"

namespace runnel::broker {

using protocol::ErrorCode;

void HandleInitProducerId(RequestContext& ctx) {
  protocol::InitProducerIdRequest request;
  if (!ctx.Decode(&request)) return;
  protocol::InitProducerIdResponse response;
  auto fail = [&](ErrorCode error) {
    response.error_code = protocol::Code(error);
    response.producer_id = -1;
    response.producer_epoch = -1;
    ctx.Respond(response);
  };
  if ((request.producer_id == -1) != (request.producer_epoch == -1)) {
    return fail(ErrorCode::kInvalidRequest);
  }
  if (request.transactional_id.has_value()) {
    return fail(request.transactional_id->empty() ? ErrorCode::kInvalidRequest
                                                  : ErrorCode::kCoordinatorNotAvailable);
  }
  absl::StatusOr<int64_t> id = ctx.broker().producer_ids().Next();
  if (!id.ok()) {
    LogError("Cannot allocate a producer id: ", id.status().ToString());
    return fail(ErrorCode::kUnknownServerError);
  }
  response.producer_id = *id;
  response.producer_epoch = 0;
  ctx.Respond(response);
}

}  // namespace runnel::broker
