#include "kafka_client.h"

#include <atomic>
#include <cstdio>
#include <memory>
#include <sstream>
#include <thread>

namespace runnel::integration {

namespace {

using Clock = std::chrono::steady_clock;

// Fixed base so timestamps are distinguishable from broker append time.
constexpr int64_t kBaseTimestamp = 1600000000000;

std::string ErrStr(rd_kafka_resp_err_t err) {
  return std::string(rd_kafka_err2name(err)) + " (" + rd_kafka_err2str(err) + ")";
}

// Sets every key=value or returns the first error.
std::string SetAll(rd_kafka_conf_t* conf,
                   const std::vector<std::pair<std::string, std::string>>& kvs) {
  char err[512];
  for (const auto& [k, v] : kvs) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      return k + "=" + v + ": " + err;
    }
  }
  return "";
}

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using Handle = std::unique_ptr<rd_kafka_t, HandleDeleter>;

Handle NewClient(rd_kafka_type_t type, const std::string& bootstrap,
                 std::vector<std::pair<std::string, std::string>> kvs, std::string* error,
                 void (*dr)(rd_kafka_t*, const rd_kafka_message_t*, void*) = nullptr,
                 void* opaque = nullptr) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  kvs.insert(kvs.begin(), {"bootstrap.servers", bootstrap});
  kvs.insert(kvs.begin(), {"log_level", "4"});
  if (std::string e = SetAll(conf, kvs); !e.empty()) {
    rd_kafka_conf_destroy(conf);
    *error = e;
    return nullptr;
  }
  if (dr != nullptr) rd_kafka_conf_set_dr_msg_cb(conf, dr);
  if (opaque != nullptr) rd_kafka_conf_set_opaque(conf, opaque);
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof(err));
  if (rk == nullptr) *error = err;
  return Handle(rk);
}

std::optional<std::string> Bytes(const void* p, size_t n) {
  if (p == nullptr) return std::nullopt;
  return std::string(static_cast<const char*>(p), n);
}

std::string Quote(const std::optional<std::string>& s) {
  if (!s) return "null";
  std::string out = "\"";
  for (unsigned char c : *s) {
    if (c >= 32 && c < 127 && c != '"') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  if (out.size() > 80) out = out.substr(0, 77) + "...";
  return out + "\" (" + std::to_string(s->size()) + " bytes)";
}

struct DeliveryState {
  std::vector<Message>* messages = nullptr;
  std::atomic<int64_t> done{0};
  std::atomic<int64_t> failed{0};
  std::string first_error;  // written under the poll call, read after
};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* st = static_cast<DeliveryState*>(opaque);
  auto index = reinterpret_cast<uintptr_t>(m->_private);
  if (m->err) {
    if (st->failed.fetch_add(1) == 0) {
      st->first_error = "message " + std::to_string(index) + ": " + ErrStr(m->err);
    }
  } else {
    (*st->messages)[index].offset = m->offset;
    if ((*st->messages)[index].partition != m->partition) {
      if (st->failed.fetch_add(1) == 0) {
        st->first_error = "message " + std::to_string(index) + " went to partition " +
                          std::to_string(m->partition);
      }
    }
  }
  st->done.fetch_add(1);
}

}  // namespace

