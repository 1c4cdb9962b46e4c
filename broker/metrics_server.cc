#include "broker/metrics_server.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "broker/broker.h"
#include "broker/dispatch.h"
#include "broker/log.h"
#include "broker/metrics.h"

namespace runnel::broker {
namespace {

constexpr size_t kMaxRequestHead = 8192;
constexpr size_t kMaxConnections = 32;
constexpr std::chrono::seconds kDeadline(10);
constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

void RenderStorage(Broker& broker, MetricsText& out) {
  storage::LogManager& logs = broker.logs();
  std::vector<const storage::TopicMetadata*> topics = logs.Topics();
  int64_t partitions = 0;
  for (const storage::TopicMetadata* t : topics) partitions += t->partitions;
  out.Family("runnel_topics", "gauge", "Topics (__consumer_offsets not included).");
  out.Sample("runnel_topics", {}, static_cast<int64_t>(topics.size()));
  out.Family("runnel_partitions", "gauge",
             "Partitions of all topics (__consumer_offsets not included).");
  out.Sample("runnel_partitions", {}, partitions);

  // Per topic: bytes on disk and the sum of the partitions' log end offsets.
  std::map<std::string, std::pair<uint64_t, int64_t>> per_topic;
  for (const storage::TopicMetadata* t : topics) per_topic[t->name];
  logs.ForEachPartition([&](const std::string& topic, int32_t, storage::PartitionLog& log) {
    auto& [bytes, end] = per_topic[topic];
    bytes += log.size_bytes();
    end += log.log_end_offset();
  });
  std::map<std::string, uint64_t> internal_bytes;
  broker.ForEachInternalLog([&](const std::string& topic, int32_t, storage::PartitionLog& log) {
    internal_bytes[topic] += log.size_bytes();
  });
  out.Family("runnel_log_size_bytes", "gauge",
             "Bytes of the topic's log segments, summed over its partitions.");
  for (const auto& [topic, v] : per_topic) {
    out.Sample("runnel_log_size_bytes", {{"topic", topic}}, v.first);
  }
  for (const auto& [topic, bytes] : internal_bytes) {
    out.Sample("runnel_log_size_bytes", {{"topic", topic}}, bytes);
  }
  out.Family("runnel_log_end_offset", "gauge",
             "Log end offsets summed over the topic's partitions: the records appended since "
             "the topic was created.");
  for (const auto& [topic, v] : per_topic) {
    out.Sample("runnel_log_end_offset", {{"topic", topic}}, v.second);
  }
  out.Family("runnel_log_dir_offline", "gauge",
             "1 when the log dir went offline after an I/O error, else 0.");
  out.Sample("runnel_log_dir_offline", {}, static_cast<int64_t>(logs.offline() ? 1 : 0));
}

void RenderGroups(Broker& broker, MetricsText& out) {
  GroupCoordinator& groups = broker.groups();
  auto listed = groups.ListGroups();  // {id, protocol type, state}, sorted by id
  std::map<std::string, int64_t> by_state;
  for (GroupState s : {GroupState::kEmpty, GroupState::kPreparingRebalance,
                       GroupState::kCompletingRebalance, GroupState::kStable}) {
    by_state[GroupStateName(s)] = 0;
  }
  for (const auto& [id, type, state] : listed) ++by_state[state];
  out.Family("runnel_consumer_groups", "gauge", "Consumer groups by state.");
  for (const auto& [state, n] : by_state)
    out.Sample("runnel_consumer_groups", {{"state", state}}, n);

  out.Family("runnel_consumer_group_members", "gauge", "Members of the consumer group.");
  for (const auto& [id, type, state] : listed) {
    out.Sample("runnel_consumer_group_members", {{"group", id}},
               static_cast<int64_t>(groups.DescribeGroup(id).members.size()));
  }
  // Lag as kafka-consumer-groups.sh computes it: the partition's high watermark (its log
  // end offset on a single broker) minus the committed offset.
  std::vector<std::pair<std::string, int64_t>> sums;
  out.Family("runnel_consumer_group_lag", "gauge",
             "High watermark minus committed offset, per group and partition.");
  for (const auto& [id, type, state] : listed) {
    int64_t sum = 0;
    for (const TopicPartitionOffset& o : groups.FetchAllOffsets(id)) {
      storage::PartitionLog* log = broker.logs().Partition(o.topic, o.partition);
      if (log == nullptr || o.offset.offset < 0) continue;
      int64_t lag = log->log_end_offset() - o.offset.offset;
      sum += lag;
      out.Sample("runnel_consumer_group_lag",
                 {{"group", id}, {"topic", o.topic}, {"partition", absl::StrCat(o.partition)}},
                 lag);
    }
    sums.emplace_back(id, sum);
  }
  out.Family("runnel_consumer_group_lag_sum", "gauge",
             "Consumer lag summed over the group's committed partitions.");
  for (const auto& [id, sum] : sums)
    out.Sample("runnel_consumer_group_lag_sum", {{"group", id}}, sum);
}

struct Request {
  std::string method;
  std::string path;
  bool keep_alive = true;
};

// Parses a request head (up to, not including, the blank line); false if malformed.
bool ParseHead(absl::string_view head, Request* req) {
  std::vector<absl::string_view> lines = absl::StrSplit(head, "\r\n");
  std::vector<absl::string_view> parts = absl::StrSplit(lines[0], ' ');
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty()) return false;
  if (parts[2] != "HTTP/1.1" && parts[2] != "HTTP/1.0") return false;
  req->method = std::string(parts[0]);
  absl::string_view target = parts[1];
  req->path = std::string(target.substr(0, target.find('?')));
  req->keep_alive = parts[2] == "HTTP/1.1";
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos) return false;
    absl::string_view name = absl::StripAsciiWhitespace(lines[i].substr(0, colon));
    absl::string_view value = absl::StripAsciiWhitespace(lines[i].substr(colon + 1));
    if (absl::EqualsIgnoreCase(name, "connection")) {
      if (absl::StrContains(absl::AsciiStrToLower(value), "close")) req->keep_alive = false;
    } else if (absl::EqualsIgnoreCase(name, "transfer-encoding")) {
      req->keep_alive = false;  // a body we do not read
    } else if (absl::EqualsIgnoreCase(name, "content-length")) {
      int64_t n = 0;
      if (!absl::SimpleAtoi(value, &n) || n != 0) req->keep_alive = false;
    }
  }
  return true;
}

