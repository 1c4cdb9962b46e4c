// Golden bytes for every wire primitive, in both the classic and the compact
// (flexible-version) encodings, and the Reader's behaviour on hostile input.
#include "protocol/wire.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "absl/strings/escaping.h"

namespace runnel::protocol {
namespace {

template <typename F>
std::string Hex(F write) {
  Encoded out;
  Writer w(&out);
  write(w);
  return absl::BytesToHexString(out.bytes);
}

Reader FromHex(const std::string& hex, std::string* storage) {
  *storage = absl::HexStringToBytes(hex);
  return Reader(*storage);
}

TEST(Wire, FixedWidthIntegersAreBigEndian) {
  EXPECT_EQ(Hex([](Writer& w) { w.Int8(-2); }), "fe");
  EXPECT_EQ(Hex([](Writer& w) { w.Int16(0x0102); }), "0102");
  EXPECT_EQ(Hex([](Writer& w) { w.Int16(-1); }), "ffff");
  EXPECT_EQ(Hex([](Writer& w) { w.Int32(0x01020304); }), "01020304");
  EXPECT_EQ(Hex([](Writer& w) { w.Int64(-2); }), "fffffffffffffffe");
  EXPECT_EQ(Hex([](Writer& w) { w.Uint16(0xfffe); }), "fffe");
  EXPECT_EQ(Hex([](Writer& w) { w.Uint32(0xfffffffe); }), "fffffffe");
  EXPECT_EQ(Hex([](Writer& w) { w.Bool(true); }), "01");
  EXPECT_EQ(Hex([](Writer& w) { w.Float64(1.5); }), "3ff8000000000000");

  std::string s;
  Reader r = FromHex("fe0102fffffffe0102030401", &s);
  EXPECT_EQ(r.Int8(), -2);
  EXPECT_EQ(r.Int16(), 0x0102);
  EXPECT_EQ(r.Uint32(), 0xfffffffeu);
  EXPECT_EQ(r.Int32(), 0x01020304);
  EXPECT_TRUE(r.Bool());
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(Wire, UnsignedVarint) {
  EXPECT_EQ(Hex([](Writer& w) { w.UnsignedVarint(0); }), "00");
  EXPECT_EQ(Hex([](Writer& w) { w.UnsignedVarint(127); }), "7f");
  EXPECT_EQ(Hex([](Writer& w) { w.UnsignedVarint(300); }), "ac02");
  EXPECT_EQ(Hex([](Writer& w) { w.UnsignedVarint(0xffffffff); }), "ffffffff0f");
  EXPECT_EQ(Writer::UnsignedVarintSize(300), 2u);
  std::string s;
  Reader r = FromHex("ac02ffffffff0f", &s);
  EXPECT_EQ(r.UnsignedVarint(), 300u);
  EXPECT_EQ(r.UnsignedVarint(), 0xffffffffu);
  EXPECT_TRUE(r.ok());
}

TEST(Wire, ZigZagVarintAndVarlong) {
  EXPECT_EQ(Hex([](Writer& w) { w.Varint(0); }), "00");
  EXPECT_EQ(Hex([](Writer& w) { w.Varint(-1); }), "01");
  EXPECT_EQ(Hex([](Writer& w) { w.Varint(1); }), "02");
  EXPECT_EQ(Hex([](Writer& w) { w.Varint(-2); }), "03");
  EXPECT_EQ(Hex([](Writer& w) { w.Varint(std::numeric_limits<int32_t>::min()); }), "ffffffff0f");
  EXPECT_EQ(Hex([](Writer& w) { w.Varlong(std::numeric_limits<int64_t>::min()); }),
            "ffffffffffffffffff01");
  std::string s;
  Reader r = FromHex("0301ffffffff0fffffffffffffffffff01", &s);
  EXPECT_EQ(r.Varint(), -2);
  EXPECT_EQ(r.Varint(), -1);
  EXPECT_EQ(r.Varint(), std::numeric_limits<int32_t>::min());
  EXPECT_EQ(r.Varlong(), std::numeric_limits<int64_t>::min());
  EXPECT_TRUE(r.ok());
}

TEST(Wire, StringsClassicAndCompact) {
  EXPECT_EQ(Hex([](Writer& w) { w.String("ab", false); }), "00026162");
  EXPECT_EQ(Hex([](Writer& w) { w.String("ab", true); }), "036162");
  EXPECT_EQ(Hex([](Writer& w) { w.NullableString(std::nullopt, false); }), "ffff");
  EXPECT_EQ(Hex([](Writer& w) { w.NullableString(std::nullopt, true); }), "00");
  EXPECT_EQ(Hex([](Writer& w) { w.NullableString(std::string(), true); }), "01");
  std::string s;
  Reader r = FromHex("00026162036162ffff00", &s);
  EXPECT_EQ(r.String(false), "ab");
  EXPECT_EQ(r.String(true), "ab");
  EXPECT_EQ(r.NullableString(false), std::nullopt);
  EXPECT_EQ(r.NullableString(true), std::nullopt);
  EXPECT_TRUE(r.ok());
}

TEST(Wire, BytesArraysAndRecords) {
  EXPECT_EQ(Hex([](Writer& w) { w.ByteString(std::string("\x00\x01", 2), false); }),
            "000000020001");
  EXPECT_EQ(Hex([](Writer& w) { w.ByteString(std::string("\x00\x01", 2), true); }), "030001");
  EXPECT_EQ(Hex([](Writer& w) { w.NullableByteString(std::nullopt, false); }), "ffffffff");
  EXPECT_EQ(Hex([](Writer& w) { w.ArrayLength(2, false); }), "00000002");
  EXPECT_EQ(Hex([](Writer& w) { w.ArrayLength(2, true); }), "03");
  EXPECT_EQ(Hex([](Writer& w) { w.ArrayLength(-1, true); }), "00");
  Records null_records;
  null_records.is_null = true;
  EXPECT_EQ(Hex([&](Writer& w) { w.WriteRecords(null_records, true); }), "00");
  EXPECT_EQ(Hex([](Writer& w) { w.WriteRecords(Records::Own("xy"), false); }), "000000027879");
}

TEST(Wire, UuidIsSixteenRawBytes) {
  Uuid u;
  for (int i = 0; i < 16; ++i) u.bytes[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(Hex([&](Writer& w) { w.WriteUuid(u); }), "000102030405060708090a0b0c0d0e0f");
}

TEST(Wire, RecordsWithFileSlicesRecordSplicePoints) {
  Records r;
  r.slices.push_back({7, 100, 50, nullptr});
  Encoded out;
  Writer w(&out);
  w.Int8(1);
  w.WriteRecords(r, true);
  w.Int8(2);
  EXPECT_EQ(absl::BytesToHexString(out.bytes),
            "01"
            "33"
            "02");  // uvarint 51
  ASSERT_EQ(out.splices.size(), 1u);
  EXPECT_EQ(out.splices[0].at, 2u);
  EXPECT_EQ(out.splices[0].slice.offset, 100u);
  EXPECT_EQ(out.size(), 53u);
}

TEST(Wire, TaggedFieldSectionIsSkipped) {
  std::string s;
  // Two tags: 0 with 2 bytes, 5 with 1 byte; then an int8.
  Reader r = FromHex("020002aaaa0501bb07", &s);
  r.SkipTaggedFields();
  EXPECT_EQ(r.Int8(), 7);
  EXPECT_TRUE(r.ok());
}

TEST(Wire, HostileInputFailsWithoutReadingPastTheEnd) {
  std::string s;
  Reader truncated = FromHex("0001", &s);
  EXPECT_EQ(truncated.Int32(), 0);
  EXPECT_FALSE(truncated.ok());

  Reader long_string = FromHex("7fff41", &s);  // claims 32767 bytes, has 1
  long_string.String(false);
  EXPECT_FALSE(long_string.ok());

  Reader huge_array = FromHex("7fffffff", &s);  // 2^31-1 elements in no bytes
  EXPECT_EQ(huge_array.ArrayLength(false), -1);
  EXPECT_FALSE(huge_array.ok());

  Reader negative = FromHex("fffffffe", &s);  // -2 is not a valid length
  negative.ArrayLength(false);
  EXPECT_FALSE(negative.ok());

  Reader endless_varint = FromHex("ffffffffffffffffffffff01", &s);
  endless_varint.UnsignedVarint64();
  EXPECT_FALSE(endless_varint.ok());

  Reader null_required = FromHex("ffff", &s);  // null where a string is required
  null_required.String(false);
  EXPECT_FALSE(null_required.ok());

  Reader tags = FromHex("0100ff", &s);  // a tag claiming 255 bytes
  tags.SkipTaggedFields();
  EXPECT_FALSE(tags.ok());
}

}  // namespace
}  // namespace runnel::protocol
