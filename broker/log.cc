#include "broker/log.h"

#include <cstdio>
#include <ctime>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace runnel::broker {

void LogLine(LogLevel level, std::string_view message) {
  static constexpr const char* kNames[] = {"DEBUG", "INFO", "WARN", "ERROR"};
  absl::Time now = absl::Now();
  std::string stamp = absl::FormatTime("%Y-%m-%d %H:%M:%S", now, absl::LocalTimeZone());
  int millis = static_cast<int>(
      absl::ToInt64Milliseconds(now - absl::FromUnixSeconds(absl::ToUnixSeconds(now))));
  std::printf("[%s,%03d] %s %.*s\n", stamp.c_str(), millis, kNames[static_cast<int>(level)],
              static_cast<int>(message.size()), message.data());
  std::fflush(stdout);
}

}  // namespace runnel::broker
