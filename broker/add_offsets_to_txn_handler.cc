// AddOffsetsToTxn (key 25): adds the group's __consumer_offsets partition to the
// producer's transaction, so that its TxnOffsetCommits commit or abort with it.
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/errors.h"
#include "protocol/messages/add_offsets_to_txn_request.h"
#include "protocol/messages/add_offsets_to_txn_response.h"

namespace runnel::broker {

void HandleAddOffsetsToTxn(RequestContext& ctx) {
  protocol::AddOffsetsToTxnRequest request;
  if (!ctx.Decode(&request)) return;
  Broker& broker = ctx.broker();
  protocol::AddOffsetsToTxnResponse response;
  ErrorCode error = broker.transactions().AddOffsets(
      request.transactional_id, request.producer_id, request.producer_epoch, request.group_id,
      broker.groups().PartitionFor(request.group_id));
  response.error_code = protocol::Code(FencedErrorFor(error, ctx.api_version(), 2));
  ctx.Respond(response);
}

}  // namespace runnel::broker
