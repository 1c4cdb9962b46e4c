// Line-oriented logging to stdout in Kafka's log4j layout:
//   [2026-11-25 10:00:00,123] INFO message (component)
// One line per event, flushed at once so that tools reading the output (tests,
// testcontainers) see it immediately.
#ifndef RUNNEL_BROKER_LOG_H_
#define RUNNEL_BROKER_LOG_H_

#include <string_view>

#include "absl/strings/str_cat.h"

namespace runnel::broker {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

void LogLine(LogLevel level, std::string_view message);

template <typename... Args>
void LogInfo(const Args&... args) {
  LogLine(LogLevel::kInfo, absl::StrCat(args...));
}
template <typename... Args>
void LogWarn(const Args&... args) {
  LogLine(LogLevel::kWarn, absl::StrCat(args...));
}
template <typename... Args>
void LogError(const Args&... args) {
  LogLine(LogLevel::kError, absl::StrCat(args...));
}

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_LOG_H_
