// OffsetCommit (key 8): stores committed offsets through the GroupCoordinator, which
// appends them to __consumer_offsets before this answers. Commits outside any group
// (generation -1, empty member id) are accepted while the group has no members.
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/messages/offset_commit_request.h"
#include "protocol/messages/offset_commit_response.h"

namespace runnel::broker {

void HandleOffsetCommit(RequestContext& ctx) {
  protocol::OffsetCommitRequest request;
  if (!ctx.Decode(&request)) return;
  std::vector<TopicPartitionOffset> offsets;
  for (const auto& t : request.topics) {
    for (const auto& p : t.partitions) {
      CommittedOffset o;
      o.offset = p.committed_offset;
      o.leader_epoch = ctx.api_version() >= 6 ? p.committed_leader_epoch : -1;
      o.metadata = p.committed_metadata.value_or("");
      offsets.push_back({t.name, p.partition_index, std::move(o)});
    }
  }
  std::vector<ErrorCode> errors =
      ctx.broker().groups().CommitOffsets(request.group_id, request.generation_id_or_member_epoch,
                                          request.member_id, request.group_instance_id, offsets);
  protocol::OffsetCommitResponse response;
  size_t i = 0;
  for (const auto& t : request.topics) {
    auto& topic = response.topics.emplace_back();
    topic.name = t.name;
    for (const auto& p : t.partitions) {
      topic.partitions.push_back({p.partition_index, protocol::Code(errors[i++])});
    }
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
