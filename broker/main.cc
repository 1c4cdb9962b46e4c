// runnel [server.properties] [--override key=value]...
//
// Starts a single Kafka-compatible broker, as kafka-server-start.sh does, and runs
// it until SIGTERM or SIGINT. Then it stops accepting, answers the requests already
// read (for at most kShutdownGrace), flushes the logs, records a clean shutdown and
// exits 0.
#include <malloc.h>

#include <chrono>
#include <csignal>
#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "asio.hpp"
#include "broker/broker.h"
#include "broker/config.h"
#include "broker/log.h"
#include "broker/metrics_server.h"
#include "broker/server.h"

using namespace runnel::broker;

namespace {

// Long-polling fetches (500 ms by default in the clients) finish well within this;
// container runtimes send SIGKILL 10 s after SIGTERM.
constexpr auto kShutdownGrace = std::chrono::milliseconds(1500);
constexpr auto kDrainPoll = std::chrono::milliseconds(5);

// The configuration as given (file and overrides), with secrets masked as Kafka's
// config logging does.
std::string DescribeProperties(const BrokerConfig& config) {
  return absl::StrJoin(config.properties, ", ", [](std::string* out, const auto& kv) {
    bool secret = absl::StrContains(kv.first, "password") ||
                  absl::StrContains(kv.first, "secret") || absl::StrContains(kv.first, "jaas");
    absl::StrAppend(out, kv.first, "=", secret ? "[hidden]" : kv.second);
  });
}

// Polls until every connection has drained or the grace period is over.
void WaitForDrain(asio::steady_timer& timer, Server& server,
                  std::chrono::steady_clock::time_point deadline, asio::io_context& io) {
  if (server.open_connections() == 0 || std::chrono::steady_clock::now() >= deadline) {
    server.Stop();
    io.stop();
    return;
  }
  timer.expires_after(kDrainPoll);
  timer.async_wait([&timer, &server, deadline, &io](asio::error_code) {
    WaitForDrain(timer, server, deadline, io);
  });
}

}  // namespace

int main(int argc, char** argv) {
  auto start_time = std::chrono::steady_clock::now();
  std::signal(SIGPIPE, SIG_IGN);
  // Request frames of up to a few MB come and go constantly; served from the heap
  // (not fresh mmaps) they cost no page faults or zeroing.
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  auto cmd = ParseCommandLine(argc, argv);
  if (!cmd.ok()) {
    std::fprintf(stderr, "%s\n", std::string(cmd.status().message()).c_str());
    return 1;
  }
  std::vector<std::string> warnings;
  auto config = LoadConfig(*cmd, &warnings);
  if (!config.ok()) {
    LogError("Startup failed: ", config.status().message());
    return 1;
  }
  if (std::optional<LogLevel> level = ParseLogLevel(config->logging_level)) SetLogLevel(*level);
  for (const std::string& w : warnings) LogWarn(w);
  if (!config->keys_without_effect.empty()) {
    LogInfo("Ignoring ", absl::StrJoin(config->keys_without_effect, ", "),
            ": no effect on a single Runnel broker");
  }
  LogInfo("Runnel ", RUNNEL_VERSION, " starting with node.id=", config->node_id,
          ", log.dirs=", absl::StrJoin(config->log_dirs, ","),
          config->log_in_memory ? " (in memory)" : "", "; configuration: ",
          config->properties.empty() ? "defaults" : DescribeProperties(*config));

  asio::io_context io(1);
  auto broker = Broker::Open(*config, &io);
  if (!broker.ok()) {
    LogError("Startup failed: ", broker.status().message());
    return 1;
  }
  Server server(&io, broker->get());
  if (absl::Status s = server.Listen(); !s.ok()) {
    LogError("Startup failed: ", s.message());
    return 1;
  }
  MetricsServer metrics_server(&io, broker->get());  // metrics.listener; off without it
  if (config->metrics_listener) {
    if (absl::Status s = metrics_server.Listen(*config->metrics_listener); !s.ok()) {
      LogError("Startup failed: ", s.message());
      return 1;
    }
  }
  double startup_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_time)
          .count();
  LogInfo("Runnel started in ", absl::StrFormat("%.1f", startup_ms),
          " ms (node.id=", config->node_id, ", cluster.id=", (*broker)->cluster_id(), ")");
  // The line testcontainers and other tooling wait for, worded as Kafka's.
  LogInfo("[BrokerLifecycleManager id=", config->node_id,
          "] The broker has been unfenced. Transitioning from RECOVERY to RUNNING.");

  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::steady_timer drain_timer(io);
  signals.async_wait([&](asio::error_code, int signal) {
    LogInfo("Shutting down on signal ", signal, ": answering requests in flight");
    server.Drain();
    WaitForDrain(drain_timer, server, std::chrono::steady_clock::now() + kShutdownGrace, io);
  });
  io.run();

  int exit_code = 0;
  if (absl::Status s = (*broker)->Close(); !s.ok()) {
    LogError("Shutdown failed: ", s.message());
    exit_code = 1;
  }
  LogInfo("Shut down cleanly");
  return exit_code;
}
