#include "broker/server.h"

#include "broker/connection.h"
#include "broker/log.h"

namespace runnel::broker {

absl::Status Server::Listen() {
  const BrokerConfig& config = broker_->config();
  for (const Endpoint& endpoint : config.listeners) {
    asio::error_code ec;
    asio::ip::address address = endpoint.host.empty()
                                    ? asio::ip::address(asio::ip::address_v6::any())
                                    : asio::ip::make_address(endpoint.host, ec);
    if (ec) {
      // A host name: resolve it.
      asio::ip::tcp::resolver resolver(*io_);
      auto results = resolver.resolve(endpoint.host, std::to_string(endpoint.port), ec);
      if (ec || results.empty()) {
        return absl::InvalidArgumentError("cannot resolve listener host " + endpoint.host);
      }
      address = results.begin()->endpoint().address();
    }
    auto listener =
        std::make_unique<Listener>(Listener{endpoint, endpoint, asio::ip::tcp::acceptor(*io_)});
    asio::ip::tcp::endpoint bind_to(address, endpoint.port);
    auto& acceptor = listener->acceptor;
    acceptor.open(bind_to.protocol(), ec);
    if (!ec && address.is_v6()) acceptor.set_option(asio::ip::v6_only(false), ec);
    if (!ec) acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(bind_to, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError("cannot listen on " + endpoint.listener_name + "://" +
                                    endpoint.host + ":" + std::to_string(endpoint.port) + ": " +
                                    ec.message());
    }
    listener->bound.port = acceptor.local_endpoint().port();
    for (const Endpoint& a : config.advertised_listeners) {
      if (a.listener_name == endpoint.listener_name) listener->advertised = a;
    }
    if (listener->advertised.port == 0) listener->advertised.port = listener->bound.port;
    LogInfo("Listening on ", endpoint.listener_name, "://",
            endpoint.host.empty() ? "0.0.0.0" : endpoint.host, ":", listener->bound.port,
            " (advertised as ", listener->advertised.host, ":", listener->advertised.port, ")");
    Accept(listener.get());
    listeners_.push_back(std::move(listener));
  }
  return absl::OkStatus();
}

void Server::Accept(Listener* listener) {
  listener->acceptor.async_accept(
      [this, listener](asio::error_code ec, asio::ip::tcp::socket socket) {
        if (ec == asio::error::operation_aborted) return;
        if (!ec) {
          auto connection =
              std::make_shared<Connection>(std::move(socket), broker_, &listener->advertised);
          connection->Start();
          std::erase_if(connections_, [](const auto& c) { return c.expired(); });
          connections_.push_back(connection);
        }
        Accept(listener);
      });
}

void Server::Drain() {
  for (auto& listener : listeners_) {
    asio::error_code ec;
    listener->acceptor.close(ec);
  }
  for (auto& weak : connections_) {
    if (auto c = weak.lock()) c->Drain();
  }
}

size_t Server::open_connections() {
  std::erase_if(connections_, [](const auto& weak) {
    auto c = weak.lock();
    return c == nullptr || c->closed();
  });
  return connections_.size();
}

void Server::Stop() {
  for (auto& listener : listeners_) {
    asio::error_code ec;
    listener->acceptor.close(ec);
  }
  for (auto& weak : connections_) {
    if (auto c = weak.lock()) c->Close();
  }
  connections_.clear();
}

}  // namespace runnel::broker
