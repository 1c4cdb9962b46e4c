// Record batch compression codecs, numbered as in the batch attributes (bits 0-2).
//
// gzip is RFC 1952 (ISA-L's inflate for speed); snappy accepts raw blocks (librdkafka)
// and xerial framing (the Java client: magic "\x82SNAPPY\0", two int32 versions, then
// int32-length-prefixed raw blocks) and writes xerial framing as Kafka does; lz4 is
// the LZ4 frame format; zstd is a zstd frame.
#ifndef RUNNEL_PROTOCOL_COMPRESSION_H_
#define RUNNEL_PROTOCOL_COMPRESSION_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace runnel::protocol {

enum class Compression : int8_t { kNone = 0, kGzip = 1, kSnappy = 2, kLz4 = 3, kZstd = 4 };

// Returns InvalidArgument for an unknown codec.
absl::StatusOr<std::string> Compress(Compression codec, std::string_view input);

// Fails with DataLoss on malformed input, or when the output would exceed max_output
// bytes (a bound against decompression bombs).
absl::StatusOr<std::string> Decompress(Compression codec, std::string_view input,
                                       size_t max_output);

}  // namespace runnel::protocol

#endif  // RUNNEL_PROTOCOL_COMPRESSION_H_
