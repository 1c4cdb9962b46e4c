// Produce (key 0): validates each partition's record batch and appends it to the log.
// The log rewrites the batch's base offset in place; the batch is neither copied nor
// recompressed. With acks=0 there is no response, and an error closes the connection
// so that the client notices (as Kafka does). With log.fsync.before.ack, an acks=all
// request is answered once its partitions are fsynced (StorageTasks::FlushThen). An I/O
// error takes the log dir offline: KAFKA_STORAGE_ERROR from then on.
// Idempotent producers (storage/producer_state.h): a duplicate of one of the producer's
// last 5 batches is answered NONE with the original base offset and, as Kafka's
// UnifiedLog does, that batch's max timestamp as log_append_time; a sequence gap is
// OUT_OF_ORDER_SEQUENCE_NUMBER, an old epoch INVALID_PRODUCER_EPOCH, a plain write into
// an open transaction INVALID_TXN_STATE, each with the log start offset. Kafka 4's
// broker sends neither UNKNOWN_PRODUCER_ID nor DUPLICATE_SEQUENCE_NUMBER on this path.
// Transactional batches need the request's transactional id, and their partition must be
// in the producer's open transaction (KIP-890 verification; from v12 the write adds it).
#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/errors.h"
#include "protocol/messages/produce_request.h"
#include "protocol/messages/produce_response.h"
#include "protocol/record_batch.h"

