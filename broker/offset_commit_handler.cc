// OffsetCommit (key 8): stores committed offsets through the GroupCoordinator, which
// appends them to __consumer_offsets before this answers. Commits outside any group
// (generation -1, empty member id) are accepted while the group has no members.
// As in Kafka, a partition this broker does not host gets UNKNOWN_TOPIC_OR_PARTITION
// and is not stored.
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/messages/offset_commit_request.h"
#include "protocol/messages/offset_commit_response.h"

namespace runnel::broker {

void HandleOffsetCommit(RequestContext& ctx) {
  protocol::OffsetCommitRequest request;
  if (!ctx.Decode(&request)) return;
  storage::LogManager& logs = ctx.broker().logs();
  auto hosted = [&](const std::string& topic, int32_t partition) {
    const storage::TopicMetadata* t = logs.FindTopic(topic);
    return t != nullptr && partition >= 0 && partition < t->partitions;
  };
  std::vector<TopicPartitionOffset> offsets;
  for (const auto& t : request.topics) {
    for (const auto& p : t.partitions) {
      if (!hosted(t.name, p.partition_index)) continue;
      CommittedOffset o;
      o.offset = p.committed_offset;
      o.leader_epoch = ctx.api_version() >= 6 ? p.committed_leader_epoch : -1;
      o.metadata = p.committed_metadata.value_or("");
      offsets.push_back({t.name, p.partition_index, std::move(o)});
    }
  }
  std::vector<ErrorCode> errors = ctx.broker().groups().CommitOffsets(
      request.group_id, request.generation_id_or_member_epoch, request.member_id,
      request.group_instance_id, ctx.api_version(), offsets);
  protocol::OffsetCommitResponse response;
  size_t i = 0;
  for (const auto& t : request.topics) {
    auto& topic = response.topics.emplace_back();
    topic.name = t.name;
    for (const auto& p : t.partitions) {
      ErrorCode error =
          hosted(t.name, p.partition_index) ? errors[i++] : ErrorCode::kUnknownTopicOrPartition;
      topic.partitions.push_back({p.partition_index, protocol::Code(error)});
    }
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
