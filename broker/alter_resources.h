// The per-resource loop AlterConfigs and IncrementalAlterConfigs share. As Kafka's
// ConfigAdminManager, a resource named twice in one request fails (every time it appears)
// with INVALID_REQUEST; each other resource gets the result of `alter`.
#ifndef RUNNEL_BROKER_ALTER_RESOURCES_H_
#define RUNNEL_BROKER_ALTER_RESOURCES_H_

#include <optional>
#include <set>
#include <string>
#include <utility>

#include "broker/broker.h"
#include "protocol/errors.h"

namespace runnel::broker {

// Response has `responses` of {error_code, error_message, resource_type, resource_name};
// alter(resource) returns a TopicResult.
template <typename Response, typename Resources, typename Alter>
Response AlterEachResource(const Resources& resources, Alter alter) {
  std::multiset<std::pair<int8_t, std::string>> seen;
  for (const auto& r : resources) seen.insert({r.resource_type, r.resource_name});
  Response response;
  for (const auto& resource : resources) {
    TopicResult result = seen.count({resource.resource_type, resource.resource_name}) > 1
                             ? TopicResult{protocol::ErrorCode::kInvalidRequest,
                                           "Each resource must appear at most once.", nullptr}
                             : alter(resource);
    auto& out = response.responses.emplace_back();
    out.error_code = protocol::Code(result.error);
    out.error_message = result.error == protocol::ErrorCode::kNone
                            ? std::nullopt
                            : std::optional<std::string>(result.message);
    out.resource_type = resource.resource_type;
    out.resource_name = resource.resource_name;
  }
  return response;
}

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_ALTER_RESOURCES_H_