std::string HttpResponse(int status, absl::string_view reason, absl::string_view content_type,
                         absl::string_view body, bool with_body, bool keep_alive,
                         absl::string_view extra_headers = {}) {
  std::string out =
      absl::StrCat("HTTP/1.1 ", status, " ", reason, "\r\nContent-Type: ", content_type,
                   "\r\nContent-Length: ", body.size(), "\r\n", extra_headers,
                   keep_alive ? "" : "Connection: close\r\n", "\r\n");
  if (with_body) out.append(body.data(), body.size());
  return out;
}

}  // namespace

std::string RenderBrokerMetrics(Broker& broker) {
  MetricsText out;
  std::vector<int16_t> served;
  for (const HandlerEntry& e : Handlers()) served.push_back(e.api_key);
  broker.metrics().Render(out, served);
  RenderStorage(broker, out);
  RenderGroups(broker, out);
  RenderProcessMetrics(out, broker.metrics().start_time_seconds());
  return out.Take();
}

class MetricsServer::HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(asio::ip::tcp::socket socket, Broker* broker)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), broker_(broker) {}

  void Start() {
    ArmDeadline();
    ReadMore();
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    asio::error_code ec;
    timer_.cancel();
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

 private:
  void ArmDeadline() {
    timer_.expires_after(kDeadline);
    timer_.async_wait([self = shared_from_this()](asio::error_code ec) {
      if (!ec) self->Close();  // cancelled (re-armed or closed) otherwise
    });
  }

  void ReadMore() {
    if (closed_) return;
    socket_.async_read_some(asio::buffer(chunk_),
                            [self = shared_from_this()](asio::error_code ec, size_t n) {
                              if (ec || self->closed_) return self->Close();
                              self->in_.append(self->chunk_.data(), n);
                              self->HandleInput();
                            });
  }

  // Answers the request at the front of in_ if it is complete, else reads on.
  void HandleInput() {
    size_t end = in_.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (in_.size() >= kMaxRequestHead) {
        return Respond(
            HttpResponse(431, "Request Header Fields Too Large", "text/plain", "", true, false),
            false);
      }
      return ReadMore();
    }
    if (end + 4 > kMaxRequestHead) {
      return Respond(
          HttpResponse(431, "Request Header Fields Too Large", "text/plain", "", true, false),
          false);
    }
    Request req;
    bool parsed = ParseHead(absl::string_view(in_).substr(0, end), &req);
    in_.erase(0, end + 4);
    if (!parsed) {
      return Respond(HttpResponse(400, "Bad Request", "text/plain", "", true, false), false);
    }
    bool head = req.method == "HEAD";
    if (req.method != "GET" && !head) {
      return Respond(HttpResponse(405, "Method Not Allowed", "text/plain", "", true, false,
                                  "Allow: GET, HEAD\r\n"),
                     false);
    }
    if (req.path != "/metrics") {
      return Respond(
          HttpResponse(404, "Not Found", "text/plain", "Not Found\n", !head, req.keep_alive),
          req.keep_alive);
    }
    std::string body = RenderBrokerMetrics(*broker_);
    Respond(HttpResponse(200, "OK", kContentType, body, !head, req.keep_alive), req.keep_alive);
  }

  void Respond(std::string response, bool keep_alive) {
    out_ = std::move(response);
    ArmDeadline();  // the client has kDeadline to take the response
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this(), keep_alive](asio::error_code ec, size_t) {
                        if (ec || self->closed_ || !keep_alive) return self->Close();
                        self->out_.clear();
                        self->ArmDeadline();  // and as long for the next request
                        self->HandleInput();
                      });
  }

  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  Broker* broker_;
  std::array<char, 4096> chunk_;
  std::string in_;
  std::string out_;
  bool closed_ = false;
};