std::vector<Message> MakeMessages(int n, int partitions, const std::string& tag) {
  std::vector<Message> out;
  out.reserve(n);
  uint32_t x = 12345;
  for (int i = 0; i < n; i++) {
    Message m;
    m.partition = i % partitions;
    m.key = tag + "-key-" + std::to_string(i);
    if (i % 50 == 7) {
      m.value = std::nullopt;
    } else if (i % 97 == 3) {
      m.value = "";
    } else {
      std::string v = "value-" + std::to_string(i) + ":";
      int len = (i * 37) % 300;
      for (int j = 0; j < len; j++) {
        x = x * 1103515245 + 12345;
        v += static_cast<char>('a' + (x >> 16) % 26);
      }
      m.value = v;
    }
    switch (i % 4) {
      case 0:
        break;  // no headers
      case 1:
        m.headers = {{"idx", std::to_string(i)}};
        break;
      case 2: {
        // Binary header value with NULs, and a duplicate key.
        std::string bin(4, '\0');
        bin[1] = static_cast<char>(i & 0xff);
        bin[3] = static_cast<char>((i >> 8) & 0xff);
        m.headers = {{"idx", std::to_string(i)}, {"bin", bin}, {"idx", "dup"}};
        break;
      }
      case 3:
        m.headers = {{"nullvalue", std::nullopt}, {"", "empty-key"}};
        break;
    }
    m.timestamp = kBaseTimestamp + i * 3;
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<Message> ForPartition(const std::vector<Message>& all, int32_t partition) {
  std::vector<Message> out;
  for (const auto& m : all) {
    if (m.partition == partition) out.push_back(m);
  }
  return out;
}

std::string CreateTopic(const std::string& bootstrap, const std::string& topic, int partitions) {
  std::string error;
  Handle rk = NewClient(RD_KAFKA_PRODUCER, bootstrap, {}, &error);
  if (!rk) return error;
  char err[512];
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, err, sizeof(err));
  if (nt == nullptr) return err;
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk.get());
  rd_kafka_AdminOptions_t* opts =
      rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(opts, 30000, err, sizeof(err));
  rd_kafka_CreateTopics(rk.get(), &nt, 1, opts, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 60000);
  if (ev == nullptr) {
    error = "CreateTopics: no result within 60 s";
  } else if (rd_kafka_event_error(ev)) {
    error = std::string("CreateTopics: ") + rd_kafka_event_error_string(ev);
  } else {
    size_t n = 0;
    const rd_kafka_topic_result_t** res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    if (n != 1) {
      error = "CreateTopics: " + std::to_string(n) + " results";
    } else if (rd_kafka_topic_result_error(res[0])) {
      error = "CreateTopics " + topic + ": " + ErrStr(rd_kafka_topic_result_error(res[0]));
    } else if (std::string(rd_kafka_topic_result_name(res[0])) != topic) {
      error = std::string("CreateTopics: result for ") + rd_kafka_topic_result_name(res[0]);
    }
  }
  if (ev != nullptr) rd_kafka_event_destroy(ev);
  rd_kafka_AdminOptions_destroy(opts);
  rd_kafka_queue_destroy(q);
  rd_kafka_NewTopic_destroy(nt);
  return error;
}

std::string Produce(const std::string& bootstrap, const std::string& topic,
                    std::vector<Message>* messages, const ProduceOptions& options) {
  DeliveryState st;
  st.messages = messages;
  std::string error;
  // No retries: a failed request must show up as a failed delivery, not be
  // papered over (and reordered) by a retry.
  Handle rk = NewClient(RD_KAFKA_PRODUCER, bootstrap,
                        {{"acks", options.acks},
                         {"compression.codec", options.compression},
                         {"linger.ms", "5"},
                         {"message.send.max.retries", "0"},
                         {"queue.buffering.max.messages", "200000"}},
                        &error, OnDelivery, &st);
  if (!rk) return error;
  for (size_t i = 0; i < messages->size(); i++) {
    const Message& m = (*messages)[i];
    rd_kafka_headers_t* hdrs = nullptr;
    if (!m.headers.empty()) {
      hdrs = rd_kafka_headers_new(m.headers.size());
      for (const auto& h : m.headers) {
        rd_kafka_header_add(hdrs, h.key.data(), h.key.size(), h.value ? h.value->data() : nullptr,
                            h.value ? h.value->size() : 0);
      }
    }
    // Null key or value: a null pointer (the macros below cast their arguments).
    const char* key = m.key ? m.key->data() : nullptr;
    const size_t key_len = m.key ? m.key->size() : 0;
    char* value = m.value ? const_cast<char*>(m.value->data()) : nullptr;
    const size_t value_len = m.value ? m.value->size() : 0;
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(m.partition),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len),
          RD_KAFKA_V_VALUE(value, value_len), RD_KAFKA_V_TIMESTAMP(m.timestamp),
          RD_KAFKA_V_HEADERS(hdrs),
          RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<uintptr_t>(i))), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;  // headers now owned by the message
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        if (hdrs != nullptr) rd_kafka_headers_destroy(hdrs);
        return "producev message " + std::to_string(i) + ": " + ErrStr(err);
      }
      rd_kafka_poll(rk.get(), 10);
    }
    rd_kafka_poll(rk.get(), 0);
  }
  rd_kafka_resp_err_t err = rd_kafka_flush(rk.get(), 120000);
  if (err) return "flush: " + ErrStr(err) + ", " + std::to_string(st.done.load()) + " delivered";
  if (st.failed > 0) {
    return std::to_string(st.failed.load()) + " failed deliveries; first: " + st.first_error;
  }
  if (st.done != static_cast<int64_t>(messages->size())) {
    return std::to_string(st.done.load()) + " delivery reports for " +
           std::to_string(messages->size()) + " messages";
  }
  return "";
}

