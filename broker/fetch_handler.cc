// Fetch (key 1): reads whole record batches from the partition logs as file ranges
// (sent with sendfile), honouring max_bytes, per-partition max bytes and KIP-74 (the
// first batch is returned even when it is larger). When fewer than min_bytes are
// available it long-polls: the answer is built again after each append and at
// max_wait_ms at the latest.
//
// isolation_level=read_committed (1) reads only below the last stable offset and lists
// the aborted transactions among the batches returned.
//
// Fetch sessions (KIP-227): no session is ever created (session_id 0 in every
// answer), which clients treat as "send full fetches"; an incremental fetch naming a
// session gets FETCH_SESSION_ID_NOT_FOUND, as from a broker whose session cache
// evicted it.
#include <algorithm>
#include <memory>

#include "broker/broker.h"
#include "broker/handlers.h"
#include "broker/topic_ids.h"
#include "protocol/errors.h"
#include "protocol/messages/fetch_request.h"
#include "protocol/messages/fetch_response.h"

namespace runnel::broker {

using protocol::ErrorCode;
using protocol::FetchRequest;
using protocol::FetchResponse;

namespace {

struct FetchResult {
  FetchResponse response;
  uint64_t bytes = 0;
  bool any_error = false;
};

void ReadPartition(storage::PartitionLog* log, const FetchRequest::FetchPartition& wanted,
                   bool read_committed, uint64_t limit, bool* min_one_batch,
                   FetchResponse::PartitionData* out, FetchResult* result) {
  out->high_watermark = log->log_end_offset();
  const int64_t last_stable = log->last_stable_offset();
  out->last_stable_offset = last_stable;
  out->log_start_offset = log->log_start_offset();
  if (!read_committed) out->aborted_transactions.reset();
  // read_committed: nothing at or past the first open transaction's first batch.
  auto read = log->Read(wanted.fetch_offset, limit, *min_one_batch,
                        read_committed ? last_stable : INT64_MAX);
  if (!read.ok()) {
    out->error_code = protocol::Code(read.status().code() == absl::StatusCode::kOutOfRange
                                         ? ErrorCode::kOffsetOutOfRange
                                         : ErrorCode::kKafkaStorageError);
    out->high_watermark = -1;
    out->last_stable_offset = -1;
    out->log_start_offset = -1;
    result->any_error = true;
    return;
  }
  for (auto& range : read->ranges) {
    out->records.slices.push_back(
        {range.fd, range.position, range.length, std::move(range.keep_alive)});
  }
  if (read_committed && read->bytes > 0) {
    // The aborted transactions the returned batches may belong to, for the consumer to
    // drop their records (Kafka's collectAbortedTransactions).
    for (const storage::AbortedTxn& txn :
         log->AbortedTransactions(wanted.fetch_offset, read->next_offset)) {
      out->aborted_transactions->push_back({txn.producer_id, txn.first_offset});
    }
  }
  if (read->bytes > 0) *min_one_batch = false;
  result->bytes += read->bytes;
}

FetchResult BuildFetch(Broker& broker, const FetchRequest& request, int16_t version) {
  FetchResult result;
  FetchResponse& response = result.response;
  // Epochs 0 and -1 ask for a full fetch (opening or closing a session), which is
  // served; any other epoch names an incremental session, which never exists here.
  bool full_fetch = request.session_epoch == 0 || request.session_epoch == -1;
  if (request.session_id != 0 && !full_fetch) {
    response.error_code = protocol::Code(ErrorCode::kFetchSessionIdNotFound);
    result.any_error = true;
    return result;
  }
  bool by_id = version >= 13;
  bool read_committed = request.isolation_level == 1;
  uint64_t remaining = static_cast<uint64_t>(std::max(request.max_bytes, 0));
  bool min_one_batch = true;
  for (const auto& topic : request.topics) {
    auto& topic_out = response.responses.emplace_back();
    topic_out.topic = topic.topic;
    topic_out.topic_id = topic.topic_id;
    const storage::TopicMetadata* meta = by_id
                                             ? broker.logs().FindTopicById(FromUuid(topic.topic_id))
                                             : broker.logs().FindTopic(topic.topic);
    for (const auto& wanted : topic.partitions) {
      auto& out = topic_out.partitions.emplace_back();
      out.partition_index = wanted.partition;
      storage::PartitionLog* log =
          meta ? broker.logs().Partition(meta->name, wanted.partition) : nullptr;
      if (log == nullptr) {
        out.error_code =
            protocol::Code(meta == nullptr && by_id ? ErrorCode::kUnknownTopicId
                                                    : ErrorCode::kUnknownTopicOrPartition);
        out.high_watermark = -1;
        out.last_stable_offset = -1;
        out.log_start_offset = -1;
        result.any_error = true;
        continue;
      }
      uint64_t limit = std::min<uint64_t>(std::max(wanted.partition_max_bytes, 0), remaining);
      ReadPartition(log, wanted, read_committed, limit, &min_one_batch, &out, &result);
      remaining -= std::min<uint64_t>(remaining, out.records.size());
    }
  }
  return result;
}

// Kafka answers at once on an error or when min_bytes are there (min_bytes <= 0: always).
bool Satisfied(const FetchRequest& request, const FetchResult& result) {
  return result.any_error || request.min_bytes <= 0 ||
         result.bytes >= static_cast<uint64_t>(request.min_bytes);
}

// A fetch waiting for data: answered by the first append that brings min_bytes, or by
// the timer.
struct PendingFetch : std::enable_shared_from_this<PendingFetch> {
  PendingFetch(RequestContext ctx, FetchRequest request)
      : ctx(std::move(ctx)), request(std::move(request)), timer(this->ctx.broker().io()) {}

  void Finish(FetchResult result) {
    if (done) return;
    done = true;
    timer.cancel();
    ctx.broker().RemoveAppendListener(listener);
    listener.reset();  // breaks the cycle listener -> this
    ctx.Respond(result.response);
  }

  RequestContext ctx;
  FetchRequest request;
  asio::steady_timer timer;
  std::shared_ptr<Broker::AppendListener> listener;
  bool done = false;
};

}  // namespace

void HandleFetch(RequestContext& ctx) {
  FetchRequest request;
  if (!ctx.Decode(&request)) return;
  Broker& broker = ctx.broker();
  FetchResult result = BuildFetch(broker, request, ctx.api_version());
  if (Satisfied(request, result) || request.max_wait_ms <= 0 || request.topics.empty()) {
    return ctx.Respond(result.response);
  }

  auto pending = std::make_shared<PendingFetch>(std::move(ctx), std::move(request));
  pending->listener = std::make_shared<Broker::AppendListener>([p = pending.get()] {
    FetchResult r = BuildFetch(p->ctx.broker(), p->request, p->ctx.api_version());
    if (!Satisfied(p->request, r)) return false;
    p->Finish(std::move(r));
    return true;
  });
  // The listener's raw pointer stays valid: the timer's handler holds a reference
  // until the fetch is finished, and Finish removes the listener.
  broker.AddAppendListener(pending->listener);
  pending->timer.expires_after(std::chrono::milliseconds(pending->request.max_wait_ms));
  pending->timer.async_wait([pending](asio::error_code) {
    if (pending->done) return;
    pending->Finish(
        BuildFetch(pending->ctx.broker(), pending->request, pending->ctx.api_version()));
  });
}

}  // namespace runnel::broker
