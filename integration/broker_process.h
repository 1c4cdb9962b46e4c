// BrokerProcess runs the real runnel binary as a child process for
// integration tests: on an ephemeral 127.0.0.1 port, with its own temp data
// dir, its output captured in a log file next to the data.
//
// The child is killed when the BrokerProcess is destroyed and, through
// PR_SET_PDEATHSIG, when the test process dies, so a failing or crashing test
// never leaves a broker behind.

#ifndef RUNNEL_INTEGRATION_BROKER_PROCESS_H_
#define RUNNEL_INTEGRATION_BROKER_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace runnel::integration {

class BrokerProcess {
 public:
  // binary: the runnel executable. overrides: extra "key=value" settings,
  // passed as --override after listeners and log.dirs.
  explicit BrokerProcess(std::string binary, std::vector<std::string> overrides = {});
  ~BrokerProcess();

  BrokerProcess(const BrokerProcess&) = delete;
  BrokerProcess& operator=(const BrokerProcess&) = delete;

  // The broker binary named by $RUNNEL_BIN, or the one this test was built with.
  static std::string DefaultBinary();

  // Starts the broker and waits until it prints "Listening on PLAINTEXT://".
  // On failure returns false and sets *error (including the broker's output).
  bool Start(std::string* error, std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // Starts again on the same data dir (on a new ephemeral port).
  bool Restart(std::string* error, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    return Start(error, timeout);
  }

  // Sends SIGTERM and waits. Returns the exit code, 128+N if killed by signal
  // N, or -1 if it had not exited after timeout (it is then SIGKILLed).
  int Stop(std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // Sends SIGKILL and reaps the process.
  void Kill();

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // "HOST:PORT" as printed in the Listening line.
  const std::string& bootstrap() const { return bootstrap_; }
  const std::string& host() const { return host_; }
  int port() const { return port_; }
  const std::string& data_dir() const { return data_dir_; }
  // Everything the broker printed so far, across restarts.
  std::string Output() const;

 private:
  // Waits for the child to exit up to timeout; returns its status or -1.
  int Wait(std::chrono::milliseconds timeout);

  std::string binary_;
  std::vector<std::string> overrides_;
  std::string root_dir_;  // temp dir holding data/ and broker.log
  std::string data_dir_;
  std::string log_path_;
  pid_t pid_ = -1;
  std::string bootstrap_;
  std::string host_;
  int port_ = 0;
};

}  // namespace runnel::integration

#endif  // RUNNEL_INTEGRATION_BROKER_PROCESS_H_
