// startup_bench: how fast a broker process starts and how little memory it holds idle,
// for Runnel and for librdkafka's mock cluster, measured the same way.
//
//   startup_bench --runnel PATH [--dir DIR] [--runs N] [--idle-ms MS]
//
// Start time: from just before posix_spawn() to the first ApiVersions (v0) answer on
// the broker's port, which the probe polls with connect() every 50 us. Both brokers are
// exec'd the same way (posix_spawn, as subprocess launchers and test harnesses do). RSS:
// VmRSS of the broker process after it has been idle for --idle-ms. Scenarios:
//   runnel, empty data dir          a fresh dir per run
//   runnel, 1,000 partitions        one topic made once through CreateTopics, then a
//                                   clean stop; every run restarts on that dir
//   runnel, 10,000 partitions       likewise
//   mock, 0 / 1,000 / 10,000        this binary, spawned with --mock-child N, creates
//                                   rd_kafka_mock_cluster_new (and the topic), then
//                                   reports its port on a pipe
// Prints one line per scenario: median, min and max start time over the runs, and the
// median idle RSS.
#include <arpa/inet.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// The broker or mock running now, killed if the bench dies.
pid_t g_child = -1;

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "startup_bench: %s\n", why.c_str());
  if (g_child > 0) ::kill(g_child, SIGKILL);
  std::exit(1);
}

// Starts `argv` with its stdout on `stdout_fd` (/dev/null if -1).
pid_t Spawn(const std::vector<std::string>& argv, int stdout_fd = -1) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdout_fd >= 0) {
    posix_spawn_file_actions_adddup2(&actions, stdout_fd, STDOUT_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  }
  pid_t pid = -1;
  int err = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) Die("cannot start " + argv[0] + ": " + std::strerror(err));
  g_child = pid;
  return pid;
}

struct Options {
  std::string runnel;
  std::string dir;
  int runs = 10;
  int idle_ms = 1000;
};

uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    Die("cannot find a free port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool ReadFully(int fd, char* buf, size_t n) {
  while (n > 0) {
    ssize_t r = ::read(fd, buf, n);
    if (r <= 0) return false;
    buf += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// Connects (retrying while refused) and completes one ApiVersions v0 exchange. False if
// `deadline` passes first.
bool ProbeApiVersions(uint16_t port, Clock::time_point deadline) {
  // size, api_key 18, api_version 0, correlation_id 1, client_id null
  static const char kRequest[] = {0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, '\xff', '\xff'};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  while (Clock::now() < deadline) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char size_bytes[4];
    bool ok =
        ::write(fd, kRequest, sizeof(kRequest)) == sizeof(kRequest) && ReadFully(fd, size_bytes, 4);
    if (ok) {
      uint32_t size = (uint32_t(uint8_t(size_bytes[0])) << 24) |
                      (uint32_t(uint8_t(size_bytes[1])) << 16) |
                      (uint32_t(uint8_t(size_bytes[2])) << 8) | uint8_t(size_bytes[3]);
      std::string body(size, '\0');
      ok = size >= 6 && ReadFully(fd, body.data(), size) && body[4] == 0 && body[5] == 0;
    }
    ::close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  return false;
}

long RssKb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

void Stop(pid_t pid, int signal) {
  ::kill(pid, signal);
  int status = 0;
  ::waitpid(pid, &status, 0);
  g_child = -1;
}

pid_t SpawnRunnel(const Options& o, const std::string& data_dir, uint16_t port) {
  return Spawn({o.runnel, "--override", "listeners=PLAINTEXT://127.0.0.1:" + std::to_string(port),
                "--override", "log.dirs=" + data_dir, "--override",
                "group.initial.rebalance.delay.ms=0"});
}

// Creates `topic` with `partitions` through librdkafka's Admin API.
void CreateTopic(uint16_t port, const std::string& topic, int partitions) {
  char err[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::string bootstrap = "127.0.0.1:" + std::to_string(port);
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof(err));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (rk == nullptr) Die(err);
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, err, sizeof(err));
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(options, 60000, err, sizeof(err));
  rd_kafka_CreateTopics(rk, &nt, 1, options, queue);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, 120000);
  if (ev == nullptr || rd_kafka_event_error(ev)) Die("CreateTopics failed");
  size_t n = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
  if (n != 1 || rd_kafka_topic_result_error(results[0])) {
    Die(std::string("CreateTopics: ") + rd_kafka_topic_result_error_string(results[0]));
  }
  rd_kafka_event_destroy(ev);
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_queue_destroy(queue);
  rd_kafka_destroy(rk);
}

