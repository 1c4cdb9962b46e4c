// RequestContext: one decoded request header plus the body bytes, handed to the
// handler for its API, and the way back for the response.
//
// A handler decodes the body with the generated request type, does its work, and
// calls Respond() exactly once (or NoResponse() for Produce with acks=0), possibly
// later from a timer (Fetch long-polls). The connection sends responses in request
// order whatever order they complete in. The frame buffer stays alive as long as the
// context, so decoded `records` views into it remain valid.
#ifndef RUNNEL_BROKER_REQUEST_CONTEXT_H_
#define RUNNEL_BROKER_REQUEST_CONTEXT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "broker/config.h"
#include "protocol/messages/request_header.h"
#include "protocol/messages/response_header.h"
#include "protocol/wire.h"

namespace runnel::broker {

class Broker;

// A request frame (header and body) as read from the socket. Allocated without
// initialization: the socket fills every byte.
struct Frame {
  std::shared_ptr<char[]> data;
  size_t size = 0;
  std::string_view view() const { return {data.get(), size}; }
};

// Completes one request slot of a connection; called once with the encoded frame
// (size prefix included), or with nullptr for "no response". `close_after` asks the
// connection to close once everything before it is sent.
using ResponseSink = std::function<void(std::unique_ptr<protocol::Encoded>, bool close_after)>;

// What a request knows of the connection it arrived on. Shared, because a request
// (a long-polling fetch) may outlive its connection.
struct ClientInfo {
  const Endpoint* advertised;  // of the listener the connection arrived on
  std::string host;            // "/<ip>", as Kafka reports a client's host
};

class RequestContext {
 public:
  RequestContext(Broker* broker, std::shared_ptr<const ClientInfo> client,
                 protocol::RequestHeader header, Frame frame, std::string_view body,
                 ResponseSink sink)
      : broker_(broker),
        client_(std::move(client)),
        header_(std::move(header)),
        frame_(std::move(frame)),
        body_(body),
        sink_(std::move(sink)) {}

  Broker& broker() const { return *broker_; }
  // The advertised endpoint of the listener this request arrived on.
  const Endpoint& advertised() const { return *client_->advertised; }
  const std::string& client_host() const { return client_->host; }
  const protocol::RequestHeader& header() const { return header_; }
  int16_t api_version() const { return header_.request_api_version; }
  // The request body (after the header); valid while the context lives.
  std::string_view body() const { return body_; }

  // Decodes the body as Request at the request's version. False on malformed input,
  // in which case the connection is closed (as Kafka does) and nothing more is due.
  template <typename Request>
  bool Decode(Request* request) {
    protocol::Reader r(body_);
    if (request->Decode(r, api_version())) return true;
    Close();
    return false;
  }

  template <typename Response>
  void Respond(const Response& response, bool close_after = false) {
    auto out = std::make_unique<protocol::Encoded>();
    protocol::Writer w(out.get());
    BeginResponse(w, ResponseHeaderVersion(Response::kApiKey, api_version()));
    response.Encode(w, api_version());
    FinishResponse(std::move(out), close_after);
  }
  // Like Respond, but encodes the body at `version` with response header v0 (for
  // ApiVersions' unsupported-version answer).
  template <typename Response>
  void RespondAtVersion(const Response& response, int16_t version) {
    auto out = std::make_unique<protocol::Encoded>();
    protocol::Writer w(out.get());
    BeginResponse(w, 0);
    response.Encode(w, version);
    FinishResponse(std::move(out), false);
  }
  void NoResponse() { sink_(nullptr, false); }
  // Closes the connection instead of answering (Kafka's reaction to broken requests).
  void Close() { sink_(nullptr, true); }

  static int16_t ResponseHeaderVersion(int16_t api_key, int16_t api_version);

 private:
  void BeginResponse(protocol::Writer& w, int16_t header_version);
  void FinishResponse(std::unique_ptr<protocol::Encoded> out, bool close_after);

  Broker* broker_;
  std::shared_ptr<const ClientInfo> client_;
  protocol::RequestHeader header_;
  Frame frame_;
  std::string_view body_;
  ResponseSink sink_;
};

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_REQUEST_CONTEXT_H_
