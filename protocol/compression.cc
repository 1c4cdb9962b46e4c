#include "protocol/compression.h"

#include <isa-l/igzip_lib.h>
#include <lz4frame.h>
#include <snappy.h>
#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "protocol/wire.h"

namespace runnel::protocol {
namespace {

// Decompression output buffer. It starts near a guess from the input size and grows by
// doubling only as the decoder really produces bytes, so hostile input cannot make it
// allocate ahead of real output; the cap is max_output + 1 so that "one byte too many"
// is detectable without a separate probe.
class BoundedOutput {
 public:
  explicit BoundedOutput(size_t max_output, size_t size_hint)
      : max_(max_output),
        cap_(max_output == std::numeric_limits<size_t>::max() ? max_output : max_output + 1) {
    out_.resize(std::min(cap_, std::max<size_t>(size_hint, 4096)));
  }

  // Makes room for more output; false once the cap is reached.
  bool Grow() {
    if (out_.size() >= cap_) return false;
    size_t next = out_.size() <= cap_ / 2 ? out_.size() * 2 : cap_;
    out_.resize(std::min(cap_, std::max<size_t>(next, 4096)));
    return true;
  }

  char* next() { return out_.data() + produced_; }
  size_t avail() const { return out_.size() - produced_; }
  void Advance(size_t n) { produced_ += n; }
  bool exceeded() const { return produced_ > max_; }

  absl::StatusOr<std::string> Finish() {
    if (exceeded()) return TooLarge(max_);
    out_.resize(produced_);
    return std::move(out_);
  }

  static absl::Status TooLarge(size_t max) {
    return absl::DataLossError(absl::StrCat("decompressed data exceeds ", max, " bytes"));
  }

 private:
  size_t max_;
  size_t cap_;
  size_t produced_ = 0;
  std::string out_;
};

// ---- gzip (ISA-L) ----

absl::StatusOr<std::string> GzipCompress(std::string_view input) {
  // ISA-L counts bytes in uint32_t; batches are far smaller (BatchLength is an int32).
  if (input.size() > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError("gzip input too large");
  }
  auto stream = std::make_unique<isal_zstream>();  // ~80 KiB of state: keep it off the stack
  isal_deflate_init(stream.get());
  std::vector<uint8_t> level_buf(ISAL_DEF_LVL1_DEFAULT);
  stream->level = 1;
  stream->level_buf = level_buf.data();
  stream->level_buf_size = static_cast<uint32_t>(level_buf.size());
  stream->gzip_flag = IGZIP_GZIP;
  stream->end_of_stream = 1;
  stream->next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(input.data()));
  stream->avail_in = static_cast<uint32_t>(input.size());

