// Kafka wire primitives: big-endian fixed-width integers, (zigzag) varints and the
// classic and compact ("flexible") encodings of strings, bytes and arrays.
//
// Reader decodes from a borrowed byte range and never reads past it: every call
// checks the remaining length, and the first failure latches ok() to false (later
// reads return zero values), so generated decoders check once at the end.
// Writer appends to an owned buffer; record data that lives in files is not copied
// but recorded as a FileSlice at its position in the output (see Encoded).
#ifndef RUNNEL_PROTOCOL_WIRE_H_
#define RUNNEL_PROTOCOL_WIRE_H_

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace runnel::protocol {

// Fixed-width big-endian integers of n <= 8 bytes at p, as Kafka's formats store them
// outside the Reader/Writer streams (batch headers patched in place, index entries).
inline void PutBigEndian(char* p, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<char>(v >> (8 * (n - 1 - i)));
}
inline uint64_t GetBigEndian(const char* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

struct Uuid {
  std::array<uint8_t, 16> bytes{};
  bool operator==(const Uuid&) const = default;
  bool IsZero() const { return *this == Uuid{}; }
};

// A byte range of an open file, sent with sendfile(2). keep_alive holds whatever owns
// the descriptor so that the file stays open until the bytes are on the socket.
struct FileSlice {
  int fd = -1;
  uint64_t offset = 0;
  uint64_t length = 0;
  std::shared_ptr<const void> keep_alive;
};

// The value of a `records` field: in-memory bytes followed by file slices.
// Decoded requests view the request frame (which outlives the handler); responses
// built by the broker reference log files.
struct Records {
  bool is_null = false;
  std::string_view data;
  std::shared_ptr<const std::string> owned;  // backs `data` when built in memory
  std::vector<FileSlice> slices;

  uint64_t size() const {
    uint64_t n = data.size();
    for (const auto& s : slices) n += s.length;
    return n;
  }
  static Records Own(std::string bytes) {
    Records r;
    r.owned = std::make_shared<const std::string>(std::move(bytes));
    r.data = *r.owned;
    return r;
  }
  bool operator==(const Records& o) const;  // compares in-memory content only
};

class Reader {
 public:
  Reader(const char* data, size_t size) : p_(data), end_(data + size) {}
  explicit Reader(std::string_view s) : Reader(s.data(), s.size()) {}

  bool ok() const { return ok_; }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  const char* position() const { return p_; }
  void Fail() { ok_ = false, p_ = end_; }

  int8_t Int8() { return static_cast<int8_t>(Fixed<uint8_t>()); }
  int16_t Int16() { return static_cast<int16_t>(Fixed<uint16_t>()); }
  int32_t Int32() { return static_cast<int32_t>(Fixed<uint32_t>()); }
  int64_t Int64() { return static_cast<int64_t>(Fixed<uint64_t>()); }
  uint16_t Uint16() { return Fixed<uint16_t>(); }
  uint32_t Uint32() { return Fixed<uint32_t>(); }
  bool Bool() { return Fixed<uint8_t>() != 0; }
  double Float64();
  Uuid ReadUuid();

  uint64_t UnsignedVarint64();
  uint32_t UnsignedVarint() {
    uint64_t v = UnsignedVarint64();
    if (v > UINT32_MAX) Fail();
    return static_cast<uint32_t>(v);
  }
  int64_t Varlong() {
    uint64_t v = UnsignedVarint64();
    return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
  }
  int32_t Varint() {
    uint32_t v = UnsignedVarint();
    return static_cast<int32_t>(v >> 1) ^ -static_cast<int32_t>(v & 1);
  }

  // Returns a view of the next n bytes, or an empty view after a failure.
  std::string_view Bytes(size_t n);
  void Skip(size_t n) { Bytes(n); }

  // Length prefixes. Returns -1 for null; fails on a length the input cannot hold.
  int64_t StringLength(bool compact);
  int64_t BytesLength(bool compact);
  int64_t ArrayLength(bool compact);

  std::string String(bool compact);
  std::optional<std::string> NullableString(bool compact);
  std::string ByteString(bool compact);
  std::optional<std::string> NullableByteString(bool compact);
  Records ReadRecords(bool compact);

  // Skips a whole tagged-field section (all tags unknown to the caller).
  void SkipTaggedFields();

 private:
  template <typename T>
  T Fixed() {
    if (remaining() < sizeof(T)) {
      Fail();
      return 0;
    }
    T v = 0;
    for (size_t i = 0; i < sizeof(T); ++i)
      v = static_cast<T>((v << 8) | static_cast<uint8_t>(p_[i]));
    p_ += sizeof(T);
    return v;
  }

  const char* p_;
  const char* end_;
  bool ok_ = true;
};

// An encoded message: the bytes, and the file slices to splice in at given offsets.
struct Encoded {
  std::string bytes;
  struct Splice {
    size_t at;  // offset in `bytes` before which the slice goes
    FileSlice slice;
  };
  std::vector<Splice> splices;
  uint64_t size() const {
    uint64_t n = bytes.size();
    for (const auto& s : splices) n += s.slice.length;
    return n;
  }
};

class Writer {
 public:
  Writer() = default;
  explicit Writer(Encoded* out) : out_(out) {}
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // The output so far (when the writer owns it).
  Encoded& encoded() { return *out_; }

  std::string& buffer() { return out_->bytes; }
  size_t size() const { return out_->bytes.size(); }

  void Int8(int8_t v) { Fixed<uint8_t>(static_cast<uint8_t>(v)); }
  void Int16(int16_t v) { Fixed<uint16_t>(static_cast<uint16_t>(v)); }
  void Int32(int32_t v) { Fixed<uint32_t>(static_cast<uint32_t>(v)); }
  void Int64(int64_t v) { Fixed<uint64_t>(static_cast<uint64_t>(v)); }
  void Uint16(uint16_t v) { Fixed<uint16_t>(v); }
  void Uint32(uint32_t v) { Fixed<uint32_t>(v); }
  void Bool(bool v) { Fixed<uint8_t>(v ? 1 : 0); }
  void Float64(double v);
  void WriteUuid(const Uuid& v) { Raw(v.bytes.data(), v.bytes.size()); }

  void UnsignedVarint(uint64_t v);
  void Varint(int32_t v) { UnsignedVarint(static_cast<uint32_t>((v << 1) ^ (v >> 31))); }
  void Varlong(int64_t v) { UnsignedVarint(static_cast<uint64_t>((v << 1) ^ (v >> 63))); }

  void Raw(const void* p, size_t n) { out_->bytes.append(static_cast<const char*>(p), n); }
  void Raw(std::string_view s) { Raw(s.data(), s.size()); }

  // Length prefixes; pass -1 for null.
  void StringLength(int64_t n, bool compact);
  void BytesLength(int64_t n, bool compact);
  void ArrayLength(int64_t n, bool compact);

  void String(std::string_view s, bool compact) {
    StringLength(static_cast<int64_t>(s.size()), compact);
    Raw(s);
  }
  void NullableString(const std::optional<std::string>& s, bool compact);
  void ByteString(std::string_view s, bool compact) {
    BytesLength(static_cast<int64_t>(s.size()), compact);
    Raw(s);
  }
  void NullableByteString(const std::optional<std::string>& s, bool compact);
  void WriteRecords(const Records& r, bool compact);

  // Size in bytes of v as an unsigned varint.
  static size_t UnsignedVarintSize(uint64_t v);

 private:
  template <typename T>
  void Fixed(T v) {
    char b[sizeof(T)];
    for (size_t i = 0; i < sizeof(T); ++i) b[i] = static_cast<char>(v >> (8 * (sizeof(T) - 1 - i)));
    out_->bytes.append(b, sizeof(T));
  }

  Encoded own_;
  Encoded* out_ = &own_;
};

}  // namespace runnel::protocol

#endif  // RUNNEL_PROTOCOL_WIRE_H_
