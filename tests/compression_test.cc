// Codec round trips, interop with streams made by the reference libraries and CLIs,
// xerial snappy framing, and the decompression bound.
#include "protocol/compression.h"

#include <lz4frame.h>
#include <snappy.h>
#include <zlib.h>
#include <zstd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace runnel::protocol {
namespace {

constexpr Compression kCodecs[] = {Compression::kGzip, Compression::kSnappy, Compression::kLz4,
                                   Compression::kZstd};

std::string CodecName(Compression c) {
  switch (c) {
    case Compression::kNone:
      return "none";
    case Compression::kGzip:
      return "gzip";
    case Compression::kSnappy:
      return "snappy";
    case Compression::kLz4:
      return "lz4";
    case Compression::kZstd:
      return "zstd";
  }
  return "?";
}

// Half repetitive text, half xorshift noise, so that every codec emits both compressed
// and stored blocks; 300 KB spans many xerial (32 KiB) and lz4 (64 KiB) blocks.
std::string MixedData(size_t size) {
  std::string s;
  s.reserve(size);
  uint64_t x = 88172645463325252ull;
  while (s.size() < size) {
    if ((s.size() / 5000) % 2 == 0) {
      s += "offset=" + std::to_string(s.size()) + " key=user-42 value=clicked;";
    } else {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      s.push_back(static_cast<char>(x));
    }
  }
  s.resize(size);
  return s;
}

std::string Bytes(std::initializer_list<uint8_t> b) { return std::string(b.begin(), b.end()); }

class CodecTest : public ::testing::TestWithParam<Compression> {};

TEST_P(CodecTest, RoundTrips) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{100}, size_t{300000}}) {
    std::string input = MixedData(size);
    absl::StatusOr<std::string> packed = Compress(GetParam(), input);
    ASSERT_TRUE(packed.ok()) << packed.status();
    absl::StatusOr<std::string> plain = Decompress(GetParam(), *packed, input.size());
    ASSERT_TRUE(plain.ok()) << size << ": " << plain.status();
    EXPECT_EQ(*plain, input) << size;
  }
}

TEST_P(CodecTest, CompressesRepetitiveData) {
  std::string input(100000, 'a');
  absl::StatusOr<std::string> packed = Compress(GetParam(), input);
  ASSERT_TRUE(packed.ok());
  EXPECT_LT(packed->size(), input.size() / 10);
}

TEST_P(CodecTest, EnforcesOutputBound) {
  std::string input = MixedData(100000);
  absl::StatusOr<std::string> packed = Compress(GetParam(), input);
  ASSERT_TRUE(packed.ok());
  EXPECT_TRUE(Decompress(GetParam(), *packed, input.size()).ok());
  absl::StatusOr<std::string> over = Decompress(GetParam(), *packed, input.size() - 1);
  EXPECT_EQ(over.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Decompress(GetParam(), *packed, 10).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Decompress(GetParam(), *packed, 0).status().code(), absl::StatusCode::kDataLoss);
}

// A small input that inflates enormously must stop at the bound, not at the end.
TEST_P(CodecTest, StopsDecompressionBomb) {
  std::string input(16 << 20, '\0');
  absl::StatusOr<std::string> packed = Compress(GetParam(), input);
  ASSERT_TRUE(packed.ok());
  ASSERT_LT(packed->size(), size_t{1} << 20);
  absl::StatusOr<std::string> plain = Decompress(GetParam(), *packed, 1 << 20);
  EXPECT_EQ(plain.status().code(), absl::StatusCode::kDataLoss);
}

TEST_P(CodecTest, RejectsTruncatedInput) {
  std::string input = MixedData(50000);
  absl::StatusOr<std::string> packed = Compress(GetParam(), input);
  ASSERT_TRUE(packed.ok());
  for (size_t keep : {size_t{0}, size_t{3}, packed->size() / 2, packed->size() - 1}) {
    absl::StatusOr<std::string> plain =
        Decompress(GetParam(), std::string_view(*packed).substr(0, keep), 1 << 20);
    EXPECT_EQ(plain.status().code(), absl::StatusCode::kDataLoss) << keep;
  }
}

TEST_P(CodecTest, RejectsGarbage) {
  std::string garbage = "\x12\x34 this is not compressed data at all \xff\xfe";
  EXPECT_EQ(Decompress(GetParam(), garbage, 1 << 20).status().code(), absl::StatusCode::kDataLoss);
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, CodecTest, ::testing::ValuesIn(kCodecs),
                         [](const auto& info) { return CodecName(info.param); });

