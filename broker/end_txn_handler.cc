// EndTxn (key 26): commits or aborts the producer's transaction. The coordinator writes
// the markers before this answers. From v5 the client uses transactions v2 (KIP-890):
// the epoch is bumped by every EndTxn and the answer carries the producer's new id and
// epoch.
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/errors.h"
#include "protocol/messages/end_txn_request.h"
#include "protocol/messages/end_txn_response.h"

namespace runnel::broker {

void HandleEndTxn(RequestContext& ctx) {
  protocol::EndTxnRequest request;
  if (!ctx.Decode(&request)) return;
  Broker& broker = ctx.broker();
  TransactionCoordinator::EndTxnResult result = broker.transactions().EndTxn(
      request.transactional_id, request.producer_id, request.producer_epoch, request.committed,
      /*is_transaction_v2=*/ctx.api_version() >= 5);
  broker.NotifyAppend();  // markers move the last stable offsets read_committed waits on
  protocol::EndTxnResponse response;
  response.error_code = protocol::Code(FencedErrorFor(result.error, ctx.api_version(), 2));
  response.producer_id = result.producer_id;
  response.producer_epoch = result.producer_epoch;
  ctx.Respond(response);
}

}  // namespace runnel::broker