// The --mock-child mode: a mock cluster with one topic of `partitions` partitions (none
// if 0); writes its port to stdout, then waits to be killed.
int RunMockChild(int partitions) {
  char err[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  rd_kafka_mock_cluster_t* cluster = rk ? rd_kafka_mock_cluster_new(rk, 1) : nullptr;
  if (cluster == nullptr) return 1;
  if (partitions > 0) rd_kafka_mock_topic_create(cluster, "bench", partitions, 1);
  std::string bootstrap = rd_kafka_mock_cluster_bootstraps(cluster);
  std::string port = bootstrap.substr(bootstrap.rfind(':') + 1) + "\n";
  if (::write(STDOUT_FILENO, port.data(), port.size()) < 0) return 1;
  ::pause();
  return 0;
}

struct Sample {
  double start_ms;
  long rss_kb;
};

void Report(const std::string& name, std::vector<Sample> samples) {
  std::sort(samples.begin(), samples.end(),
            [](const Sample& a, const Sample& b) { return a.start_ms < b.start_ms; });
  std::vector<long> rss;
  for (const Sample& s : samples) rss.push_back(s.rss_kb);
  std::sort(rss.begin(), rss.end());
  std::printf("%-34s start ms median %7.2f  min %7.2f  max %7.2f   idle RSS %7.1f MB\n",
              name.c_str(), samples[samples.size() / 2].start_ms, samples.front().start_ms,
              samples.back().start_ms, rss[rss.size() / 2] / 1024.0);
  std::fflush(stdout);
}

double MillisSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

Sample RunRunnel(const Options& o, const std::string& data_dir) {
  uint16_t port = FreePort();
  Clock::time_point t0 = Clock::now();
  pid_t pid = SpawnRunnel(o, data_dir, port);
  if (!ProbeApiVersions(port, t0 + std::chrono::seconds(120))) Die("runnel did not answer");
  double ms = MillisSince(t0);
  std::this_thread::sleep_for(std::chrono::milliseconds(o.idle_ms));
  long rss = RssKb(pid);
  Stop(pid, SIGTERM);
  return {ms, rss};
}

Sample RunMock(const Options& o, int partitions) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) Die("pipe");
  Clock::time_point t0 = Clock::now();
  pid_t pid = Spawn({"/proc/self/exe", "--mock-child", std::to_string(partitions)}, fds[1]);
  ::close(fds[1]);
  char buf[16] = {};
  size_t got = 0;
  while (got < sizeof(buf) - 1 && (got == 0 || buf[got - 1] != '\n')) {
    ssize_t r = ::read(fds[0], buf + got, 1);
    if (r <= 0) Die("mock child failed");
    got += static_cast<size_t>(r);
  }
  ::close(fds[0]);
  uint16_t port = static_cast<uint16_t>(std::atoi(buf));
  if (!ProbeApiVersions(port, t0 + std::chrono::seconds(120))) Die("mock did not answer");
  double ms = MillisSince(t0);
  std::this_thread::sleep_for(std::chrono::milliseconds(o.idle_ms));
  long rss = RssKb(pid);
  Stop(pid, SIGKILL);
  return {ms, rss};
}

// A data dir holding one topic of `partitions` partitions, cleanly stopped.
std::string PrepareDir(const Options& o, int partitions) {
  std::string dir = o.dir + "/p" + std::to_string(partitions);
  std::filesystem::remove_all(dir);
  uint16_t port = FreePort();
  pid_t pid = SpawnRunnel(o, dir, port);
  if (!ProbeApiVersions(port, Clock::now() + std::chrono::seconds(60))) Die("runnel not up");
  CreateTopic(port, "bench", partitions);
  Stop(pid, SIGTERM);
  return dir;
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--runnel") {
      o.runnel = value();
    } else if (a == "--dir") {
      o.dir = value();
    } else if (a == "--runs") {
      o.runs = std::max(1, std::atoi(value().c_str()));
    } else if (a == "--idle-ms") {
      o.idle_ms = std::atoi(value().c_str());
    } else {
      Die("usage: startup_bench --runnel PATH [--dir DIR] [--runs N] [--idle-ms MS]");
    }
  }
  if (o.runnel.empty()) Die("--runnel is required");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  if (argc == 3 && std::string(argv[1]) == "--mock-child") return RunMockChild(std::atoi(argv[2]));
  Options o = ParseArgs(argc, argv);
  bool own_dir = o.dir.empty();
  if (own_dir) {
    char tmpl[] = "/var/tmp/runnel-startup.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) Die("mkdtemp");
    o.dir = tmpl;
  }
  auto repeat = [&](const std::function<Sample(int)>& run) {
    std::vector<Sample> samples;
    for (int i = 0; i < o.runs; ++i) samples.push_back(run(i));
    return samples;
  };
  Report("runnel, empty data dir", repeat([&](int i) {
           std::string dir = o.dir + "/empty" + std::to_string(i);
           Sample s = RunRunnel(o, dir);
           std::filesystem::remove_all(dir);
           return s;
         }));
  for (int partitions : {1000, 10000}) {
    std::string dir = PrepareDir(o, partitions);
    Report("runnel, " + std::to_string(partitions) + " partitions on disk",
           repeat([&](int) { return RunRunnel(o, dir); }));
    std::filesystem::remove_all(dir);
  }
  for (int partitions : {0, 1000, 10000}) {
    Report("librdkafka mock, " + std::to_string(partitions) + " partitions",
           repeat([&](int) { return RunMock(o, partitions); }));
  }
  if (own_dir) std::filesystem::remove_all(o.dir);
  return 0;
}
