#include "broker/properties.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace runnel::broker {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\f'; }
bool IsEol(char c) { return c == '\n' || c == '\r'; }

// Splits text into logical lines the way Java's Properties.LineReader does: blank and
// comment lines are skipped, continuations are joined, and escapes are left in place
// (the backslash of a continuation is the only one removed).
class LineReader {
 public:
  explicit LineReader(std::string_view text) : text_(text) {}

  // Stores the next logical line in *line and the offset of its first character in
  // *start; false at the end of the text.
  bool Next(std::string* line, size_t* start) {
    line->clear();
    bool skip_blank = true;  // at the start of a natural line: drop leading blanks
    bool new_line = true;    // the next character starts a line (a comment may follow)
    bool comment = false;    // inside a comment line
    bool continued = false;  // inside a continuation: an empty line ends the entry
    bool backslash = false;  // odd number of backslashes just before
    bool skip_lf = false;    // a continuation ended in \r: a following \n belongs to it
    while (pos_ < text_.size()) {
      char c = text_[pos_++];
      if (skip_lf) {
        skip_lf = false;
        if (c == '\n') continue;
      }
      if (skip_blank) {
        if (IsBlank(c)) continue;
        if (!continued && IsEol(c)) continue;
        skip_blank = false;
        continued = false;
      }
      if (new_line) {
        new_line = false;
        if (c == '#' || c == '!') {
          comment = true;
          continue;
        }
        *start = pos_ - 1;
      }
      if (!IsEol(c)) {
        if (comment) continue;
        line->push_back(c);
        backslash = c == '\\' ? !backslash : false;
        continue;
      }
      if (comment || line->empty()) {
        comment = false;
        new_line = true;
        skip_blank = true;
        line->clear();
        continue;
      }
      if (!backslash) return true;
      line->pop_back();
      backslash = false;
      skip_blank = true;
      continued = true;
      skip_lf = c == '\r';
    }
    if (comment || line->empty()) return false;
    if (backslash) line->pop_back();  // Java drops a backslash that ends the text
    return true;
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

std::optional<uint32_t> ParseHex4(std::string_view s) {
  if (s.size() < 4) return std::nullopt;
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    char c = s[i];
    uint32_t d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      return std::nullopt;
    }
    v = v << 4 | d;
  }
  return v;
}

// Resolves the escapes of a key or value (Java's loadConvert). \u escapes are UTF-16
// units: a high surrogate followed by a low one makes one code point, and a lone
// surrogate, which UTF-8 cannot hold, becomes U+FFFD.
bool Unescape(std::string_view in, std::string* out) {
  out->clear();
  uint32_t high = 0;  // a high surrogate waiting for its low half, or 0
  auto flush_high = [&] {
    if (high != 0) AppendUtf8(0xfffd, out);
    high = 0;
  };
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c != '\\') {
      flush_high();
      out->push_back(c);
      continue;
    }
    if (++i == in.size()) break;  // cannot happen after LineReader; dropped as Java does
    c = in[i];
    if (c != 'u') {
      flush_high();
      switch (c) {
        case 't':
          c = '\t';
          break;
        case 'n':
          c = '\n';
          break;
        case 'r':
          c = '\r';
          break;
        case 'f':
          c = '\f';
          break;
      }
      out->push_back(c);
      continue;
    }
    std::optional<uint32_t> unit = ParseHex4(in.substr(i + 1));
    if (!unit) return false;
    i += 4;
    if (*unit >= 0xdc00 && *unit <= 0xdfff && high != 0) {
      AppendUtf8(0x10000 + ((high - 0xd800) << 10) + (*unit - 0xdc00), out);
      high = 0;
      continue;
    }
    flush_high();
    if (*unit >= 0xd800 && *unit <= 0xdbff) {
      high = *unit;
    } else if (*unit >= 0xdc00 && *unit <= 0xdfff) {
      AppendUtf8(0xfffd, out);
    } else {
      AppendUtf8(*unit, out);
    }
  }
  flush_high();
  return true;
}

int LineNumber(std::string_view text, size_t offset) {
  int line = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n' || (text[i] == '\r' && (i + 1 == text.size() || text[i + 1] != '\n'))) {
      ++line;
    }
  }
  return line;
}

}  // namespace

absl::StatusOr<std::map<std::string, std::string>> ParseProperties(std::string_view text) {
  std::map<std::string, std::string> props;
  LineReader reader(text);
  std::string line, key, value;
  size_t start = 0;
  while (reader.Next(&line, &start)) {
    // The key ends at the first unescaped separator or blank; then blanks and at most
    // one '=' or ':' are skipped before the value.
    size_t key_len = 0;
    size_t value_start = line.size();
    bool has_sep = false;
    bool backslash = false;
    for (; key_len < line.size(); ++key_len) {
      char c = line[key_len];
      if (!backslash && (c == '=' || c == ':')) {
        value_start = key_len + 1;
        has_sep = true;
        break;
      }
      if (!backslash && IsBlank(c)) {
        value_start = key_len + 1;
        break;
      }
      backslash = c == '\\' ? !backslash : false;
    }
    for (; value_start < line.size(); ++value_start) {
      char c = line[value_start];
      if (IsBlank(c)) continue;
      if (has_sep || (c != '=' && c != ':')) break;
      has_sep = true;
    }
    std::string_view l(line);
    if (!Unescape(l.substr(0, key_len), &key) || !Unescape(l.substr(value_start), &value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("Malformed \\uxxxx encoding on line ", LineNumber(text, start)));
    }
    props[key] = value;
  }
  return props;
}

absl::StatusOr<std::map<std::string, std::string>> ReadPropertiesFile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return absl::ErrnoToStatus(errno, absl::StrCat("Cannot read properties file ", path));
  }
  std::string text;
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
  bool failed = std::ferror(f) != 0;
  int err = errno;
  std::fclose(f);
  if (failed) return absl::ErrnoToStatus(err, absl::StrCat("Cannot read properties file ", path));
  absl::StatusOr<std::map<std::string, std::string>> props = ParseProperties(text);
  if (!props.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", props.status().message()));
  }
  return props;
}

int32_t IntProperty(const std::map<std::string, std::string>& props, const std::string& key,
                    int32_t fallback) {
  auto it = props.find(key);
  int32_t v;
  if (it != props.end() && absl::SimpleAtoi(it->second, &v)) return v;
  return fallback;
}

int64_t LongProperty(const std::map<std::string, std::string>& props, const std::string& key,
                     int64_t fallback) {
  auto it = props.find(key);
  int64_t v;
  if (it != props.end() && absl::SimpleAtoi(it->second, &v)) return v;
  return fallback;
}

}  // namespace runnel::broker
