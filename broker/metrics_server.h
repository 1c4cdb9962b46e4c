// MetricsServer: Prometheus scrapes over a minimal HTTP/1.1 server on the broker's
// io_context (metrics.listener; off unless configured).
//
// GET /metrics (any query string) answers 200 with the text exposition format
// (Content-Type text/plain; version=0.0.4); HEAD answers the same headers without the
// body; other paths 404, other methods 405, anything unparsable 400. Connections are
// kept alive (HTTP/1.1) unless the client asks otherwise, sends a body, or speaks
// HTTP/1.0. Bounds: a request head of at most 8 KiB (else 431 and close); a connection
// has 10 s to send a whole request (from its first byte, or from the previous response)
// and 10 s to take a response, else it is closed; at most 32 connections at once (the
// newest are refused by closing them). Nothing blocks: reads and writes are async, and
// a scrape renders from memory and the storage engine's in-memory sizes.
//
// A scrape reports the live counters of Broker::metrics() plus what the broker's state
// says at that moment (RenderBrokerMetrics).
#ifndef RUNNEL_BROKER_METRICS_SERVER_H_
#define RUNNEL_BROKER_METRICS_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "asio.hpp"
#include "broker/config.h"

namespace runnel::broker {

class Broker;

// The whole exposition: request counters, network, connections, topics, partitions,
// log sizes, consumer groups and their lag, and the process.
std::string RenderBrokerMetrics(Broker& broker);

class MetricsServer {
 public:
  MetricsServer(asio::io_context* io, Broker* broker);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Binds and starts accepting; logs "Metrics listening on http://HOST:PORT/metrics"
  // with the bound port (port 0 binds an ephemeral one).
  absl::Status Listen(const Endpoint& endpoint);
  // Stops accepting and closes every connection.
  void Stop();
  uint16_t port() const { return port_; }

 private:
  class HttpConnection;

  void Accept();

  asio::io_context* io_;
  Broker* broker_;
  asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::vector<std::weak_ptr<HttpConnection>> connections_;
};

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_METRICS_SERVER_H_
