#include "broker/dispatch.h"

#include "broker/handlers.h"
#include "protocol/messages/api_table.h"

namespace runnel::broker {

namespace api = protocol::api;

const std::vector<HandlerEntry>& Handlers() {
  // Kafka 4.x's ranges (the schemas'), with floors pinned as Kafka advertises them:
  // Produce from 0 for librdkafka's compression probe (KAFKA-18659; v0-2 are still
  // refused when sent), JoinGroup from 0 (librdkafka < 2.11 requires v0 advertised).
  // Ceilings below the schema's are versions Kafka marks unstable and neither advertises
  // nor accepts (InitProducerId 6).
  static const std::vector<HandlerEntry> handlers = [] {
    struct Spec {
      int16_t key;
      Handler handler;
      int16_t advertised_min = -1;  // -1: the schema's minimum
      int16_t max = -1;             // -1: the schema's maximum
    };
    const Spec specs[] = {
        {api::kProduce, HandleProduce, 0},
        {api::kFetch, HandleFetch},
        {api::kListOffsets, HandleListOffsets},
        {api::kMetadata, HandleMetadata},
        {api::kApiVersions, HandleApiVersions},
        {api::kCreateTopics, HandleCreateTopics},
        {api::kDeleteTopics, HandleDeleteTopics},
        {api::kCreatePartitions, HandleCreatePartitions},
        {api::kDeleteRecords, HandleDeleteRecords},
        {api::kFindCoordinator, HandleFindCoordinator},
        {api::kJoinGroup, HandleJoinGroup, 0},
        {api::kSyncGroup, HandleSyncGroup},
        {api::kHeartbeat, HandleHeartbeat},
        {api::kLeaveGroup, HandleLeaveGroup},
        {api::kOffsetCommit, HandleOffsetCommit},
        {api::kOffsetFetch, HandleOffsetFetch},
        {api::kDescribeGroups, HandleDescribeGroups},
        {api::kListGroups, HandleListGroups},
        {api::kDeleteGroups, HandleDeleteGroups},
        {api::kOffsetDelete, HandleOffsetDelete},
        {api::kDescribeConfigs, HandleDescribeConfigs},
        {api::kAlterConfigs, HandleAlterConfigs},
        {api::kIncrementalAlterConfigs, HandleIncrementalAlterConfigs},
        {api::kDescribeCluster, HandleDescribeCluster},
        {api::kDescribeLogDirs, HandleDescribeLogDirs},
        {api::kInitProducerId, HandleInitProducerId, -1, 5},
        {api::kAddPartitionsToTxn, HandleAddPartitionsToTxn},
        {api::kAddOffsetsToTxn, HandleAddOffsetsToTxn},
        {api::kEndTxn, HandleEndTxn},
        {api::kTxnOffsetCommit, HandleTxnOffsetCommit},
        {api::kDescribeProducers, HandleDescribeProducers},
        {api::kDescribeTransactions, HandleDescribeTransactions},
        {api::kListTransactions, HandleListTransactions},
    };
    std::vector<HandlerEntry> out;
    for (const Spec& s : specs) {
      const protocol::ApiInfo* info = protocol::FindApi(s.key);
      int16_t min = s.advertised_min >= 0 ? s.advertised_min : info->min_version;
      int16_t max = s.max >= 0 ? s.max : info->max_version;
      out.push_back({s.key, min, max, s.handler});
    }
    std::sort(out.begin(), out.end(),
              [](const HandlerEntry& a, const HandlerEntry& b) { return a.api_key < b.api_key; });
    return out;
  }();
  return handlers;
}

void DispatchRequest(Broker* broker, std::shared_ptr<const ClientInfo> client, Frame frame,
                     ResponseSink sink) {
  protocol::Reader peek(frame.view());
  int16_t api_key = peek.Int16();
  int16_t api_version = peek.Int16();
  const protocol::ApiInfo* info = protocol::FindApi(api_key);
  const HandlerEntry* entry = nullptr;
  for (const HandlerEntry& e : Handlers()) {
    if (e.api_key == api_key) entry = &e;
  }
  if (info == nullptr || entry == nullptr) return sink(nullptr, true);

  bool supported = api_version >= info->min_version && api_version <= entry->max_version;
  if (!supported && api_key != api::kApiVersions) return sink(nullptr, true);

  // An unsupported ApiVersions request is parsed with header v1: its layout is
  // stable, and the body is not read.
  int16_t header_version = supported && api_version >= info->first_flexible_version ? 2 : 1;
  protocol::Reader r(frame.view());
  protocol::RequestHeader header;
  if (!header.Decode(r, header_version)) return sink(nullptr, true);

  std::string_view body(r.position(), r.remaining());
  RequestContext ctx(broker, std::move(client), std::move(header), std::move(frame), body,
                     std::move(sink));
  entry->handler(ctx);
}

}  // namespace runnel::broker
