// ListOffsets (key 2): offsets by timestamp, and the special timestamps LATEST (-1),
// EARLIEST (-2), MAX_TIMESTAMP (-3) and EARLIEST_LOCAL (-4). Without tiered storage
// LATEST_TIERED (-5) finds nothing.
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

void ListPartition(storage::PartitionLog* log, int64_t timestamp,
                   ListOffsetsResponse::ListOffsetsPartitionResponse* out) {
  out->timestamp = -1;
  out->offset = -1;
  out->leader_epoch = 0;
  switch (timestamp) {
    case kLatest:
      out->offset = log->log_end_offset();
      return;
    case kEarliest:
    case kEarliestLocal:
      out->offset = log->log_start_offset();
      return;
    case kMaxTimestamp: {
      auto [ts, offset] = log->MaxTimestampAndOffset();
      out->timestamp = ts;
      out->offset = offset;
      return;
    }
    default:
      break;
  }
  if (timestamp < 0) return;  // LATEST_TIERED and unknown specials: nothing found
  auto found = log->OffsetForTimestamp(timestamp);
  if (!found.ok()) {
    out->error_code = protocol::Code(ErrorCode::kKafkaStorageError);
    return;
  }
  if (*found) {
    out->offset = (*found)->first;
    out->timestamp = (*found)->second;
  }
}

}  // namespace

void HandleListOffsets(RequestContext& ctx) {
  ListOffsetsRequest request;
  if (!ctx.Decode(&request)) return;
  ListOffsetsResponse response;
  for (const auto& topic : request.topics) {
    auto& topic_out = response.topics.emplace_back();
    topic_out.name = topic.name;
    for (const auto& partition : topic.partitions) {
      auto& out = topic_out.partitions.emplace_back();
      out.partition_index = partition.partition_index;
      storage::PartitionLog* log =
          ctx.broker().logs().Partition(topic.name, partition.partition_index);
      if (log == nullptr) {
        out.error_code = protocol::Code(ErrorCode::kUnknownTopicOrPartition);
        continue;
      }
      ListPartition(log, partition.timestamp, &out);
    }
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
