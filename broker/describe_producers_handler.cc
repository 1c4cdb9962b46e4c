// DescribeProducers (key 61): the active producers of each partition, from its log's
// producer state (storage/producer_state.h), as Kafka's ReplicaManager.activeProducerState.
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/errors.h"
#include "protocol/messages/describe_producers_request.h"
#include "protocol/messages/describe_producers_response.h"

namespace runnel::broker {

using protocol::ErrorCode;

void HandleDescribeProducers(RequestContext& ctx) {
  protocol::DescribeProducersRequest request;
  if (!ctx.Decode(&request)) return;
  Broker& broker = ctx.broker();
  protocol::DescribeProducersResponse response;
  for (const auto& topic : request.topics) {
    auto& topic_out = response.topics.emplace_back();
    topic_out.name = topic.name;
    for (int32_t index : topic.partition_indexes) {
      auto& out = topic_out.partitions.emplace_back();
      out.partition_index = index;
      storage::PartitionLog* log = broker.logs().Partition(topic.name, index);
      if (log == nullptr) {
        out.error_code = protocol::Code(ErrorCode::kUnknownTopicOrPartition);
        continue;
      }
      for (const auto& [id, entry] : log->producer_state().producers()) {
        auto& p = out.active_producers.emplace_back();
        p.producer_id = id;
        p.producer_epoch = entry.epoch;
        p.last_sequence = entry.last_seq();
        p.last_timestamp = entry.last_timestamp;
        p.coordinator_epoch = entry.coordinator_epoch;
        p.current_txn_start_offset = entry.current_txn_first_offset;
      }
    }
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
