// libFuzzer target: a request frame body as the broker receives it (header, then
// body), decoded with the generated header and request codecs for whichever API and
// version the first bytes name. Must never crash, hang or allocate without bound.
#include <cstddef>
#include <cstdint>

#include "protocol/messages/api_table.h"
#include "protocol/messages/request_header.h"
#include "protocol/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace runnel::protocol;
  Reader peek(reinterpret_cast<const char*>(data), size);
  int16_t key = peek.Int16();
  int16_t version = peek.Int16();
  const ApiInfo* api = FindApi(key);
  if (api == nullptr) return 0;
  Reader r(reinterpret_cast<const char*>(data), size);
  RequestHeader header;
  if (!header.Decode(r, version >= api->first_flexible_version ? 2 : 1)) return 0;
  DecodeRequest(key, version, std::string_view(r.position(), r.remaining()));
  return 0;
}
