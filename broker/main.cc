// runnel [server.properties] [--override key=value]...
//
// Starts a single Kafka-compatible broker, as kafka-server-start.sh does, and runs
// it until SIGTERM or SIGINT, then shuts down cleanly (exit code 0).
#include <malloc.h>

#include <csignal>
#include <cstdio>

#include "absl/strings/str_join.h"
#include "asio.hpp"
#include "broker/broker.h"
#include "broker/config.h"
#include "broker/log.h"
#include "broker/server.h"

using namespace runnel::broker;

int main(int argc, char** argv) {
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
  for (const std::string& w : warnings) LogWarn(w);

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
  LogInfo("Runnel started (node.id=", config->node_id, ", cluster.id=", (*broker)->cluster_id(),
          ", log.dirs=", absl::StrJoin(config->log_dirs, ","), ")");

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](asio::error_code, int signal) {
    LogInfo("Shutting down on signal ", signal);
    server.Stop();
    io.stop();
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