  std::string out(input.size() + input.size() / 8 + 1024, '\0');
  size_t produced = 0;
  while (stream->internal_state.state != ZSTATE_END) {
    size_t room = std::min<size_t>(out.size() - produced, std::numeric_limits<uint32_t>::max());
    stream->next_out = reinterpret_cast<uint8_t*>(out.data() + produced);
    stream->avail_out = static_cast<uint32_t>(room);
    uint32_t in_before = stream->avail_in;
    int ret = isal_deflate(stream.get());
    if (ret != COMP_OK) return absl::InternalError(absl::StrCat("isal_deflate failed: ", ret));
    produced += room - stream->avail_out;
    bool progress = stream->avail_out != room || stream->avail_in != in_before;
    if (produced == out.size() || !progress) out.resize(out.size() * 2);
  }
  out.resize(produced);
  return out;
}

bool StartsWithGzipMagic(const uint8_t* p, size_t n) {
  return n >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

// Decodes concatenated gzip members as Java's GZIPInputStream does, and like it ignores
// trailing bytes that do not start another member.
absl::StatusOr<std::string> GzipDecompress(std::string_view input, size_t max_output) {
  if (input.size() > std::numeric_limits<uint32_t>::max()) {
    return absl::DataLossError("gzip input too large");
  }
  auto state = std::make_unique<inflate_state>();  // ~85 KiB, like the deflate state
  isal_inflate_init(state.get());
  state->crc_flag = ISAL_GZIP;
  state->next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(input.data()));
  state->avail_in = static_cast<uint32_t>(input.size());
  BoundedOutput out(max_output, input.size() * 4);
  for (;;) {
    if (out.avail() == 0 && !out.Grow()) return BoundedOutput::TooLarge(max_output);
    uint32_t room =
        static_cast<uint32_t>(std::min<size_t>(out.avail(), std::numeric_limits<uint32_t>::max()));
    state->next_out = reinterpret_cast<uint8_t*>(out.next());
    state->avail_out = room;
    uint32_t in_before = state->avail_in;
    int ret = isal_inflate(state.get());
    if (ret == ISAL_NEED_DICT) return absl::DataLossError("gzip stream needs a dictionary");
    if (ret != ISAL_DECOMP_OK) {
      return absl::DataLossError(absl::StrCat("corrupt gzip data (isal error ", ret, ")"));
    }
    out.Advance(room - state->avail_out);
    if (out.exceeded()) return BoundedOutput::TooLarge(max_output);
    if (state->block_state == ISAL_BLOCK_FINISH) {  // member done, trailer verified
      uint8_t* rest = state->next_in;
      uint32_t rest_size = state->avail_in;
      if (!StartsWithGzipMagic(rest, rest_size)) break;
      isal_inflate_reset(state.get());
      state->crc_flag = ISAL_GZIP;
      state->next_in = rest;
      state->avail_in = rest_size;
      continue;
    }
    bool progress = state->avail_out != room || state->avail_in != in_before;
    // Room left over means the decoder stopped for want of input.
    if (state->avail_out != 0 && (state->avail_in == 0 || !progress)) {
      return absl::DataLossError("truncated or corrupt gzip data");
    }
  }
  return out.Finish();
}

// ---- snappy ----

constexpr char kXerialMagic[8] = {'\x82', 'S', 'N', 'A', 'P', 'P', 'Y', '\0'};
constexpr size_t kXerialHeaderSize = 16;        // magic, int32 version, int32 compatible version
constexpr size_t kXerialBlockSize = 32 * 1024;  // snappy-java's default

std::string SnappyCompress(std::string_view input) {
  std::string out(kXerialHeaderSize, '\0');
  std::memcpy(out.data(), kXerialMagic, sizeof(kXerialMagic));
  PutBigEndian(out.data() + 8, 1, 4);
  PutBigEndian(out.data() + 12, 1, 4);
  for (size_t pos = 0; pos < input.size(); pos += kXerialBlockSize) {
    size_t n = std::min(kXerialBlockSize, input.size() - pos);
    size_t at = out.size();
    out.resize(at + 4 + snappy::MaxCompressedLength(n));
    size_t written = 0;
    snappy::RawCompress(input.data() + pos, n, out.data() + at + 4, &written);
    PutBigEndian(out.data() + at, static_cast<uint32_t>(written), 4);
    out.resize(at + 4 + written);
  }
  return out;
}

// Appends one raw snappy block to *out, checking its declared size against the bound
// before allocating.
absl::Status SnappyRawAppend(std::string_view block, size_t max_output, std::string* out) {
  size_t n = 0;
  if (!snappy::GetUncompressedLength(block.data(), block.size(), &n)) {
    return absl::DataLossError("corrupt snappy block");
  }
  if (n > max_output - out->size()) return BoundedOutput::TooLarge(max_output);
  // A snappy element expands at most 64 bytes from 3 (a two-byte-offset copy), so a
  // larger claim is corrupt; checking it first avoids allocating for a lying header.
  if (n / 32 > block.size()) return absl::DataLossError("corrupt snappy block length");
  size_t at = out->size();
  out->resize(at + n);
  if (!snappy::RawUncompress(block.data(), block.size(), out->data() + at)) {
    return absl::DataLossError("corrupt snappy block");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SnappyDecompress(std::string_view input, size_t max_output) {
  std::string out;
  bool xerial = input.size() >= kXerialHeaderSize &&
                std::memcmp(input.data(), kXerialMagic, sizeof(kXerialMagic)) == 0;
  if (!xerial) {
    absl::Status s = SnappyRawAppend(input, max_output, &out);
    if (!s.ok()) return s;
    return out;
  }
  // The versions are not checked: every xerial writer uses 1 and 1, and snappy-java's
  // reader only insists on the magic.
  std::string_view rest = input.substr(kXerialHeaderSize);
  while (!rest.empty()) {
    if (rest.size() < 4) return absl::DataLossError("truncated xerial snappy block length");
    uint32_t len = static_cast<uint32_t>(GetBigEndian(rest.data(), 4));
    rest.remove_prefix(4);
    if (len > rest.size()) return absl::DataLossError("truncated xerial snappy block");
    absl::Status s = SnappyRawAppend(rest.substr(0, len), max_output, &out);
    if (!s.ok()) return s;
    rest.remove_prefix(len);
  }
  return out;
}

// ---- lz4 frame ----

// Written the way Kafka's Java client writes it (independent 64 KiB blocks, no
// checksums, no content size), which older Java readers also accept.
absl::StatusOr<std::string> Lz4Compress(std::string_view input) {
  LZ4F_preferences_t prefs;
  std::memset(&prefs, 0, sizeof(prefs));
  prefs.frameInfo.blockSizeID = LZ4F_max64KB;
  prefs.frameInfo.blockMode = LZ4F_blockIndependent;
  prefs.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum;
  prefs.frameInfo.blockChecksumFlag = LZ4F_noBlockChecksum;
  std::string out(LZ4F_compressFrameBound(input.size(), &prefs), '\0');
  size_t n = LZ4F_compressFrame(out.data(), out.size(), input.data(), input.size(), &prefs);
  if (LZ4F_isError(n)) {
    return absl::InternalError(absl::StrCat("lz4 compression failed: ", LZ4F_getErrorName(n)));
  }
  out.resize(n);
  return out;
}

struct Lz4DctxDeleter {
  void operator()(LZ4F_dctx* d) const { LZ4F_freeDecompressionContext(d); }
};

absl::StatusOr<std::string> Lz4Decompress(std::string_view input, size_t max_output) {
  LZ4F_dctx* raw = nullptr;
  if (LZ4F_isError(LZ4F_createDecompressionContext(&raw, LZ4F_VERSION))) {
    return absl::ResourceExhaustedError("cannot create lz4 context");
  }
  std::unique_ptr<LZ4F_dctx, Lz4DctxDeleter> dctx(raw);
  BoundedOutput out(max_output, input.size() * 4);
  const char* in = input.data();
  size_t in_left = input.size();
  size_t hint = 1;  // nonzero: a frame is expected
  while (in_left > 0 || hint != 0) {
    if (out.avail() == 0 && !out.Grow()) return BoundedOutput::TooLarge(max_output);
    size_t dst_size = out.avail();
    size_t src_size = in_left;
    hint = LZ4F_decompress(dctx.get(), out.next(), &dst_size, in, &src_size, nullptr);
    if (LZ4F_isError(hint)) {
      return absl::DataLossError(absl::StrCat("corrupt lz4 data: ", LZ4F_getErrorName(hint)));
    }
    out.Advance(dst_size);
    if (out.exceeded()) return BoundedOutput::TooLarge(max_output);
    if (dst_size == 0 && src_size == 0 && in_left > 0) {
      return absl::DataLossError("lz4 decoder made no progress");  // would loop forever
    }
    in += src_size;
    in_left -= src_size;
    // Out of input mid-frame, and the decoder did not stop for lack of output space.
    if (hint != 0 && in_left == 0 && out.avail() != 0) {
      return absl::DataLossError("truncated lz4 frame");
    }
    // hint == 0 ends a frame; LZ4F_decompress starts a new one if more input follows.
  }
  return out.Finish();
}

// ---- zstd ----

absl::StatusOr<std::string> ZstdCompress(std::string_view input) {
  std::string out(ZSTD_compressBound(input.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), input.data(), input.size(), ZSTD_CLEVEL_DEFAULT);
  if (ZSTD_isError(n)) {
    return absl::InternalError(absl::StrCat("zstd compression failed: ", ZSTD_getErrorName(n)));
  }
  out.resize(n);
  return out;
}

struct ZstdDctxDeleter {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// Streaming, so frames without a content size (zstd-jni's ZstdOutputStream) decode.
absl::StatusOr<std::string> ZstdDecompress(std::string_view input, size_t max_output) {
  std::unique_ptr<ZSTD_DCtx, ZstdDctxDeleter> dctx(ZSTD_createDCtx());
  if (!dctx) return absl::ResourceExhaustedError("cannot create zstd context");
  // The decoder allocates the window a frame declares. A window far beyond max_output
  // is useless, but ordinary encoders declare up to 2^23 (level 19) regardless of
  // content size, so allow at least that; 2^27 is zstd's default limit.
  int window_log = std::clamp(static_cast<int>(std::bit_width(max_output)), 23, 27);
  ZSTD_DCtx_setParameter(dctx.get(), ZSTD_d_windowLogMax, window_log);

  BoundedOutput out(max_output, input.size() * 4);
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  for (;;) {
    if (out.avail() == 0 && !out.Grow()) return BoundedOutput::TooLarge(max_output);
    ZSTD_outBuffer ob{out.next(), out.avail(), 0};
    size_t in_before = in.pos;
    size_t ret = ZSTD_decompressStream(dctx.get(), &ob, &in);
    if (ZSTD_isError(ret)) {
      return absl::DataLossError(absl::StrCat("corrupt zstd data: ", ZSTD_getErrorName(ret)));
    }
    out.Advance(ob.pos);
    if (out.exceeded()) return BoundedOutput::TooLarge(max_output);
    if (ob.pos == 0 && in.pos == in_before && in.pos < in.size) {
      return absl::DataLossError("zstd decoder made no progress");  // would loop forever
    }
    if (in.pos == in.size) {
      if (ret == 0) break;  // the last frame is complete
      // Output space left over means the decoder wants input that is not there.
      if (ob.pos < ob.size) return absl::DataLossError("truncated zstd frame");
    }
  }
  return out.Finish();
}

}  // namespace

absl::StatusOr<std::string> Compress(Compression codec, std::string_view input) {
  switch (codec) {
    case Compression::kNone:
      return std::string(input);
    case Compression::kGzip:
      return GzipCompress(input);
    case Compression::kSnappy:
      return SnappyCompress(input);
    case Compression::kLz4:
      return Lz4Compress(input);
    case Compression::kZstd:
      return ZstdCompress(input);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown compression codec ", static_cast<int>(codec)));
}

absl::StatusOr<std::string> Decompress(Compression codec, std::string_view input,
                                       size_t max_output) {
  switch (codec) {
    case Compression::kNone:
      if (input.size() > max_output) return BoundedOutput::TooLarge(max_output);
      return std::string(input);
    case Compression::kGzip:
      return GzipDecompress(input, max_output);
    case Compression::kSnappy:
      return SnappyDecompress(input, max_output);
    case Compression::kLz4:
      return Lz4Decompress(input, max_output);
    case Compression::kZstd:
      return ZstdDecompress(input, max_output);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown compression codec ", static_cast<int>(codec)));
}

}  // namespace runnel::protocol
