// DeleteRecords (key 21): raises partitions' log start offsets (Broker::DeleteRecords)
// and answers each with its new low watermark.
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/messages/delete_records_request.h"
#include "protocol/messages/delete_records_response.h"

namespace runnel::broker {

void HandleDeleteRecords(RequestContext& ctx) {
  protocol::DeleteRecordsRequest request;
  if (!ctx.Decode(&request)) return;
  protocol::DeleteRecordsResponse response;
  for (const auto& t : request.topics) {
    auto& topic = response.topics.emplace_back();
    topic.name = t.name;
    for (const auto& p : t.partitions) {
      auto [error, low_watermark] = ctx.broker().DeleteRecords(t.name, p.partition_index, p.offset);
      topic.partitions.push_back({p.partition_index, low_watermark, protocol::Code(error)});
    }
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
