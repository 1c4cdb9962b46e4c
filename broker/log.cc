#include "broker/log.h"

#include <cstdio>
#include <ctime>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace runnel::broker {
namespace {

constexpr const char* kNames[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR"};

}  // namespace

std::optional<LogLevel> ParseLogLevel(std::string_view name) {
  for (int i = 0; i < static_cast<int>(std::size(kNames)); ++i) {
    if (absl::EqualsIgnoreCase(absl::string_view(name.data(), name.size()), kNames[i]))
      return static_cast<LogLevel>(i);
  }
  return std::nullopt;
}

const char* LogLevelName(LogLevel level) { return kNames[static_cast<int>(level)]; }

void LogLine(LogLevel level, std::string_view message) {
  absl::Time now = absl::Now();
  std::string stamp = absl::FormatTime("%Y-%m-%d %H:%M:%S", now, absl::LocalTimeZone());
  int millis = static_cast<int>(
      absl::ToInt64Milliseconds(now - absl::FromUnixSeconds(absl::ToUnixSeconds(now))));
  std::printf("[%s,%03d] %s %.*s\n", stamp.c_str(), millis, LogLevelName(level),
              static_cast<int>(message.size()), message.data());
  std::fflush(stdout);
}

}  // namespace runnel::broker
