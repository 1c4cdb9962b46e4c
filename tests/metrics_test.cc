#include "broker/metrics.h"

#include <cmath>
#include <limits>
#include <string>

#include "broker/log.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace runnel::broker {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsTextTest, EscapesLabelValues) {
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
  EXPECT_EQ(EscapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  MetricsText out;
  out.Family("m", "gauge", "Help.");
  out.Sample("m", {{"topic", "x\"y"}, {"group", "g\\1\n"}}, 3);
  EXPECT_EQ(out.text(),
            "# HELP m Help.\n# TYPE m gauge\n"
            "m{topic=\"x\\\"y\",group=\"g\\\\1\\n\"} 3\n");
}

TEST(MetricsTextTest, EscapesHelpButNotQuotes) {
  EXPECT_EQ(EscapeHelp("a \"quoted\" \\ path\nnext"), "a \"quoted\" \\\\ path\\nnext");
}

TEST(MetricsTextTest, FormatsValues) {
  EXPECT_EQ(FormatMetricValue(0), "0");
  EXPECT_EQ(FormatMetricValue(1.5), "1.5");
  EXPECT_EQ(FormatMetricValue(0.0001), "0.0001");
  EXPECT_EQ(FormatMetricValue(0.0005), "0.0005");
  EXPECT_EQ(FormatMetricValue(1700000000.25), "1700000000.25");
  EXPECT_EQ(FormatMetricValue(-3), "-3");
  EXPECT_EQ(FormatMetricValue(1e-9), "1e-09");
  EXPECT_EQ(FormatMetricValue(1e21), "1e+21");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatMetricValue(std::nan("")), "NaN");
  MetricsText out;
  out.Sample("big", {}, uint64_t{18446744073709551615u});
  out.Sample("neg", {}, int64_t{-7});
  out.Sample("d", {}, 0.25);
  EXPECT_EQ(out.text(), "big 18446744073709551615\nneg -7\nd 0.25\n");
}

TEST(HistogramTest, BucketsAreUpperInclusiveAndCumulative) {
  Histogram h;
  h.Observe(0.0001);  // exactly the first bound: counted in le="0.0001"
  h.Observe(0.0002);  // le="0.00025"
  h.Observe(0.003);   // le="0.005"
  h.Observe(100);     // only +Inf
  EXPECT_EQ(h.count(), 4u);
  EXPECT_DOUBLE_EQ(h.sum(), 0.0001 + 0.0002 + 0.003 + 100);
  EXPECT_EQ(h.CumulativeCount(0), 1u);                              // 0.0001
  EXPECT_EQ(h.CumulativeCount(1), 2u);                              // 0.00025
  EXPECT_EQ(h.CumulativeCount(4), 2u);                              // 0.0025
  EXPECT_EQ(h.CumulativeCount(5), 3u);                              // 0.005
  EXPECT_EQ(h.CumulativeCount(Histogram::kBounds.size() - 1), 3u);  // 30
}