Watermarks QueryWatermarks(const std::string& bootstrap, const std::string& topic,
                           int32_t partition) {
  Watermarks w;
  std::string error;
  Handle rk = NewClient(RD_KAFKA_PRODUCER, bootstrap, {}, &error);
  if (!rk) {
    w.err = RD_KAFKA_RESP_ERR__INVALID_ARG;
    return w;
  }
  w.err =
      rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), partition, &w.low, &w.high, 10000);
  return w;
}

std::string WaitForEndOffsets(const std::string& bootstrap, const std::string& topic,
                              const std::vector<int64_t>& want, std::chrono::seconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string seen;
  for (;;) {
    bool all = true;
    seen.clear();
    for (size_t p = 0; p < want.size(); p++) {
      Watermarks w = QueryWatermarks(bootstrap, topic, static_cast<int32_t>(p));
      seen += " p" + std::to_string(p) + "=" + (w.err ? ErrStr(w.err) : std::to_string(w.high)) +
              "/" + std::to_string(want[p]);
      if (w.err || w.high < want[p]) all = false;
    }
    if (all) return "";
    if (Clock::now() > deadline) return "end offsets not reached:" + seen;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

std::vector<std::vector<Message>> ConsumeFromBeginning(const std::string& bootstrap,
                                                       const std::string& topic,
                                                       const std::vector<int64_t>& want,
                                                       std::chrono::seconds timeout,
                                                       std::string* error) {
  std::vector<std::vector<Message>> got(want.size());
  // Manual assignment: the group id is required by the API but no group
  // protocol or offset commit is used.
  Handle rk = NewClient(RD_KAFKA_CONSUMER, bootstrap,
                        {{"group.id", "runnel-integration"},
                         {"enable.auto.commit", "false"},
                         {"enable.auto.offset.store", "false"},
                         {"auto.offset.reset", "error"},
                         {"enable.partition.eof", "false"}},
                        error);
  if (!rk) return got;
  rd_kafka_poll_set_consumer(rk.get());
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(want.size());
  for (size_t p = 0; p < want.size(); p++) {
    rd_kafka_topic_partition_list_add(parts, topic.c_str(), static_cast<int32_t>(p))->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_resp_err_t err = rd_kafka_assign(rk.get(), parts);
  rd_kafka_topic_partition_list_destroy(parts);
  if (err) {
    *error = "assign: " + ErrStr(err);
    return got;
  }
  int64_t remaining = 0;
  for (int64_t w : want) remaining += w;
  const auto deadline = Clock::now() + timeout;
  while (remaining > 0 && Clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk.get(), 200);
    if (m == nullptr) continue;
    if (m->err) {
      *error = "consume: " + ErrStr(m->err) + ": " + rd_kafka_message_errstr(m);
      rd_kafka_message_destroy(m);
      break;
    }
    Message out;
    out.partition = m->partition;
    out.offset = m->offset;
    out.key = Bytes(m->key, m->key_len);
    out.value = Bytes(m->payload, m->len);
    rd_kafka_timestamp_type_t tstype;
    out.timestamp = rd_kafka_message_timestamp(m, &tstype);
    if (tstype != RD_KAFKA_TIMESTAMP_CREATE_TIME) out.timestamp = -1000 - tstype;
    rd_kafka_headers_t* hdrs = nullptr;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* name;
      const void* val;
      size_t size;
      for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == 0; i++) {
        out.headers.push_back({name, Bytes(val, size)});
      }
    }
    rd_kafka_message_destroy(m);
    if (out.partition < 0 || out.partition >= static_cast<int32_t>(want.size())) {
      *error = "message from unassigned partition " + std::to_string(out.partition);
      break;
    }
    got[out.partition].push_back(std::move(out));
    remaining--;
  }
  if (error->empty() && remaining > 0) {
    *error = "timed out with " + std::to_string(remaining) + " messages still unread";
  }
  rd_kafka_consumer_close(rk.get());
  return got;
}