TEST(Compression, NoneIsIdentityAndBounded) {
  EXPECT_EQ(*Compress(Compression::kNone, "abc"), "abc");
  EXPECT_EQ(*Decompress(Compression::kNone, "abc", 3), "abc");
  EXPECT_EQ(Decompress(Compression::kNone, "abc", 2).status().code(), absl::StatusCode::kDataLoss);
}

TEST(Compression, UnknownCodecIsInvalidArgument) {
  EXPECT_EQ(Compress(static_cast<Compression>(5), "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Decompress(static_cast<Compression>(7), "x", 10).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---- snappy ----

std::string RawSnappy(std::string_view s) {
  std::string out;
  snappy::Compress(s.data(), s.size(), &out);
  return out;
}

std::string BigEndian32(uint32_t v) {
  return Bytes({static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
                static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)});
}

const std::string kXerialHeader =
    Bytes({0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1});

TEST(Snappy, DecodesHandMadeXerialFrame) {
  std::string a = RawSnappy("hello, ");
  std::string b = RawSnappy("xerial world");
  std::string frame = kXerialHeader + BigEndian32(a.size()) + a + BigEndian32(b.size()) + b;
  absl::StatusOr<std::string> plain = Decompress(Compression::kSnappy, frame, 100);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, "hello, xerial world");
  // Only the header: an empty stream.
  EXPECT_EQ(*Decompress(Compression::kSnappy, kXerialHeader, 100), "");
}

TEST(Snappy, DecodesRawBlockAsLibrdkafkaWrites) {
  std::string raw = RawSnappy("raw snappy from librdkafka, raw snappy from librdkafka");
  absl::StatusOr<std::string> plain = Decompress(Compression::kSnappy, raw, 100);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, "raw snappy from librdkafka, raw snappy from librdkafka");
}

TEST(Snappy, WritesXerialFramingLikeJava) {
  std::string input = MixedData(70000);  // 32 KiB + 32 KiB + 4464 bytes
  absl::StatusOr<std::string> packed = Compress(Compression::kSnappy, input);
  ASSERT_TRUE(packed.ok());
  ASSERT_EQ(packed->substr(0, 16), kXerialHeader);
  std::string_view rest = std::string_view(*packed).substr(16);
  std::string joined;
  int blocks = 0;
  while (!rest.empty()) {
    ASSERT_GE(rest.size(), 4u);
    uint32_t len = static_cast<uint32_t>(static_cast<uint8_t>(rest[0])) << 24 |
                   static_cast<uint32_t>(static_cast<uint8_t>(rest[1])) << 16 |
                   static_cast<uint32_t>(static_cast<uint8_t>(rest[2])) << 8 |
                   static_cast<uint8_t>(rest[3]);
    ASSERT_LE(len, rest.size() - 4);
    std::string block;
    ASSERT_TRUE(snappy::Uncompress(rest.data() + 4, len, &block));
    EXPECT_LE(block.size(), 32u * 1024);
    joined += block;
    rest.remove_prefix(4 + len);
    ++blocks;
  }
  EXPECT_EQ(blocks, 3);
  EXPECT_EQ(joined, input);
}

