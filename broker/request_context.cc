#include "broker/request_context.h"

#include "protocol/messages/api_table.h"

namespace runnel::broker {

int16_t RequestContext::ResponseHeaderVersion(int16_t api_key, int16_t api_version) {
  // ApiVersions always answers with header v0: the client reads it before it knows
  // which versions the broker speaks.
  if (api_key == protocol::api::kApiVersions) return 0;
  const protocol::ApiInfo* api = protocol::FindApi(api_key);
  return api && api_version >= api->first_flexible_version ? 1 : 0;
}

void RequestContext::BeginResponse(protocol::Writer& w, int16_t header_version) {
  w.Int32(0);  // frame size, filled in by FinishResponse
  protocol::ResponseHeader header;
  header.correlation_id = header_.correlation_id;
  header.Encode(w, header_version);
}

void RequestContext::FinishResponse(std::unique_ptr<protocol::Encoded> out, bool close_after) {
  uint64_t size = out->size() - 4;
  for (int i = 0; i < 4; ++i) out->bytes[i] = static_cast<char>(size >> (8 * (3 - i)));
  sink_(std::move(out), close_after);
}

}  // namespace runnel::broker
