// ApiVersions (key 18): the APIs and version ranges this broker serves, and (v3+) the
// one feature flag clients act on: transaction.version, supported 0-2 and finalized at
// 2, as a new Kafka 4.x cluster's, so that clients that know KIP-890 use transactions
// v2 (epoch bump per transaction, partitions added by Produce) and older ones the
// classic flow; the coordinator serves both.
#include "broker/dispatch.h"
#include "broker/handlers.h"
#include "protocol/errors.h"
#include "protocol/messages/api_versions_request.h"
#include "protocol/messages/api_versions_response.h"

namespace runnel::broker {

using protocol::ApiVersionsRequest;
using protocol::ApiVersionsResponse;

namespace {

// Kafka's rule for ClientSoftwareName/Version (v3+): alphanumerics, '-' and '.',
// starting and ending with an alphanumeric.
bool ValidSoftwareField(const std::string& s) {
  if (s.empty() || !isalnum(static_cast<unsigned char>(s.front())) ||
      !isalnum(static_cast<unsigned char>(s.back()))) {
    return false;
  }
  for (char c : s) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') return false;
  }
  return true;
}

constexpr char kTransactionVersionFeature[] = "transaction.version";
constexpr int16_t kTransactionVersion = 2;

}  // namespace

void HandleApiVersions(RequestContext& ctx) {
  ApiVersionsResponse response;
  if (ctx.api_version() > ApiVersionsRequest::kMaxVersion) {
    // Answer in v0 so the client can read it, with our ApiVersions range to retry in.
    response.error_code = protocol::Code(protocol::ErrorCode::kUnsupportedVersion);
    response.api_keys.push_back({ApiVersionsRequest::kApiKey, ApiVersionsRequest::kMinVersion,
                                 ApiVersionsRequest::kMaxVersion});
    return ctx.RespondAtVersion(response, 0);
  }
  ApiVersionsRequest request;
  if (!ctx.Decode(&request)) return;
  if (ctx.api_version() >= 3 && !(ValidSoftwareField(request.client_software_name) &&
                                  ValidSoftwareField(request.client_software_version))) {
    response.error_code = protocol::Code(protocol::ErrorCode::kInvalidRequest);
    return ctx.Respond(response);
  }
  for (const HandlerEntry& e : Handlers()) {
    response.api_keys.push_back({e.api_key, e.min_version, e.max_version});
  }
  response.supported_features.push_back({kTransactionVersionFeature, 0, kTransactionVersion});
  // Kafka's epoch is the offset of the metadata record that finalized the features; a
  // single broker's never change, so any non-negative constant does.
  response.finalized_features_epoch = 0;
  response.finalized_features.push_back(
      {kTransactionVersionFeature, kTransactionVersion, kTransactionVersion});
  ctx.Respond(response);
}

}  // namespace runnel::broker
