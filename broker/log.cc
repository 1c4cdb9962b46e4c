#include "broker/log.h"

#include <cstdio>
#include <ctime>

#include "absl/strings/match.h"

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
  // libc's local time rather than absl's, whose loading of the time zone is more code
  // to fault in on the start-up path.
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  tm local;
  localtime_r(&now.tv_sec, &local);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &local);
  std::printf("[%s,%03d] %s %.*s\n", stamp, static_cast<int>(now.tv_nsec / 1000000),
              LogLevelName(level), static_cast<int>(message.size()), message.data());
  std::fflush(stdout);
}

}  // namespace runnel::broker
