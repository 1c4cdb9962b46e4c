// Connection: one client TCP connection speaking Kafka's framing.
//
// Frames are an int32 size followed by that many bytes (request header, then body).
// A negative size, one over socket.request.max.bytes, or a header that does not parse
// closes this connection only. Requests may be pipelined: each gets a slot in
// `pending_` when it arrives, handlers fill slots in any order, and responses leave
// strictly in request order. Response bytes go out with writev and log data with
// sendfile(2), straight from the page cache. Reading pauses while too many responses
// wait, which bounds the memory one client can pin.
#ifndef RUNNEL_BROKER_CONNECTION_H_
#define RUNNEL_BROKER_CONNECTION_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "asio.hpp"
#include "broker/config.h"
#include "broker/request_context.h"
#include "protocol/wire.h"

namespace runnel::broker {

class Broker;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(asio::ip::tcp::socket socket, Broker* broker, const Endpoint* advertised);
  void Start();
  void Close();
  // For a graceful shutdown: reads no further requests, answers those already read,
  // then closes.
  void Drain();
  bool closed() const { return closed_; }

 private:
  struct Slot {
    bool done = false;
    bool close_after = false;
    std::unique_ptr<protocol::Encoded> response;  // null: nothing to send
    size_t sent = 0;                              // bytes of `response` already written
  };

  void ReadSize();
  void ReadFrame(int32_t size);
  void Dispatch(Frame frame);
  void Complete(Slot* slot, std::unique_ptr<protocol::Encoded> response, bool close_after);
  // Writes completed slots from the front until done or the socket would block.
  void Flush();
  // Sends as much of slot's response as the socket takes; true when all of it is sent.
  bool SendSome(Slot& slot, bool* would_block);
  bool ShouldPauseReading() const;
  // Reading ended (peer closed, error, or Drain): close now unless draining, in which
  // case close once every response is out.
  void OnReadEnd();
  void CloseIfDrained();

  asio::ip::tcp::socket socket_;
  Broker* broker_;
  std::shared_ptr<const ClientInfo> client_;
  std::string peer_;  // "ip:port", for logging
  char size_bytes_[4];
  std::deque<std::unique_ptr<Slot>> pending_;
  bool reading_paused_ = false;
  bool write_waiting_ = false;
  bool closed_ = false;
  bool draining_ = false;
  // While draining no read is pending to hold the connection alive (responses in the
  // making hold it only weakly), so it holds itself until Close().
  std::shared_ptr<Connection> self_while_draining_;
};

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_CONNECTION_H_