MetricsServer::MetricsServer(asio::io_context* io, Broker* broker)
    : io_(io), broker_(broker), acceptor_(*io) {}

MetricsServer::~MetricsServer() { Stop(); }

absl::Status MetricsServer::Listen(const Endpoint& endpoint) {
  asio::error_code ec;
  asio::ip::address address = endpoint.host.empty() ? asio::ip::address(asio::ip::address_v6::any())
                                                    : asio::ip::make_address(endpoint.host, ec);
  if (ec) {
    asio::ip::tcp::resolver resolver(*io_);
    auto results = resolver.resolve(endpoint.host, std::to_string(endpoint.port), ec);
    if (ec || results.empty()) {
      return absl::InvalidArgumentError("cannot resolve metrics.listener host " + endpoint.host);
    }
    address = results.begin()->endpoint().address();
  }
  asio::ip::tcp::endpoint bind_to(address, endpoint.port);
  acceptor_.open(bind_to.protocol(), ec);
  if (!ec && address.is_v6()) acceptor_.set_option(asio::ip::v6_only(false), ec);
  if (!ec) acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(bind_to, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot listen on metrics.listener ", endpoint.host,
                                               ":", endpoint.port, ": ", ec.message()));
  }
  port_ = acceptor_.local_endpoint().port();
  LogInfo("Metrics listening on http://", endpoint.host.empty() ? "0.0.0.0" : endpoint.host, ":",
          port_, "/metrics");
  Accept();
  return absl::OkStatus();
}

void MetricsServer::Accept() {
  acceptor_.async_accept([this](asio::error_code ec, asio::ip::tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      std::erase_if(connections_, [](const auto& c) { return c.expired(); });
      if (connections_.size() >= kMaxConnections) {
        asio::error_code ignored;
        socket.close(ignored);
      } else {
        auto connection = std::make_shared<HttpConnection>(std::move(socket), broker_);
        connection->Start();
        connections_.push_back(connection);
      }
    }
    Accept();
  });
}

void MetricsServer::Stop() {
  asio::error_code ec;
  acceptor_.close(ec);
  for (auto& weak : connections_) {
    if (auto c = weak.lock()) c->Close();
  }
  connections_.clear();
}

}  // namespace runnel::broker
