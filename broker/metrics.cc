#include "broker/metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "protocol/messages/api_table.h"

namespace runnel::broker {

void Histogram::Observe(double seconds) {
  auto it = std::lower_bound(kBounds.begin(), kBounds.end(), seconds);
  if (it != kBounds.end()) ++buckets_[it - kBounds.begin()];
  ++count_;
  sum_ += seconds;
}

uint64_t Histogram::CumulativeCount(size_t i) const {
  uint64_t n = 0;
  for (size_t j = 0; j <= i && j < buckets_.size(); ++j) n += buckets_[j];
  return n;
}

namespace {

// absl::StrAppend for std::string_view pieces (this absl's string_view is its own type).
void Append(std::string* out, std::initializer_list<std::string_view> pieces) {
  for (std::string_view p : pieces) out->append(p);
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // The shortest form that reads back exactly; plain decimals (le="0.0001", not "1e-04")
  // where they stay short, as Prometheus' own clients write bucket bounds.
  char buf[64];
  double magnitude = std::fabs(value);
  bool plain = magnitude == 0 || (magnitude >= 1e-6 && magnitude < 1e15);
  auto [end, ec] = plain ? std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::fixed)
                         : std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, end);
}

void MetricsText::Family(std::string_view name, std::string_view type, std::string_view help) {
  std::string escaped = EscapeHelp(help);
  Append(&out_, {"# HELP ", name, " ", escaped, "\n# TYPE ", name, " ", type, "\n"});
}

void MetricsText::Start(std::string_view name, Labels labels, std::string_view extra_name,
                        std::string_view extra_value) {
  out_ += name;
  if (labels.size() == 0 && extra_name.empty()) {
    out_ += ' ';
    return;
  }
  char sep = '{';
  for (const auto& [label, value] : labels) {
    Append(&out_, {std::string_view(&sep, 1), label, "=\"", EscapeLabelValue(value), "\""});
    sep = ',';
  }
  if (!extra_name.empty()) {
    Append(&out_, {std::string_view(&sep, 1), extra_name, "=\"", extra_value, "\""});
  }
  out_ += "} ";
}

void MetricsText::Sample(std::string_view name, Labels labels, double value) {
  Start(name, labels);
  absl::StrAppend(&out_, FormatMetricValue(value), "\n");
}

void MetricsText::Sample(std::string_view name, Labels labels, int64_t value) {
  Start(name, labels);
  absl::StrAppend(&out_, value, "\n");
}

void MetricsText::Sample(std::string_view name, Labels labels, uint64_t value) {
  Start(name, labels);
  absl::StrAppend(&out_, value, "\n");
}

void MetricsText::HistogramSamples(std::string_view name, Labels labels, const Histogram& h) {
  std::string bucket = std::string(name) + "_bucket";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < Histogram::kBounds.size(); ++i) {
    cumulative = h.CumulativeCount(i);
    Start(bucket, labels, "le", FormatMetricValue(Histogram::kBounds[i]));
    absl::StrAppend(&out_, cumulative, "\n");
  }
  Start(bucket, labels, "le", "+Inf");
  absl::StrAppend(&out_, h.count(), "\n");
  Sample(std::string(name) + "_sum", labels, h.sum());
  Sample(std::string(name) + "_count", labels, h.count());
}

Metrics::Metrics() : start_time_seconds_(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch())) {}

void Metrics::Render(MetricsText& out, const std::vector<int16_t>& always) const {
  std::vector<std::pair<int16_t, std::string_view>> apis;  // key, Kafka's API name
  for (int key = 0; key < kApiKeys; ++key) {
    bool listed = std::find(always.begin(), always.end(), key) != always.end();
    if (apis_[key].requests == 0 && !listed) continue;
    const protocol::ApiInfo* info = protocol::FindApi(static_cast<int16_t>(key));
    if (info != nullptr) apis.emplace_back(static_cast<int16_t>(key), info->name);
  }
  out.Family("runnel_requests_total", "counter",
             "Requests answered (or ended without an answer), by Kafka API.");
  for (const auto& [key, name] : apis) {
    out.Sample("runnel_requests_total", {{"api", name}}, apis_[key].requests);
  }
  out.Family("runnel_request_latency_seconds", "histogram",
             "Time from a request frame's arrival to its response being queued, by Kafka API.");
  for (const auto& [key, name] : apis) {
    out.HistogramSamples("runnel_request_latency_seconds", {{"api", name}}, apis_[key].latency);
  }
  out.Family("runnel_network_received_bytes_total", "counter",
             "Bytes read from Kafka client connections.");
  out.Sample("runnel_network_received_bytes_total", {}, bytes_in_);
  out.Family("runnel_network_sent_bytes_total", "counter",
             "Bytes written to Kafka client connections (sendfile included).");
  out.Sample("runnel_network_sent_bytes_total", {}, bytes_out_);
  out.Family("runnel_connections", "gauge", "Open Kafka client connections.");
  out.Sample("runnel_connections", {}, connections_open_);
  out.Family("runnel_connections_accepted_total", "counter", "Kafka client connections accepted.");
  out.Sample("runnel_connections_accepted_total", {}, connections_accepted_);
}

namespace {
// The number in /proc/self/statm's field `index` (in pages), or -1.
int64_t StatmPages(int index) {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  long long fields[2] = {-1, -1};
  int n = std::fscanf(f, "%lld %lld", &fields[0], &fields[1]);
  std::fclose(f);
  return n == 2 ? fields[index] : -1;
}

int64_t OpenFds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int64_t n = 0;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n - 1;  // the directory stream's own descriptor
}

}  // namespace

void RenderProcessMetrics(MetricsText& out, double start_time_seconds) {
  int64_t page = ::sysconf(_SC_PAGESIZE);
  int64_t virtual_pages = StatmPages(0);
  int64_t resident_pages = StatmPages(1);
  if (resident_pages >= 0) {
    out.Family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    out.Sample("process_resident_memory_bytes", {}, resident_pages * page);
  }
  if (virtual_pages >= 0) {
    out.Family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    out.Sample("process_virtual_memory_bytes", {}, virtual_pages * page);
  }
  if (int64_t fds = OpenFds(); fds >= 0) {
    out.Family("process_open_fds", "gauge", "Number of open file descriptors.");
    out.Sample("process_open_fds", {}, fds);
  }
  if (rlimit limit; ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    out.Family("process_max_fds", "gauge", "Maximum number of open file descriptors.");
    out.Sample("process_max_fds", {}, static_cast<int64_t>(limit.rlim_cur));
  }
  if (rusage usage; ::getrusage(RUSAGE_SELF, &usage) == 0) {
    double cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                 static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    out.Family("process_cpu_seconds_total", "counter",
               "Total user and system CPU time in seconds.");
    out.Sample("process_cpu_seconds_total", {}, cpu);
  }
  out.Family("process_start_time_seconds", "gauge",
             "Start time of the process since the Unix epoch in seconds.");
  out.Sample("process_start_time_seconds", {}, start_time_seconds);
}

}  // namespace runnel::broker
