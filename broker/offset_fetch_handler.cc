// OffsetFetch (key 9): committed offsets of a group (v1-7) or of several groups (v8+);
// -1 with empty metadata for partitions without a commit, and every committed partition
// of the group when the topic list is null.
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/messages/offset_fetch_request.h"
#include "protocol/messages/offset_fetch_response.h"

namespace runnel::broker {

namespace {

using protocol::OffsetFetchResponse;

struct TopicOffsets {
  std::string name;
  std::vector<std::pair<int32_t, CommittedOffset>> partitions;
};

// The answer for one group: the requested partitions, or all when `topics` is null.
template <typename Topic>
std::vector<TopicOffsets> Lookup(const GroupCoordinator& groups, const std::string& group_id,
                                 const std::optional<std::vector<Topic>>& topics) {
  std::vector<TopicOffsets> out;
  if (!topics) {
    for (const TopicPartitionOffset& o : groups.FetchAllOffsets(group_id)) {
      if (out.empty() || out.back().name != o.topic) out.push_back({o.topic, {}});
      out.back().partitions.emplace_back(o.partition, o.offset);
    }
    return out;
  }
  for (const Topic& t : *topics) {
    TopicOffsets& to = out.emplace_back(TopicOffsets{t.name, {}});
    for (int32_t p : t.partition_indexes) {
      to.partitions.emplace_back(
          p, groups.FetchOffset(group_id, t.name, p).value_or(CommittedOffset{}));
    }
  }
  return out;
}

template <typename TopicOut>
void Fill(const std::vector<TopicOffsets>& in, std::vector<TopicOut>* out) {
  for (const TopicOffsets& t : in) {
    TopicOut& topic = out->emplace_back();
    topic.name = t.name;
    for (const auto& [p, o] : t.partitions) {
      auto& part = topic.partitions.emplace_back();
      part.partition_index = p;
      part.committed_offset = o.offset;
      part.committed_leader_epoch = o.leader_epoch;
      part.metadata = o.metadata;
      part.error_code = 0;
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
      Fill(Lookup(groups, g.group_id, g.topics), &group.topics);
    }
  } else if (request.group_id.empty()) {
    response.error_code = protocol::Code(ErrorCode::kInvalidGroupId);
  } else {
    Fill(Lookup(groups, request.group_id, request.topics), &response.topics);
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
