// Request dispatch: parses a frame's request header, picks the handler for its API
// and version, and hands it a RequestContext.
//
// What a Kafka broker would reject while parsing closes the connection: an unknown
// API key, a version outside the schema's range, a header that does not parse. The
// one exception is ApiVersions at an unknown version, which is answered (in v0 format,
// UNSUPPORTED_VERSION) so that clients can negotiate down.
#ifndef RUNNEL_BROKER_DISPATCH_H_
#define RUNNEL_BROKER_DISPATCH_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "broker/request_context.h"

namespace runnel::broker {

using Handler = void (*)(RequestContext& ctx);

struct HandlerEntry {
  int16_t api_key;
  int16_t min_version;  // advertised; may be below what is served (see handlers.cc)
  int16_t max_version;
  Handler handler;
};

// The APIs this broker serves, sorted by key.
const std::vector<HandlerEntry>& Handlers();

void DispatchRequest(Broker* broker, std::shared_ptr<const ClientInfo> client, Frame frame,
                     ResponseSink sink);

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_DISPATCH_H_