TEST(HistogramTest, RendersBucketsSumAndCount) {
  Histogram h;
  h.Observe(0.5);
  h.Observe(2);
  MetricsText out;
  out.HistogramSamples("lat", {{"api", "Produce"}}, h);
  const std::string& text = out.text();
  EXPECT_THAT(text, HasSubstr("lat_bucket{api=\"Produce\",le=\"0.0001\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("lat_bucket{api=\"Produce\",le=\"0.25\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("lat_bucket{api=\"Produce\",le=\"0.5\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("lat_bucket{api=\"Produce\",le=\"1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("lat_bucket{api=\"Produce\",le=\"2.5\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("lat_bucket{api=\"Produce\",le=\"30\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("lat_bucket{api=\"Produce\",le=\"+Inf\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("lat_sum{api=\"Produce\"} 2.5\n"));
  EXPECT_THAT(text, HasSubstr("lat_count{api=\"Produce\"} 2\n"));
  // One line per bound, +Inf, sum and count.
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), Histogram::kBounds.size() + 3);
}

TEST(MetricsTest, CountsRequestsByApiName) {
  Metrics m;
  Metrics::Clock::time_point now = Metrics::Clock::now();
  m.OnRequestDone(0, now);  // Produce
  m.OnRequestDone(0, now);
  m.OnRequestDone(3, now);   // Metadata
  m.OnRequestDone(-1, now);  // ignored
  m.OnRequestDone(500, now);
  m.AddBytesIn(100);
  m.AddBytesOut(42);
  m.OnConnectionOpened();
  m.OnConnectionOpened();
  m.OnConnectionClosed();
  EXPECT_EQ(m.requests(0), 2u);
  EXPECT_EQ(m.requests(3), 1u);

  MetricsText out;
  m.Render(out, {18});  // ApiVersions listed before any request
  const std::string& text = out.text();
  EXPECT_THAT(text, HasSubstr("# TYPE runnel_requests_total counter\n"));
  EXPECT_THAT(text, HasSubstr("runnel_requests_total{api=\"Produce\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("runnel_requests_total{api=\"Metadata\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("runnel_requests_total{api=\"ApiVersions\"} 0\n"));
  EXPECT_THAT(text, Not(HasSubstr("api=\"Fetch\"")));
  EXPECT_THAT(text, HasSubstr("# TYPE runnel_request_latency_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("runnel_request_latency_seconds_count{api=\"Produce\"} 2\n"));
  EXPECT_THAT(text,
              HasSubstr("runnel_request_latency_seconds_bucket{api=\"Metadata\",le=\"+Inf\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("runnel_network_received_bytes_total 100\n"));
  EXPECT_THAT(text, HasSubstr("runnel_network_sent_bytes_total 42\n"));
  EXPECT_THAT(text, HasSubstr("runnel_connections 1\n"));
  EXPECT_THAT(text, HasSubstr("runnel_connections_accepted_total 2\n"));
}

TEST(MetricsTest, ProcessMetrics) {
  MetricsText out;
  RenderProcessMetrics(out, 1700000000.5);
  const std::string& text = out.text();
  EXPECT_THAT(text, HasSubstr("# TYPE process_resident_memory_bytes gauge\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE process_open_fds gauge\n"));
  EXPECT_THAT(text, HasSubstr("process_start_time_seconds 1700000000.5\n"));
  EXPECT_THAT(text, Not(HasSubstr("process_resident_memory_bytes 0\n")));
}

TEST(LogTest, LevelsParseAndFilter) {
  EXPECT_EQ(ParseLogLevel("TRACE"), LogLevel::kTrace);
  EXPECT_EQ(ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_EQ(ParseLogLevel("WARN"), LogLevel::kWarn);
  EXPECT_EQ(ParseLogLevel("ERROR"), LogLevel::kError);
  EXPECT_EQ(ParseLogLevel("VERBOSE"), std::nullopt);
  LogLevel saved = GetLogLevel();
  SetLogLevel(LogLevel::kWarn);
  EXPECT_FALSE(LogEnabled(LogLevel::kInfo));
  EXPECT_TRUE(LogEnabled(LogLevel::kWarn));
  EXPECT_TRUE(LogEnabled(LogLevel::kError));
  // Lines below the level are not written; the others keep Kafka's log4j layout.
  testing::internal::CaptureStdout();
  LogInfo("dropped ", 1);
  LogDebug("dropped ", 2);
  LogWarn("kept ", 42);
  std::string written = testing::internal::GetCapturedStdout();
  EXPECT_THAT(written, testing::MatchesRegex(
                           "\\[[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3}\\] "
                           "WARN kept 42\n"));
  SetLogLevel(LogLevel::kTrace);
  EXPECT_TRUE(LogEnabled(LogLevel::kTrace));
  SetLogLevel(saved);
}

}  // namespace
}  // namespace runnel::broker