namespace runnel::broker {

using protocol::ErrorCode;
using protocol::ProduceRequest;
using protocol::ProduceResponse;

namespace {

ErrorCode ValidationError(const absl::Status& s) {
  return s.code() == absl::StatusCode::kDataLoss ? ErrorCode::kCorruptMessage
                                                 : ErrorCode::kInvalidRecord;
}

ErrorCode ProducerStateError(storage::ProducerError error) {
  switch (error) {
    case storage::ProducerError::kOutOfOrderSequence:
      return ErrorCode::kOutOfOrderSequenceNumber;
    case storage::ProducerError::kInvalidProducerEpoch:
      return ErrorCode::kInvalidProducerEpoch;
    case storage::ProducerError::kInvalidTxnState:
      return ErrorCode::kInvalidTxnState;
    case storage::ProducerError::kTransactionCoordinatorFenced:  // markers only
      return ErrorCode::kTransactionCoordinatorFenced;
  }
  return ErrorCode::kUnknownServerError;
}

void AppendPartition(Broker& broker, const ProduceRequest& request, int16_t version,
                     const std::string& topic_name,
                     const ProduceRequest::PartitionProduceData& data,
                     ProduceResponse::PartitionProduceResponse* out) {
  auto fail = [out](ErrorCode error, std::string message = "") {
    out->error_code = protocol::Code(error);
    out->base_offset = -1;
    if (!message.empty()) out->error_message = std::move(message);
  };
  // Clients may not write the coordinators' internal topics (Kafka's answer).
  if (topic_name == kConsumerOffsetsTopic || topic_name == kTransactionStateTopic) {
    return fail(ErrorCode::kInvalidTopicException);
  }
  const storage::TopicMetadata* topic = broker.logs().FindTopic(topic_name);
  storage::PartitionLog* log = topic ? broker.logs().Partition(topic_name, data.index) : nullptr;
  if (log == nullptr) return fail(ErrorCode::kUnknownTopicOrPartition);
  if (broker.logs().offline()) return fail(ErrorCode::kKafkaStorageError);

  // Produce v3+ carries exactly one magic-2 batch per partition.
  std::string_view records = data.records.data;
  protocol::BatchIterator batches(records);
  std::string_view batch;
  protocol::BatchHeader header;
  if (!batches.Next(&batch, &header) || batch.size() != records.size()) {
    return fail(ErrorCode::kInvalidRecord,
                "Produce requests with version 3+ must have exactly one record batch per "
                "partition");
  }
  if (header.base_offset != 0) {
    return fail(ErrorCode::kInvalidRecord, "The baseOffset of the record batch in the append to " +
                                               topic_name + "-" + std::to_string(data.index) +
                                               " should be 0, but it is " +
                                               std::to_string(header.base_offset));
  }
  if (batch.size() > static_cast<size_t>(broker.MaxMessageBytes(*topic))) {
    return fail(ErrorCode::kMessageTooLarge);
  }
  std::string decompressed;  // compressed records are checked too, as Kafka does
  if (absl::Status s = protocol::ValidateBatch(batch, &decompressed); !s.ok()) {
    return fail(ValidationError(s), std::string(s.message()));
  }
  // Kafka's LogValidator.validateBatch for clients.
  // The partition's name is built only for an error message, never on the hot path.
  auto partition = [&] { return topic_name + "-" + std::to_string(data.index); };
  if (header.is_control()) {
    return fail(
        ErrorCode::kInvalidRecord,
        "Clients are not allowed to write control records in topic partition " + partition());
  }
  if (header.producer_id > storage::kNoProducerId && header.base_sequence < 0) {
    return fail(ErrorCode::kInvalidRecord,
                "Invalid sequence number " + std::to_string(header.base_sequence) +
                    " in record batch with producerId " + std::to_string(header.producer_id) +
                    " in topic partition " + partition());
  }
  if (header.is_transactional()) {
    // Kafka refuses transactional records without a transactional id the client may use.
    if (!request.transactional_id) return fail(ErrorCode::kTransactionalIdAuthorizationFailed);
    // KIP-890: the partition must be in the producer's open transaction; from v12
    // (transactions v2) the first write adds it.
    ErrorCode error = broker.transactions().VerifyPartition(
        *request.transactional_id, header.producer_id, header.producer_epoch, topic_name,
        data.index, ProduceVerifyOperation(version));
    if (error != ErrorCode::kNone) return fail(error);
  }
  // The batch lives in the request frame, which this request owns and never reuses.
  char* bytes = const_cast<char*>(batch.data());
  protocol::SetPartitionLeaderEpoch(bytes, 0);
  auto appended = log->Append(bytes, batch.size());
  if (!appended.ok()) {
    if (std::optional<storage::ProducerError> e = storage::ProducerErrorOf(appended.status())) {
      fail(ProducerStateError(*e));
      out->log_start_offset = log->log_start_offset();
      return;
    }
    // A batch larger than segment.bytes can never fit a segment.
    if (appended.status().code() == absl::StatusCode::kResourceExhausted) {
      return fail(ErrorCode::kRecordListTooLarge);
    }
    return fail(broker.ReportStorageError(appended.status()));
  }
  out->base_offset = appended->base_offset;
  if (appended->duplicate) out->log_append_time_ms = appended->duplicate->timestamp;
  out->log_start_offset = log->log_start_offset();
}

}  // namespace

void HandleProduce(RequestContext& ctx) {
  ProduceRequest request;
  if (!ctx.Decode(&request)) return;
  Broker& broker = ctx.broker();
  bool valid_acks = request.acks == 0 || request.acks == 1 || request.acks == -1;

  ProduceResponse response;
  bool any_error = false;
  bool any_appended = false;
  const bool fsync_before_ack = request.acks == -1 && broker.config().log_fsync_before_ack;
  std::vector<StorageTasks::Partition> to_flush;  // only with fsync_before_ack
  for (const auto& topic : request.topic_data) {
    auto& topic_response = response.responses.emplace_back();
    topic_response.name = topic.name;
    for (const auto& partition : topic.partition_data) {
      auto& out = topic_response.partition_responses.emplace_back();
      out.index = partition.index;
      if (valid_acks) {
        AppendPartition(broker, request, ctx.api_version(), topic.name, partition, &out);
      } else {
        out.error_code = protocol::Code(ErrorCode::kInvalidRequiredAcks);
        out.base_offset = -1;
      }
      any_error |= out.error_code != 0;
      if (out.error_code != 0) continue;
      any_appended = true;
      if (fsync_before_ack) to_flush.emplace_back(topic.name, partition.index);
    }
  }
  if (any_appended) broker.NotifyAppend();
  if (request.acks == 0) {
    any_error ? ctx.Close() : ctx.NoResponse();
  } else if (!to_flush.empty()) {
    auto shared = std::make_shared<RequestContext>(std::move(ctx));
    broker.storage_tasks().FlushThen(
        to_flush, [shared, response = std::move(response)](const absl::Status& flushed) mutable {
          // Not durable, so not acknowledged: the client retries.
          for (auto& topic : response.responses) {
            for (auto& p : topic.partition_responses) {
              if (flushed.ok() || p.error_code != 0) continue;
              p.error_code = protocol::Code(ErrorCode::kKafkaStorageError);
              p.base_offset = -1;
            }
          }
          shared->Respond(response);
        });
  } else {
    ctx.Respond(response);
  }
}

}  // namespace runnel::broker
