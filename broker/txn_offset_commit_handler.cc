// TxnOffsetCommit (key 28): offsets committed as part of a producer's transaction
// (sendOffsetsToTransaction). The group's __consumer_offsets partition must be in the
// transaction: added by AddOffsetsToTxn before v5, added here from v5 (transactions v2,
// KIP-890). The group coordinator keeps the offsets pending until the transaction ends.
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/errors.h"
#include "protocol/messages/txn_offset_commit_request.h"
#include "protocol/messages/txn_offset_commit_response.h"

namespace runnel::broker {

using protocol::ErrorCode;

void HandleTxnOffsetCommit(RequestContext& ctx) {
  protocol::TxnOffsetCommitRequest request;
  if (!ctx.Decode(&request)) return;
  Broker& broker = ctx.broker();
  std::vector<TopicPartitionOffset> offsets;
  for (const auto& topic : request.topics) {
    for (const auto& p : topic.partitions) {
      CommittedOffset o;
      o.offset = p.committed_offset;
      o.leader_epoch = p.committed_leader_epoch;
      o.metadata = p.committed_metadata.value_or("");
      offsets.push_back({topic.name, p.partition_index, std::move(o)});
    }
  }
  ErrorCode error = broker.transactions().VerifyPartition(
      request.transactional_id, request.producer_id, request.producer_epoch, kConsumerOffsetsTopic,
      broker.groups().PartitionFor(request.group_id),
      TxnOffsetCommitVerifyOperation(ctx.api_version()));
  std::vector<ErrorCode> errors =
      error != ErrorCode::kNone
          ? std::vector<ErrorCode>(offsets.size(), error)
          : broker.groups().CommitTxnOffsets(request.group_id, request.producer_id,
                                             request.producer_epoch, request.generation_id,
                                             request.member_id, request.group_instance_id, offsets);
  protocol::TxnOffsetCommitResponse response;
  size_t i = 0;
  for (const auto& topic : request.topics) {
    auto& topic_out = response.topics.emplace_back();
    topic_out.name = topic.name;
    for (const auto& p : topic.partitions) {
      topic_out.partitions.push_back(
          {p.partition_index, protocol::Code(FencedErrorFor(errors[i++], ctx.api_version(), 3))});
    }
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
