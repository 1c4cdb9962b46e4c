// One handler per Kafka API, each in its own <api>_handler.cc. A handler decodes the
// request, delegates to the broker's components, and responds through the context.
#ifndef RUNNEL_BROKER_HANDLERS_H_
#define RUNNEL_BROKER_HANDLERS_H_

#include "broker/request_context.h"

namespace runnel::broker {

void HandleApiVersions(RequestContext& ctx);
void HandleMetadata(RequestContext& ctx);
void HandleProduce(RequestContext& ctx);
void HandleFetch(RequestContext& ctx);
void HandleListOffsets(RequestContext& ctx);
void HandleCreateTopics(RequestContext& ctx);
void HandleDeleteTopics(RequestContext& ctx);
void HandleCreatePartitions(RequestContext& ctx);
void HandleFindCoordinator(RequestContext& ctx);
void HandleJoinGroup(RequestContext& ctx);
void HandleSyncGroup(RequestContext& ctx);
void HandleHeartbeat(RequestContext& ctx);
void HandleLeaveGroup(RequestContext& ctx);
void HandleOffsetCommit(RequestContext& ctx);
void HandleOffsetFetch(RequestContext& ctx);
void HandleDescribeGroups(RequestContext& ctx);
void HandleListGroups(RequestContext& ctx);
void HandleDeleteGroups(RequestContext& ctx);
void HandleOffsetDelete(RequestContext& ctx);
void HandleDeleteRecords(RequestContext& ctx);
void HandleDescribeConfigs(RequestContext& ctx);
void HandleAlterConfigs(RequestContext& ctx);
void HandleIncrementalAlterConfigs(RequestContext& ctx);
void HandleDescribeCluster(RequestContext& ctx);
void HandleDescribeLogDirs(RequestContext& ctx);
void HandleInitProducerId(RequestContext& ctx);
void HandleAddPartitionsToTxn(RequestContext& ctx);
void HandleAddOffsetsToTxn(RequestContext& ctx);
void HandleEndTxn(RequestContext& ctx);
void HandleTxnOffsetCommit(RequestContext& ctx);
void HandleDescribeProducers(RequestContext& ctx);
void HandleDescribeTransactions(RequestContext& ctx);
void HandleListTransactions(RequestContext& ctx);

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_HANDLERS_H_
