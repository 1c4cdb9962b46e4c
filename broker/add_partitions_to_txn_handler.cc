// AddPartitionsToTxn (key 24): adds partitions to a producer's transaction (v0-3, one
// transaction per request, as clients send it), or, from v4 (sent by brokers for
// KIP-890's verification), to several transactions, each possibly verify-only. The
// transaction coordinator decides each partition's error; a v4+ transaction it refuses
// as a whole gets that error on every partition, as Kafka's.
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/errors.h"
#include "protocol/messages/add_partitions_to_txn_request.h"
#include "protocol/messages/add_partitions_to_txn_response.h"

namespace runnel::broker {

using protocol::AddPartitionsToTxnRequest;
using protocol::AddPartitionsToTxnResponse;
using protocol::ErrorCode;

namespace {

std::vector<AddPartitionsToTxnResponse::AddPartitionsToTxnTopicResult> AddToTransaction(
    TransactionCoordinator& coordinator, int16_t version, const std::string& transactional_id,
    int64_t producer_id, int16_t producer_epoch, bool verify_only,
    const std::vector<AddPartitionsToTxnRequest::AddPartitionsToTxnTopic>& topics) {
  std::vector<std::pair<std::string, int32_t>> partitions;
  for (const auto& topic : topics) {
    for (int32_t p : topic.partitions) partitions.emplace_back(topic.name, p);
  }
  std::vector<ErrorCode> errors;
  if (verify_only) {
    for (const auto& [topic, partition] : partitions) {
      errors.push_back(coordinator.VerifyPartitionInTransaction(transactional_id, producer_id,
                                                                producer_epoch, topic, partition));
    }
  } else {
    ErrorCode error = coordinator.AddPartitions(transactional_id, producer_id, producer_epoch,
                                                partitions, &errors);
    if (errors.size() != partitions.size()) errors.assign(partitions.size(), error);
  }
  std::vector<AddPartitionsToTxnResponse::AddPartitionsToTxnTopicResult> results;
  size_t i = 0;
  for (const auto& topic : topics) {
    auto& out = results.emplace_back();
    out.name = topic.name;
    for (int32_t p : topic.partitions) {
      out.results_by_partition.push_back(
          {p, protocol::Code(FencedErrorFor(errors[i++], version, 2))});
    }
  }
  return results;
}

}  // namespace

void HandleAddPartitionsToTxn(RequestContext& ctx) {
  AddPartitionsToTxnRequest request;
  if (!ctx.Decode(&request)) return;
  TransactionCoordinator& coordinator = ctx.broker().transactions();
  AddPartitionsToTxnResponse response;
  if (ctx.api_version() <= 3) {
    response.results_by_topic_v3_and_below =
        AddToTransaction(coordinator, ctx.api_version(), request.v3_and_below_transactional_id,
                         request.v3_and_below_producer_id, request.v3_and_below_producer_epoch,
                         /*verify_only=*/false, request.v3_and_below_topics);
  } else {
    for (const auto& txn : request.transactions) {
      auto& out = response.results_by_transaction.emplace_back();
      out.transactional_id = txn.transactional_id;
      out.topic_results =
          AddToTransaction(coordinator, ctx.api_version(), txn.transactional_id, txn.producer_id,
                           txn.producer_epoch, txn.verify_only, txn.topics);
    }
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