TEST(Snappy, RejectsBadXerialBlocks) {
  std::string a = RawSnappy("abc");
  // Block length runs past the end.
  std::string frame = kXerialHeader + BigEndian32(a.size() + 1) + a;
  EXPECT_EQ(Decompress(Compression::kSnappy, frame, 100).status().code(),
            absl::StatusCode::kDataLoss);
  // A partial length prefix.
  frame = kXerialHeader + BigEndian32(a.size()) + a + std::string(2, '\0');
  EXPECT_EQ(Decompress(Compression::kSnappy, frame, 100).status().code(),
            absl::StatusCode::kDataLoss);
  // Blocks that together exceed the bound.
  std::string b = RawSnappy(std::string(60, 'b'));
  frame = kXerialHeader + BigEndian32(b.size()) + b + BigEndian32(b.size()) + b;
  EXPECT_TRUE(Decompress(Compression::kSnappy, frame, 120).ok());
  EXPECT_EQ(Decompress(Compression::kSnappy, frame, 119).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(Snappy, RejectsLyingLengthWithoutAllocating) {
  // Varint 0xFFFFFFFF: claims 4 GiB from six bytes.
  std::string raw = Bytes({0xff, 0xff, 0xff, 0xff, 0x0f, 0x00});
  EXPECT_EQ(Decompress(Compression::kSnappy, raw, size_t{8} << 30).status().code(),
            absl::StatusCode::kDataLoss);
}

// ---- gzip ----

std::string ZlibGzip(std::string_view s, int level) {
  z_stream z;
  std::memset(&z, 0, sizeof(z));
  EXPECT_EQ(deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, s.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(s.data()));
  z.avail_in = static_cast<uInt>(s.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string ZlibGunzip(std::string_view s) {
  z_stream z;
  std::memset(&z, 0, sizeof(z));
  EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
  std::string out;
  char buf[4096];
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(s.data()));
  z.avail_in = static_cast<uInt>(s.size());
  int ret;
  do {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof(buf);
    ret = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - z.avail_out);
  } while (ret == Z_OK);
  EXPECT_EQ(ret, Z_STREAM_END);
  inflateEnd(&z);
  return out;
}

TEST(Gzip, DecodesZlibStreams) {
  std::string input = MixedData(200000);
  for (int level : {1, 6, 9}) {
    absl::StatusOr<std::string> plain =
        Decompress(Compression::kGzip, ZlibGzip(input, level), input.size());
    ASSERT_TRUE(plain.ok()) << plain.status();
    EXPECT_EQ(*plain, input);
  }
}

TEST(Gzip, OutputIsStandardGzip) {
  std::string input = MixedData(200000);
  absl::StatusOr<std::string> packed = Compress(Compression::kGzip, input);
  ASSERT_TRUE(packed.ok());
  ASSERT_GE(packed->size(), 18u);
  EXPECT_EQ(packed->substr(0, 3), Bytes({0x1f, 0x8b, 0x08}));
  EXPECT_EQ(ZlibGunzip(*packed), input);
}

TEST(Gzip, DecodesCliMemberWithFileName) {
  // `gzip -c gzname.txt`: FNAME flag set, file name in the header.
  std::string member =
      Bytes({0x1f, 0x8b, 0x08, 0x08, 0x5d, 0xab, 0x06, 0x6b, 0x00, 0x03, 0x67, 0x7a, 0x6e,
             0x61, 0x6d, 0x65, 0x2e, 0x74, 0x78, 0x74, 0x00, 0x4b, 0xaf, 0xca, 0x2c, 0x50,
             0x48, 0xce, 0xc9, 0x54, 0xc8, 0x4d, 0xcd, 0x4d, 0x4a, 0x2d, 0x52, 0x28, 0xcf,
             0x2c, 0xc9, 0x50, 0x48, 0x54, 0x48, 0xcb, 0xcc, 0x49, 0x55, 0xc8, 0x4b, 0xcc,
             0x4d, 0xe5, 0x02, 0x00, 0x33, 0xd8, 0x56, 0x28, 0x21, 0x00, 0x00, 0x00});
  absl::StatusOr<std::string> plain = Decompress(Compression::kGzip, member, 100);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, "gzip cli member with a file name\n");
}

TEST(Gzip, DecodesConcatenatedMembersAndIgnoresTrailingBytes) {
  std::string two = ZlibGzip("first member|", 6) + ZlibGzip("second member", 6);
  absl::StatusOr<std::string> plain = Decompress(Compression::kGzip, two, 100);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, "first member|second member");
  // Java's GZIPInputStream ignores bytes after a member that are not another member.
  plain = Decompress(Compression::kGzip, ZlibGzip("payload", 6) + std::string(5, '\0'), 100);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, "payload");
}

TEST(Gzip, ChecksTrailer) {
  std::string member = ZlibGzip("checked by crc32", 6);
  member[member.size() - 6] ^= 0x01;  // inside the CRC-32 of the trailer
  EXPECT_EQ(Decompress(Compression::kGzip, member, 100).status().code(),
            absl::StatusCode::kDataLoss);
  member = ZlibGzip("checked by isize", 6);
  member[member.size() - 1] ^= 0x01;  // inside ISIZE
  EXPECT_EQ(Decompress(Compression::kGzip, member, 100).status().code(),
            absl::StatusCode::kDataLoss);
}

// ---- lz4 ----

