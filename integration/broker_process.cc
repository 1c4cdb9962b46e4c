#include "broker_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

namespace runnel::integration {

namespace {

std::string ReadFrom(const std::string& path, size_t offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(static_cast<std::streamoff>(offset));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

size_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
}

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

BrokerProcess::BrokerProcess(std::string binary, std::vector<std::string> overrides)
    : binary_(std::move(binary)), overrides_(std::move(overrides)) {
  char tmpl[] = "/tmp/runnel-it.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) std::abort();
  root_dir_ = tmpl;
  data_dir_ = root_dir_ + "/data";
  log_path_ = root_dir_ + "/broker.log";
  std::filesystem::create_directories(data_dir_);
}

BrokerProcess::~BrokerProcess() {
  Kill();
  std::error_code ignored;
  std::filesystem::remove_all(root_dir_, ignored);
}

std::string BrokerProcess::DefaultBinary() {
  if (const char* env = std::getenv("RUNNEL_BIN"); env != nullptr && *env != '\0') return env;
#ifdef RUNNEL_BIN_DEFAULT
  return RUNNEL_BIN_DEFAULT;
#else
  return "runnel";
#endif
}

bool BrokerProcess::Start(std::string* error, std::chrono::milliseconds timeout) {
  if (running()) {
    *error = "broker already running";
    return false;
  }
  std::vector<std::string> args = {binary_, "--override", "listeners=PLAINTEXT://127.0.0.1:0",
                                   "--override", "log.dirs=" + data_dir_};
  for (const auto& kv : overrides_) {
    args.push_back("--override");
    args.push_back(kv);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // Only this start's output is searched for the Listening line.
  const size_t log_start = FileSize(log_path_);
  int log_fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    *error = "open " + log_path_ + ": " + std::strerror(errno);
    return false;
  }
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(errno);
    close(log_fd);
    return false;
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    execv(argv[0], argv.data());
    const char msg[] = "BrokerProcess: exec failed\n";
    ssize_t ignored = write(2, msg, sizeof(msg) - 1);
    (void)ignored;
    _exit(127);
  }
  close(log_fd);
  pid_ = pid;

  static const std::regex kListening(R"(Listening on PLAINTEXT://([^\s:]+):(\d+))");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::string out = ReadFrom(log_path_, log_start);
    std::smatch m;
    if (std::regex_search(out, m, kListening)) {
      host_ = m[1];
      port_ = std::stoi(m[2]);
      bootstrap_ = host_ + ":" + std::to_string(port_);
      return true;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      *error = "broker exited with status " + std::to_string(DecodeStatus(status)) +
               " before listening; output:\n" + out;
      return false;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      Kill();
      *error = "broker printed no Listening line within " + std::to_string(timeout.count()) +
               " ms; output:\n" + ReadFrom(log_path_, log_start);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int BrokerProcess::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return DecodeStatus(status);
    }
    if (r < 0 && errno != EINTR) {
      pid_ = -1;
      return -1;
    }
    if (std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int BrokerProcess::Stop(std::chrono::milliseconds timeout) {
  if (!running()) return -1;
  kill(pid_, SIGTERM);
  int code = Wait(timeout);
  if (running()) {
    Kill();
    return -1;
  }
  return code;
}

void BrokerProcess::Kill() {
  if (!running()) return;
  kill(pid_, SIGKILL);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

std::string BrokerProcess::Output() const { return ReadFrom(log_path_, 0); }

}  // namespace runnel::integration
