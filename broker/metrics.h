// Metrics: the broker's hot-path counters, and the writer of Prometheus' text
// exposition format (version 0.0.4) that a scrape renders them with.
//
// Format: per family a "# HELP name text" line (text escapes \ and newline), a
// "# TYPE name counter|gauge|histogram" line, then one "name{label="value",...} number"
// line per sample; label values escape \, " and newline. A histogram is rendered as
// cumulative name_bucket{le="..."} samples ending with le="+Inf", then name_sum and
// name_count. Numbers are written in their shortest exact form; NaN, +Inf, -Inf as such.
//
// Metrics holds plain integers: the broker is single-threaded, so counting is an add.
// What can be computed from the broker's state at scrape time (topics, log sizes,
// groups, lag) is not counted here; see metrics_server.h.
#ifndef RUNNEL_BROKER_METRICS_H_
#define RUNNEL_BROKER_METRICS_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runnel::broker {

// Request latencies in seconds: from 100 us (a cached Metadata) to 30 s (request.timeout.ms).
class Histogram {
 public:
  static constexpr std::array<double, 16> kBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                     0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                     1,      2.5,     5,      30};

  // Counts `seconds` in the first bucket whose bound is >= it (or only in +Inf).
  void Observe(double seconds);

  uint64_t count() const { return count_; }
  double sum() const { return sum_; }
  // Observations <= kBounds[i], cumulative as Prometheus wants them.
  uint64_t CumulativeCount(size_t i) const;

 private:
  std::array<uint64_t, kBounds.size()> buckets_{};  // per bucket, not cumulative
  uint64_t count_ = 0;
  double sum_ = 0;
};

std::string EscapeLabelValue(std::string_view value);
std::string EscapeHelp(std::string_view help);
std::string FormatMetricValue(double value);

// Builds one exposition: Family() once per metric name, then its samples.
class MetricsText {
 public:
  using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

  // type: "counter", "gauge" or "histogram".
  void Family(std::string_view name, std::string_view type, std::string_view help);
  void Sample(std::string_view name, Labels labels, double value);
  void Sample(std::string_view name, Labels labels, int64_t value);
  void Sample(std::string_view name, Labels labels, uint64_t value);
  void Sample(std::string_view name, Labels labels, int value) {
    Sample(name, labels, static_cast<int64_t>(value));
  }
  // name_bucket{labels...,le="..."}, name_sum{labels}, name_count{labels}.
  void HistogramSamples(std::string_view name, Labels labels, const Histogram& h);

  const std::string& text() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  void Start(std::string_view name, Labels labels, std::string_view extra_name = {},
             std::string_view extra_value = {});

  std::string out_;
};

class Metrics {
 public:
  // Kafka's API keys are small (below 100 today); larger ones are not counted.
  static constexpr int kApiKeys = 128;
  using Clock = std::chrono::steady_clock;

  Metrics();

  // A request's response was queued (or the request ended without one): `since` is
  // when its frame arrived.
  void OnRequestDone(int16_t api_key, Clock::time_point since) {
    if (api_key < 0 || api_key >= kApiKeys) return;
    ApiStats& s = apis_[api_key];
    ++s.requests;
    s.latency.Observe(std::chrono::duration<double>(Clock::now() - since).count());
  }
  void AddBytesIn(uint64_t n) { bytes_in_ += n; }
  void AddBytesOut(uint64_t n) { bytes_out_ += n; }
  void OnConnectionOpened() {
    ++connections_accepted_;
    ++connections_open_;
  }
  void OnConnectionClosed() { --connections_open_; }

  uint64_t requests(int16_t api_key) const { return apis_[api_key].requests; }
  uint64_t bytes_in() const { return bytes_in_; }
  uint64_t bytes_out() const { return bytes_out_; }
  int64_t connections_open() const { return connections_open_; }
  uint64_t connections_accepted() const { return connections_accepted_; }
  // Wall-clock seconds since the epoch when this object (the broker) was created.
  double start_time_seconds() const { return start_time_seconds_; }

  // Renders the counters above; the APIs in `always` appear even before their first
  // request (so that rates start at zero), the others once they have been called.
  void Render(MetricsText& out, const std::vector<int16_t>& always) const;

 private:
  struct ApiStats {
    uint64_t requests = 0;
    Histogram latency;
  };

  std::array<ApiStats, kApiKeys> apis_;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  uint64_t connections_accepted_ = 0;
  int64_t connections_open_ = 0;
  double start_time_seconds_;
};

// process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
// process_max_fds, process_cpu_seconds_total and process_start_time_seconds, the
// conventional names, read from /proc/self and getrusage.
void RenderProcessMetrics(MetricsText& out, double start_time_seconds);

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_METRICS_H_