TEST(Lz4, DecodesCliFrame) {
  // `lz4 -c lzin.txt` (v1.9.4): FLG 0x64 = independent blocks with a content checksum.
  std::string frame =
      Bytes({0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7, 0x21, 0x00, 0x00, 0x00, 0xff, 0x07,
             0x72, 0x75, 0x6e, 0x6e, 0x65, 0x6c, 0x20, 0x6c, 0x7a, 0x34, 0x20, 0x63, 0x6c,
             0x69, 0x20, 0x66, 0x72, 0x61, 0x6d, 0x65, 0x2c, 0x20, 0x16, 0x00, 0x13, 0x50,
             0x72, 0x61, 0x6d, 0x65, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x7d, 0x8e, 0x22, 0x8a});
  absl::StatusOr<std::string> plain = Decompress(Compression::kLz4, frame, 1000);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, "runnel lz4 cli frame, runnel lz4 cli frame, runnel lz4 cli frame\n");
  frame[frame.size() - 1] ^= 0x01;  // content checksum
  EXPECT_EQ(Decompress(Compression::kLz4, frame, 1000).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(Lz4, DecodesLinkedBlocksWithChecksumsAndContentSize) {
  std::string input = MixedData(300000);
  LZ4F_preferences_t prefs;
  std::memset(&prefs, 0, sizeof(prefs));
  prefs.frameInfo.blockSizeID = LZ4F_max256KB;
  prefs.frameInfo.blockMode = LZ4F_blockLinked;
  prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
  prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
  prefs.frameInfo.contentSize = input.size();
  std::string frame(LZ4F_compressFrameBound(input.size(), &prefs), '\0');
  size_t n = LZ4F_compressFrame(frame.data(), frame.size(), input.data(), input.size(), &prefs);
  ASSERT_FALSE(LZ4F_isError(n));
  frame.resize(n);
  absl::StatusOr<std::string> plain = Decompress(Compression::kLz4, frame, input.size());
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, input);
}

TEST(Lz4, WritesKafkaStyleFrameDescriptor) {
  absl::StatusOr<std::string> packed = Compress(Compression::kLz4, MixedData(1000));
  ASSERT_TRUE(packed.ok());
  ASSERT_GE(packed->size(), 7u);
  // Magic, FLG (version 1, independent blocks, no checksums, no content size), BD (64 KiB).
  EXPECT_EQ(packed->substr(0, 6), Bytes({0x04, 0x22, 0x4d, 0x18, 0x60, 0x40}));
  // The descriptor checksum is over FLG and BD only (old Kafka wrongly included the
  // magic); byte 6 is (xxh32 >> 8) & 0xff, which LZ4F verifies on decode.
  std::string bad = *packed;
  bad[6] ^= 0x01;
  EXPECT_EQ(Decompress(Compression::kLz4, bad, 1000).status().code(), absl::StatusCode::kDataLoss);
}

TEST(Lz4, DecodesConcatenatedFramesAndRejectsTrailingGarbage) {
  std::string two = *Compress(Compression::kLz4, "one,") + *Compress(Compression::kLz4, "two");
  EXPECT_EQ(*Decompress(Compression::kLz4, two, 100), "one,two");
  EXPECT_EQ(Decompress(Compression::kLz4, *Compress(Compression::kLz4, "x") + "junk", 100)
                .status()
                .code(),
            absl::StatusCode::kDataLoss);
}

// ---- zstd ----

TEST(Zstd, DecodesFrameWithoutContentSize) {
  // What zstd-jni's ZstdOutputStream writes: the size is unknown up front.
  std::string input = MixedData(300000);
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  std::string frame(ZSTD_compressBound(input.size()), '\0');
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  ZSTD_outBuffer out{frame.data(), frame.size(), 0};
  ASSERT_EQ(ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_end), 0u);
  ZSTD_freeCCtx(cctx);
  frame.resize(out.pos);
  ASSERT_EQ(ZSTD_getFrameContentSize(frame.data(), frame.size()), ZSTD_CONTENTSIZE_UNKNOWN);
  absl::StatusOr<std::string> plain = Decompress(Compression::kZstd, frame, input.size());
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, input);
  frame[frame.size() - 2] ^= 0x01;  // the content checksum
  EXPECT_EQ(Decompress(Compression::kZstd, frame, input.size()).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(Zstd, DecodesConcatenatedFrames) {
  std::string two = *Compress(Compression::kZstd, "one,") + *Compress(Compression::kZstd, "two");
  EXPECT_EQ(*Decompress(Compression::kZstd, two, 100), "one,two");
}

TEST(Zstd, RejectsHugeWindowBeyondLimit) {
  // A frame declaring a 32 MiB window (Window_Descriptor exponent 15 -> 2^25), not
  // single-segment, no content size, then one empty last block. Within zstd's own
  // limit, but with a 1 MiB bound the decoder must refuse rather than allocate it.
  std::string frame = Bytes({0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x78, 0x01, 0x00, 0x00});
  EXPECT_EQ(*Decompress(Compression::kZstd, frame, 64 << 20), "");
  EXPECT_EQ(Decompress(Compression::kZstd, frame, 1 << 20).status().code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace runnel::protocol