std::string Describe(const Message& m) {
  std::ostringstream s;
  s << "{partition=" << m.partition << " offset=" << m.offset << " key=" << Quote(m.key)
    << " value=" << Quote(m.value) << " timestamp=" << m.timestamp << " headers=[";
  for (const auto& h : m.headers) s << h.key << ":" << Quote(h.value) << " ";
  s << "]}";
  return s.str();
}

std::string CompareLog(const std::vector<Message>& want, const std::vector<Message>& got) {
  for (size_t i = 0; i < want.size() && i < got.size(); i++) {
    const Message& w = want[i];
    const Message& g = got[i];
    if (g.offset != static_cast<int64_t>(i) || g.partition != w.partition || g.key != w.key ||
        g.value != w.value || g.headers != w.headers || g.timestamp != w.timestamp) {
      Message expected = w;
      expected.offset = static_cast<int64_t>(i);
      return "record " + std::to_string(i) + " differs:\n  want " + Describe(expected) +
             "\n  got  " + Describe(g);
    }
  }
  if (want.size() != got.size()) {
    return "want " + std::to_string(want.size()) + " records, got " + std::to_string(got.size());
  }
  return "";
}

std::vector<ReadRecord> ReadPartition(const std::string& bootstrap, const std::string& topic,
                                      int32_t p, std::string* error) {
  std::vector<ReadRecord> got;
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  for (const auto& [k, v] :
       std::vector<std::pair<std::string, std::string>>{{"bootstrap.servers", bootstrap},
                                                        {"group.id", "read-partition"},
                                                        {"enable.auto.commit", "false"},
                                                        {"auto.offset.reset", "error"},
                                                        {"enable.partition.eof", "true"},
                                                        {"check.crcs", "true"},
                                                        {"log_level", "2"}}) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      *error = k + ": " + err;
      rd_kafka_conf_destroy(conf);
      return {};
    }
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  if (rk == nullptr) {
    *error = err;
    return got;
  }
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(parts, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(rk, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    if (std::chrono::steady_clock::now() > deadline) {
      *error = "no partition EOF within 60 s, " + std::to_string(got.size()) + " records read";
      break;
    }
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 200);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      rd_kafka_message_destroy(m);
      break;
    }
    if (m->err) {
      *error =
          "consume: " + std::string(rd_kafka_err2name(m->err)) + ": " + rd_kafka_message_errstr(m);
      rd_kafka_message_destroy(m);
      break;
    }
    got.push_back({m->offset,
                   m->key ? std::string(static_cast<const char*>(m->key), m->key_len) : "<null>",
                   std::string(static_cast<const char*>(m->payload), m->len)});
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return got;
}

}  // namespace runnel::integration
