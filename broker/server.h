// Server: the listeners' acceptors and the open connections, on one io_context.
//
// Each listener accepts plaintext Kafka connections; a connection answers Metadata
// with the advertised address of the listener it arrived on. A listener on port 0
// binds an ephemeral port, which is then also the advertised port.
#ifndef RUNNEL_BROKER_SERVER_H_
#define RUNNEL_BROKER_SERVER_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "asio.hpp"
#include "broker/broker.h"
#include "broker/config.h"

namespace runnel::broker {

class Connection;

class Server {
 public:
  Server(asio::io_context* io, Broker* broker) : io_(io), broker_(broker) {}

  absl::Status Listen();
  // Graceful shutdown, first step: stops accepting and lets every connection answer the
  // requests it has read, then close (Connection::Drain).
  void Drain();
  // Connections not yet closed.
  size_t open_connections();
  // Stops accepting and closes every connection at once.
  void Stop();

  struct Listener {
    Endpoint bound;
    Endpoint advertised;
    asio::ip::tcp::acceptor acceptor;
  };
  const std::vector<std::unique_ptr<Listener>>& listeners() const { return listeners_; }

 private:
  void Accept(Listener* listener);

  asio::io_context* io_;
  Broker* broker_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<std::weak_ptr<Connection>> connections_;
};

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_SERVER_H_
