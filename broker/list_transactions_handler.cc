// ListTransactions (key 66): the transactional ids this coordinator knows, filtered by
// state, producer id and (v1) how long the transaction has been running. Unknown state
// names are echoed in unknown_state_filters, as Kafka does.
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/errors.h"
#include "protocol/messages/list_transactions_request.h"
#include "protocol/messages/list_transactions_response.h"

namespace runnel::broker {

void HandleListTransactions(RequestContext& ctx) {
  protocol::ListTransactionsRequest request;
  if (!ctx.Decode(&request)) return;
  protocol::ListTransactionsResponse response;
  std::vector<std::string> known_filters;
  for (const std::string& state : request.state_filters) {
    if (TransactionStateFromName(state)) {
      known_filters.push_back(state);
    } else {
      response.unknown_state_filters.push_back(state);
    }
  }
  // Only unknown state names asked for: nothing can match.
  if (!request.state_filters.empty() && known_filters.empty()) return ctx.Respond(response);
  for (const auto& t : ctx.broker().transactions().List(known_filters, request.producer_id_filters,
                                                        request.duration_filter)) {
    response.transaction_states.push_back({t.transactional_id, t.producer_id, t.state});
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
