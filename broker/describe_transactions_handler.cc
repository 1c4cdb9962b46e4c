// DescribeTransactions (key 65): the coordinator's view of each transactional id.
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/errors.h"
#include "protocol/messages/describe_transactions_request.h"
#include "protocol/messages/describe_transactions_response.h"

namespace runnel::broker {

void HandleDescribeTransactions(RequestContext& ctx) {
  protocol::DescribeTransactionsRequest request;
  if (!ctx.Decode(&request)) return;
  protocol::DescribeTransactionsResponse response;
  for (const std::string& id : request.transactional_ids) {
    TransactionCoordinator::TransactionDescription d = ctx.broker().transactions().Describe(id);
    auto& out = response.transaction_states.emplace_back();
    out.error_code = protocol::Code(d.error);
    out.transactional_id = id;
    out.transaction_state = d.state;
    out.transaction_timeout_ms = d.timeout_ms;
    out.transaction_start_time_ms = d.start_ms;
    out.producer_id = d.producer_id;
    out.producer_epoch = d.producer_epoch;
    for (auto& [topic, partitions] : d.partitions) out.topics.push_back({topic, partitions});
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
