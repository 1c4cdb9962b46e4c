// ListOffsets (key 2): offsets by timestamp, and the special timestamps LATEST (-1),
// EARLIEST (-2), MAX_TIMESTAMP (-3) and EARLIEST_LOCAL (-4). Without tiered storage
// LATEST_TIERED (-5) finds nothing. With isolation_level=read_committed (1), LATEST is
// the last stable offset.
#include <set>
#include <tuple>

#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/errors.h"
#include "protocol/messages/list_offsets_request.h"
#include "protocol/messages/list_offsets_response.h"

namespace runnel::broker {

using protocol::ErrorCode;
using protocol::ListOffsetsRequest;
using protocol::ListOffsetsResponse;

namespace {

constexpr int64_t kLatest = -1;
constexpr int64_t kEarliest = -2;
constexpr int64_t kMaxTimestamp = -3;
constexpr int64_t kEarliestLocal = -4;

// Fills offset, timestamp and leader epoch; "nothing found" leaves all three at -1.
void ListPartition(storage::PartitionLog* log, int64_t timestamp, bool read_committed,
                   ListOffsetsResponse::ListOffsetsPartitionResponse* out) {
  int64_t offset = -1;
  int64_t found_timestamp = -1;
  switch (timestamp) {
    case kLatest:
      offset = read_committed ? log->last_stable_offset() : log->log_end_offset();
      break;
    case kEarliest:
    case kEarliestLocal:
      offset = log->log_start_offset();
      break;
    case kMaxTimestamp:
      std::tie(found_timestamp, offset) = log->MaxTimestampAndOffset();
      break;
    default:
      if (timestamp < 0) break;  // LATEST_TIERED and unknown specials: nothing found
      auto found = log->OffsetForTimestamp(timestamp);
      if (!found.ok()) {
        out->error_code = protocol::Code(ErrorCode::kKafkaStorageError);
        return;
      }
      if (*found) std::tie(offset, found_timestamp) = **found;
  }
  out->offset = offset;
  out->timestamp = found_timestamp;
  // Every batch is stamped with leader epoch 0: a single broker never changes leader.
  out->leader_epoch = offset >= 0 ? 0 : -1;
}

}  // namespace

void HandleListOffsets(RequestContext& ctx) {
  ListOffsetsRequest request;
  if (!ctx.Decode(&request)) return;
  ListOffsetsResponse response;
  for (const auto& topic : request.topics) {
    auto& topic_out = response.topics.emplace_back();
    topic_out.name = topic.name;
    std::set<int32_t> seen, duplicated;
    for (const auto& partition : topic.partitions) {
      if (!seen.insert(partition.partition_index).second) {
        duplicated.insert(partition.partition_index);
      }
    }
    for (const auto& partition : topic.partitions) {
      // A partition named twice is answered once, with INVALID_REQUEST (Kafka 4.x).
      if (duplicated.count(partition.partition_index)) {
        if (seen.erase(partition.partition_index) == 0) continue;
        auto& out = topic_out.partitions.emplace_back();
        out.partition_index = partition.partition_index;
        out.error_code = protocol::Code(ErrorCode::kInvalidRequest);
        continue;
      }
      auto& out = topic_out.partitions.emplace_back();
      out.partition_index = partition.partition_index;
      storage::PartitionLog* log =
          ctx.broker().logs().Partition(topic.name, partition.partition_index);
      if (log == nullptr) {
        out.error_code = protocol::Code(ErrorCode::kUnknownTopicOrPartition);
        continue;
      }
      ListPartition(log, partition.timestamp, request.isolation_level == 1, &out);
    }
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
