// Java .properties files, read as java.util.Properties.load reads them (Kafka's
// server.properties).
//
// Format: one entry per logical line, written `key=value`, `key: value` or `key value`.
// Whitespace (space, tab, form feed) before the key and around the separator is dropped;
// trailing whitespace of the value is kept, and a key alone has the empty value. A line
// whose first non-blank character is `#` or `!` is a comment. A line ending in an odd
// number of backslashes continues on the next line, whose leading whitespace is dropped.
// Escapes, in keys and values: \t \n \r \f, \uXXXX (a UTF-16 unit, written out as UTF-8;
// surrogate pairs combine), and `\c` for any other c is c, so `\=`, `\:`, `\ `, `\#` and
// `\\` put separators, spaces and backslashes into keys. When a key repeats, the last wins.
//
// Unlike Java, which decodes the bytes as ISO-8859-1, bytes outside ASCII pass through
// unchanged, so a UTF-8 file keeps its text.
#ifndef RUNNEL_BROKER_PROPERTIES_H_
#define RUNNEL_BROKER_PROPERTIES_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace runnel::broker {

// Parses the text of a .properties file. Fails only on a malformed \uXXXX escape.
absl::StatusOr<std::map<std::string, std::string>> ParseProperties(std::string_view text);

// Reads and parses the .properties file at `path`; errors name the path.
absl::StatusOr<std::map<std::string, std::string>> ReadPropertiesFile(const std::string& path);

// The number under `key`, or `fallback` when it is absent or not a number of that type
// (the broker validated its configuration before any coordinator reads it).
int32_t IntProperty(const std::map<std::string, std::string>& props, const std::string& key,
                    int32_t fallback);
int64_t LongProperty(const std::map<std::string, std::string>& props, const std::string& key,
                     int64_t fallback);

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_PROPERTIES_H_
