// Line-oriented logging to stdout in Kafka's log4j layout:
//   [2026-11-25 10:00:00,123] INFO message (component)
// One line per event, flushed at once so that tools reading the output (tests,
// testcontainers) see it immediately.
//
// Levels are log4j's, lowest first: TRACE, DEBUG, INFO, WARN, ERROR. A process-wide
// minimum (logging.level, INFO by default) drops the lines below it; a dropped line
// costs one comparison: its arguments are not formatted. Arguments that are costly to
// compute themselves belong behind `if (LogEnabled(LogLevel::kDebug))`.
// Single-threaded like the rest of the broker: set the level once at startup.
#ifndef RUNNEL_BROKER_LOG_H_
#define RUNNEL_BROKER_LOG_H_

#include <optional>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace runnel::broker {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };

// "TRACE", "DEBUG", ... (case-insensitive); nullopt for anything else.
std::optional<LogLevel> ParseLogLevel(std::string_view name);
const char* LogLevelName(LogLevel level);

namespace log_internal {
inline LogLevel min_level = LogLevel::kInfo;
}  // namespace log_internal

inline void SetLogLevel(LogLevel level) { log_internal::min_level = level; }
inline LogLevel GetLogLevel() { return log_internal::min_level; }
inline bool LogEnabled(LogLevel level) { return level >= log_internal::min_level; }

// Writes one line whatever the minimum level; the Log* functions below check it.
void LogLine(LogLevel level, std::string_view message);

template <typename... Args>
void LogAt(LogLevel level, const Args&... args) {
  if (LogEnabled(level)) LogLine(level, absl::StrCat(args...));
}
template <typename... Args>
void LogTrace(const Args&... args) {
  LogAt(LogLevel::kTrace, args...);
}
template <typename... Args>
void LogDebug(const Args&... args) {
  LogAt(LogLevel::kDebug, args...);
}
template <typename... Args>
void LogInfo(const Args&... args) {
  LogAt(LogLevel::kInfo, args...);
}
template <typename... Args>
void LogWarn(const Args&... args) {
  LogAt(LogLevel::kWarn, args...);
}
template <typename... Args>
void LogError(const Args&... args) {
  LogAt(LogLevel::kError, args...);
}

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_LOG_H_
