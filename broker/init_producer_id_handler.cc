// InitProducerId (key 22): a producer id and epoch. A null transactional.id gets a new
// id (ProducerIdManager) with epoch 0, whatever producer id and epoch the request
// carries, as Kafka's TransactionCoordinator.handleInitProducerId; any other goes to the
// transaction coordinator (fencing the id's older epochs and aborting their open
// transaction). Before that, as KafkaApis: a producer id without an epoch or the reverse
// (v3+) is INVALID_REQUEST. Errors carry producer id -1 and epoch -1.
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
    TransactionCoordinator::InitProducerIdResult result =
        ctx.broker().transactions().InitProducerId(*request.transactional_id,
                                                   request.transaction_timeout_ms,
                                                   request.producer_id, request.producer_epoch);
    // Re-initializing may have aborted an open transaction: its markers moved LSOs.
    ctx.broker().NotifyAppend();
    if (result.error != ErrorCode::kNone) {
      return fail(FencedErrorFor(result.error, ctx.api_version(), 4));
    }
    response.producer_id = result.producer_id;
    response.producer_epoch = result.producer_epoch;
    return ctx.Respond(response);
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
