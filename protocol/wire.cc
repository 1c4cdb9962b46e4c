#include "protocol/wire.h"

#include <bit>

namespace runnel::protocol {

bool Records::operator==(const Records& o) const { return is_null == o.is_null && data == o.data; }

double Reader::Float64() { return std::bit_cast<double>(Fixed<uint64_t>()); }

Uuid Reader::ReadUuid() {
  Uuid u;
  std::string_view b = Bytes(16);
  if (b.size() == 16) std::memcpy(u.bytes.data(), b.data(), 16);
  return u;
}

uint64_t Reader::UnsignedVarint64() {
  uint64_t v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (p_ >= end_) break;
    uint8_t b = static_cast<uint8_t>(*p_++);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return v;
  }
  Fail();  // truncated, or longer than 10 bytes
  return 0;
}

std::string_view Reader::Bytes(size_t n) {
  if (remaining() < n) {
    Fail();
    return {};
  }
  std::string_view v(p_, n);
  p_ += n;
  return v;
}

int64_t Reader::StringLength(bool compact) {
  int64_t n = compact ? static_cast<int64_t>(UnsignedVarint()) - 1 : Int16();
  if (n < -1 || n > static_cast<int64_t>(remaining())) Fail();
  return ok_ ? n : -1;
}

int64_t Reader::BytesLength(bool compact) {
  int64_t n = compact ? static_cast<int64_t>(UnsignedVarint()) - 1 : Int32();
  if (n < -1 || n > static_cast<int64_t>(remaining())) Fail();
  return ok_ ? n : -1;
}

int64_t Reader::ArrayLength(bool compact) {
  int64_t n = compact ? static_cast<int64_t>(UnsignedVarint()) - 1 : Int32();
  // Every element takes at least one byte, which bounds what a hostile count can allocate.
  if (n < -1 || n > static_cast<int64_t>(remaining())) Fail();
  return ok_ ? n : -1;
}

std::string Reader::String(bool compact) {
  int64_t n = StringLength(compact);
  if (n < 0) {
    Fail();  // null where the schema does not allow it
    return {};
  }
  return std::string(Bytes(static_cast<size_t>(n)));
}

std::optional<std::string> Reader::NullableString(bool compact) {
  int64_t n = StringLength(compact);
  if (n < 0) return std::nullopt;
  return std::string(Bytes(static_cast<size_t>(n)));
}

std::string Reader::ByteString(bool compact) {
  int64_t n = BytesLength(compact);
  if (n < 0) {
    Fail();
    return {};
  }
  return std::string(Bytes(static_cast<size_t>(n)));
}

std::optional<std::string> Reader::NullableByteString(bool compact) {
  int64_t n = BytesLength(compact);
  if (n < 0) return std::nullopt;
  return std::string(Bytes(static_cast<size_t>(n)));
}

Records Reader::ReadRecords(bool compact) {
  Records r;
  int64_t n = BytesLength(compact);
  if (n < 0) {
    r.is_null = true;
    return r;
  }
  r.data = Bytes(static_cast<size_t>(n));
  return r;
}

void Reader::SkipTaggedFields() {
  uint32_t count = UnsignedVarint();
  for (uint32_t i = 0; i < count && ok_; ++i) {
    UnsignedVarint();  // tag
    Skip(UnsignedVarint());
  }
}

void Writer::Float64(double v) { Fixed<uint64_t>(std::bit_cast<uint64_t>(v)); }

void Writer::UnsignedVarint(uint64_t v) {
  char b[10];
  size_t n = 0;
  while (v >= 0x80) {
    b[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  b[n++] = static_cast<char>(v);
  out_->bytes.append(b, n);
}

size_t Writer::UnsignedVarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) v >>= 7, ++n;
  return n;
}

void Writer::StringLength(int64_t n, bool compact) {
  if (compact) {
    UnsignedVarint(static_cast<uint64_t>(n + 1));
  } else {
    Int16(static_cast<int16_t>(n));
  }
}

void Writer::BytesLength(int64_t n, bool compact) {
  if (compact) {
    UnsignedVarint(static_cast<uint64_t>(n + 1));
  } else {
    Int32(static_cast<int32_t>(n));
  }
}

void Writer::ArrayLength(int64_t n, bool compact) { BytesLength(n, compact); }

void Writer::NullableString(const std::optional<std::string>& s, bool compact) {
  if (s) {
    String(*s, compact);
  } else {
    StringLength(-1, compact);
  }
}

void Writer::NullableByteString(const std::optional<std::string>& s, bool compact) {
  if (s) {
    ByteString(*s, compact);
  } else {
    BytesLength(-1, compact);
  }
}

void Writer::WriteRecords(const Records& r, bool compact) {
  if (r.is_null) {
    BytesLength(-1, compact);
    return;
  }
  BytesLength(static_cast<int64_t>(r.size()), compact);
  Raw(r.data);
  for (const auto& s : r.slices) out_->splices.push_back({out_->bytes.size(), s});
}

}  // namespace runnel::protocol
