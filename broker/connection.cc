#include "broker/connection.h"

#include <sys/sendfile.h>
#include <sys/uio.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "broker/broker.h"
#include "broker/dispatch.h"
#include "broker/log.h"
#include "broker/request_context.h"

namespace runnel::broker {
namespace {

constexpr size_t kMaxPendingResponses = 64;
constexpr int kMaxIovecs = 64;

}  // namespace

Connection::Connection(asio::ip::tcp::socket socket, Broker* broker, const Endpoint* advertised)
    : socket_(std::move(socket)), broker_(broker) {
  asio::error_code ec;
  asio::ip::tcp::endpoint peer = socket_.remote_endpoint(ec);
  client_ = std::make_shared<const ClientInfo>(
      ClientInfo{advertised, ec ? std::string() : "/" + peer.address().to_string()});
  if (!ec) {
    const bool v6 = peer.address().is_v6();
    peer_ = absl::StrCat(v6 ? "[" : "", peer.address().to_string(), v6 ? "]:" : ":", peer.port());
  }
}

void Connection::Start() {
  asio::error_code ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  socket_.native_non_blocking(true, ec);
  broker_->OnConnectionOpened();
  LogDebug("Accepted connection from ", peer_);
  ReadSize();
}

void Connection::Close() {
  if (closed_) return;
  closed_ = true;
  asio::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  pending_.clear();
  broker_->OnConnectionClosed();
  auto keep_until_return = std::move(self_while_draining_);
  LogDebug("Closed connection from ", peer_);
}

void Connection::Drain() {
  if (closed_ || draining_) return;
  draining_ = true;
  self_while_draining_ = shared_from_this();
  // Ends the pending read (it completes with EOF) without touching queued responses.
  asio::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_receive, ec);
  CloseIfDrained();
}

void Connection::OnReadEnd() {
  if (draining_) return CloseIfDrained();
  Close();
}

void Connection::CloseIfDrained() {
  if (draining_ && pending_.empty() && !write_waiting_) Close();
}

void Connection::ReadSize() {
  if (closed_ || draining_) return;
  if (ShouldPauseReading()) {
    reading_paused_ = true;
    return;
  }
  asio::async_read(socket_, asio::buffer(size_bytes_, 4),
                   [self = shared_from_this()](asio::error_code ec, size_t) {
                     if (ec) return self->OnReadEnd();
                     self->broker_->metrics().AddBytesIn(4);
                     uint32_t size = 0;
                     for (char c : self->size_bytes_) size = (size << 8) | static_cast<uint8_t>(c);
                     self->ReadFrame(static_cast<int32_t>(size));
                   });
}

void Connection::ReadFrame(int32_t size) {
  // The smallest valid request header is 8 bytes (key, version, correlation id).
  if (size < 8 || size > broker_->config().socket_request_max_bytes) return Close();
  Frame frame{std::make_shared_for_overwrite<char[]>(static_cast<size_t>(size)),
              static_cast<size_t>(size)};
  asio::async_read(socket_, asio::buffer(frame.data.get(), frame.size),
                   [self = shared_from_this(), frame](asio::error_code ec, size_t) {
                     if (ec) return self->OnReadEnd();
                     self->broker_->metrics().AddBytesIn(frame.size);
                     self->Dispatch(frame);
                     self->ReadSize();
                   });
}

void Connection::Dispatch(Frame frame) {
  pending_.push_back(std::make_unique<Slot>());
  Slot* slot = pending_.back().get();
  std::weak_ptr<Connection> weak = weak_from_this();
  // Every request is counted, with its latency, when its sink is called (ReadFrame
  // guarantees the 2-byte API key).
  Metrics* metrics = &broker_->metrics();
  auto api_key = static_cast<int16_t>((static_cast<uint8_t>(frame.data[0]) << 8) |
                                      static_cast<uint8_t>(frame.data[1]));
  Metrics::Clock::time_point arrived = Metrics::Clock::now();
  ResponseSink sink = [weak, slot, metrics, api_key, arrived](
                          std::unique_ptr<protocol::Encoded> response, bool close) {
    metrics->OnRequestDone(api_key, arrived);
    // A slot outlives neither its connection nor Close(), which clears pending_.
    if (auto self = weak.lock(); self && !self->closed_) {
      self->Complete(slot, std::move(response), close);
    }
  };
  DispatchRequest(broker_, client_, std::move(frame), std::move(sink));
}

void Connection::Complete(Slot* slot, std::unique_ptr<protocol::Encoded> response,
                          bool close_after) {
  slot->done = true;
  slot->close_after = close_after;
  slot->response = std::move(response);
  if (!write_waiting_) Flush();
}

void Connection::Flush() {
  while (!closed_ && !pending_.empty() && pending_.front()->done) {
    Slot& slot = *pending_.front();
    if (slot.response) {
      bool would_block = false;
      if (!SendSome(slot, &would_block)) {
        if (!would_block) return Close();
        write_waiting_ = true;
        socket_.async_wait(asio::ip::tcp::socket::wait_write,
                           [self = shared_from_this()](asio::error_code ec) {
                             self->write_waiting_ = false;
                             if (ec) return self->Close();
                             self->Flush();
                           });
        return;
      }
    }
    bool close_after = slot.close_after;
    pending_.pop_front();
    if (close_after) return Close();
  }
  if (reading_paused_ && !ShouldPauseReading()) {
    reading_paused_ = false;
    ReadSize();
  }
  CloseIfDrained();
}

bool Connection::SendSome(Slot& slot, bool* would_block) {
  const protocol::Encoded& out = *slot.response;
  int fd = socket_.native_handle();
  // Walk the response as pieces: bytes up to the next splice, the spliced file slice, ...
  while (true) {
    size_t pos = 0;      // position in the logical response
    size_t byte_at = 0;  // position in out.bytes
    struct iovec iov[kMaxIovecs];
    int iovcnt = 0;
    const protocol::FileSlice* file = nullptr;
    uint64_t file_skip = 0;
    for (size_t i = 0; i <= out.splices.size(); ++i) {
      size_t bytes_end = i < out.splices.size() ? out.splices[i].at : out.bytes.size();
      size_t len = bytes_end - byte_at;
      if (slot.sent < pos + len) {
        size_t skip = slot.sent > pos ? slot.sent - pos : 0;
        iov[iovcnt++] = {const_cast<char*>(out.bytes.data()) + byte_at + skip, len - skip};
        break;  // one memory piece at a time keeps the bookkeeping simple
      }
      pos += len;
      byte_at = bytes_end;
      if (i < out.splices.size()) {
        const protocol::FileSlice& s = out.splices[i].slice;
        if (slot.sent < pos + s.length) {
          file = &s;
          file_skip = slot.sent - pos;
          break;
        }
        pos += s.length;
      }
    }
    if (iovcnt == 0 && file == nullptr) return true;  // all sent
    ssize_t n;
    if (iovcnt > 0) {
      n = ::writev(fd, iov, iovcnt);
    } else {
      off_t off = static_cast<off_t>(file->offset + file_skip);
      n = ::sendfile(fd, file->fd, &off, file->length - file_skip);
      if (n == 0) {
        // The file is shorter than the slice (truncated underneath us): nothing more
        // can be sent, and the frame would be short, so the connection must go.
        return false;
      }
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      *would_block = errno == EAGAIN || errno == EWOULDBLOCK;
      return false;
    }
    slot.sent += static_cast<size_t>(n);
    broker_->metrics().AddBytesOut(static_cast<uint64_t>(n));
  }
}

bool Connection::ShouldPauseReading() const { return pending_.size() >= kMaxPendingResponses; }

}  // namespace runnel::broker
