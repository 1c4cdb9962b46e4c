// OffsetFetch (key 9): committed offsets of a group (v1-7) or of several groups (v8+);
// -1 with empty metadata for partitions without a commit, and every committed partition
// of the group when the topic list is null. With require_stable (v7+), a partition with
// offsets pending in an open transaction is UNSTABLE_OFFSET_COMMIT (offset -1), as Kafka
// answers, so that a read_committed consumer waits for the transaction to end.
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/messages/offset_fetch_request.h"
#include "protocol/messages/offset_fetch_response.h"

namespace runnel::broker {

namespace {

using protocol::OffsetFetchResponse;

struct PartitionOffset {
  int32_t partition;
  CommittedOffset offset;
  ErrorCode error = ErrorCode::kNone;
};

struct TopicOffsets {
  std::string name;
  std::vector<PartitionOffset> partitions;
};

// The answer for one group: the requested partitions, or all when `topics` is null.
template <typename Topic>
std::vector<TopicOffsets> Lookup(const GroupCoordinator& groups, const std::string& group_id,
                                 const std::optional<std::vector<Topic>>& topics,
                                 bool require_stable) {
  std::vector<TopicOffsets> out;
  auto add = [&](const std::string& topic, int32_t p, const CommittedOffset& o) {
    if (out.empty() || out.back().name != topic) out.push_back({topic, {}});
    if (require_stable && groups.HasPendingTxnOffsets(group_id, std::make_pair(topic, p))) {
      out.back().partitions.push_back({p, CommittedOffset{}, ErrorCode::kUnstableOffsetCommit});
    } else {
      out.back().partitions.push_back({p, o});
    }
  };
  if (!topics) {
    for (const TopicPartitionOffset& o : groups.FetchAllOffsets(group_id)) {
      add(o.topic, o.partition, o.offset);
    }
    return out;
  }
  for (const Topic& t : *topics) {
    out.push_back({t.name, {}});
    for (int32_t p : t.partition_indexes) {
      add(t.name, p, groups.FetchOffset(group_id, t.name, p).value_or(CommittedOffset{}));
    }
  }
  return out;
}

template <typename TopicOut>
void Fill(const std::vector<TopicOffsets>& in, std::vector<TopicOut>* out) {
  for (const TopicOffsets& t : in) {
    TopicOut& topic = out->emplace_back();
    topic.name = t.name;
    for (const PartitionOffset& po : t.partitions) {
      auto& part = topic.partitions.emplace_back();
      part.partition_index = po.partition;
      part.committed_offset = po.offset.offset;
      part.committed_leader_epoch = po.offset.leader_epoch;
      part.metadata = po.offset.metadata;
      part.error_code = protocol::Code(po.error);
    }
  }
}

}  // namespace

void HandleOffsetFetch(RequestContext& ctx) {
  protocol::OffsetFetchRequest request;
  if (!ctx.Decode(&request)) return;
  GroupCoordinator& groups = ctx.broker().groups();
  OffsetFetchResponse response;
  if (ctx.api_version() >= 8) {
    for (const auto& g : request.groups) {
      auto& group = response.groups.emplace_back();
      group.group_id = g.group_id;
      if (g.group_id.empty()) {
        group.error_code = protocol::Code(ErrorCode::kInvalidGroupId);
        continue;
      }
      Fill(Lookup(groups, g.group_id, g.topics, request.require_stable), &group.topics);
    }
  } else if (request.group_id.empty()) {
    response.error_code = protocol::Code(ErrorCode::kInvalidGroupId);
  } else {
    Fill(Lookup(groups, request.group_id, request.topics, request.require_stable),
         &response.topics);
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
