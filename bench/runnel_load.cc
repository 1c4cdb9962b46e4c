// runnel_load: a librdkafka load generator for Runnel (or any Kafka broker).
//
// Modes:
//   produce  -- N messages of S bytes as fast as possible; reports msgs/s, MB/s.
//   consume  -- assign every partition of a topic, read N messages from the
//               beginning; reports msgs/s, MB/s. --prefill produces them first.
//   latency  -- produce at a fixed rate for T seconds; latency is the time from
//               rd_kafka_producev() to the delivery report. Reports p50/p99/
//               p999/max in ms.
//
// Target: --bootstrap HOST:PORT, or --mock for librdkafka's in-process mock
// cluster (one broker), which gives a baseline on the same machine.
//
// Output: one line per figure, "MODE key=value ...", so it can be grepped.

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "runnel_load: %s\n", msg.c_str());
  std::exit(1);
}

struct Options {
  std::string mode;
  std::string bootstrap;
  bool mock = false;
  std::string target;  // label printed in output; defaults to "mock" or "broker"
  std::string topic;
  bool create_topic = false;
  int partitions = 1;
  int64_t messages = 100000;
  int size = 100;
  int key_size = 0;
  std::string acks = "1";
  std::string compression = "none";
  std::string linger_ms = "5";
  std::string batch_size = "1000000";
  int rate = 10000;        // latency mode, msgs/s
  double duration_s = 10;  // latency mode
  double timeout_s = 120;  // give up waiting for deliveries/messages after this
  bool prefill = false;    // consume mode: produce the messages first
  std::vector<std::pair<std::string, std::string>> extra;  // --set k=v
};

void Usage() {
  std::fprintf(
      stderr,
      "usage: runnel_load --mode produce|consume|latency (--bootstrap HOST:PORT | --mock)\n"
      "  [--topic NAME] [--create-topic] [--partitions P]\n"
      "  [--messages N] [--size BYTES] [--key-size BYTES]\n"
      "  [--acks 0|1|all] [--compression none|gzip|snappy|lz4|zstd]\n"
      "  [--linger-ms MS] [--batch-size BYTES]\n"
      "  [--rate MSGS_PER_S] [--duration S]     (latency)\n"
      "  [--prefill]                            (consume: produce N messages first)\n"
      "  [--timeout S] [--target LABEL] [--set librdkafka.key=value]...\n");
  std::exit(2);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  auto value = [&](int& i) -> std::string {
    if (i + 1 >= argc) Usage();
    return argv[++i];
  };
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--mode")
      o.mode = value(i);
    else if (a == "--bootstrap")
      o.bootstrap = value(i);
    else if (a == "--mock")
      o.mock = true;
    else if (a == "--target")
      o.target = value(i);
    else if (a == "--topic")
      o.topic = value(i);
    else if (a == "--create-topic")
      o.create_topic = true;
    else if (a == "--partitions")
      o.partitions = std::stoi(value(i));
    else if (a == "--messages")
      o.messages = std::stoll(value(i));
    else if (a == "--size")
      o.size = std::stoi(value(i));
    else if (a == "--key-size")
      o.key_size = std::stoi(value(i));
    else if (a == "--acks")
      o.acks = value(i);
    else if (a == "--compression")
      o.compression = value(i);
    else if (a == "--linger-ms")
      o.linger_ms = value(i);
    else if (a == "--batch-size")
      o.batch_size = value(i);
    else if (a == "--rate")
      o.rate = std::stoi(value(i));
    else if (a == "--duration")
      o.duration_s = std::stod(value(i));
    else if (a == "--timeout")
      o.timeout_s = std::stod(value(i));
    else if (a == "--prefill")
      o.prefill = true;
    else if (a == "--set") {
      std::string kv = value(i);
      size_t eq = kv.find('=');
      if (eq == std::string::npos) Usage();
      o.extra.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    } else {
      std::fprintf(stderr, "runnel_load: unknown argument %s\n", a.c_str());
      Usage();
    }
  }
  if (o.mode != "produce" && o.mode != "consume" && o.mode != "latency") Usage();
  if (o.mock == !o.bootstrap.empty()) Usage();  // exactly one target
  if (o.acks == "-1") o.acks = "all";
  if (o.target.empty()) o.target = o.mock ? "mock" : "broker";
  if (o.topic.empty()) o.topic = "runnel-load-" + o.mode + "-" + std::to_string(getpid());
  if (o.messages <= 0 || o.size < 0 || o.partitions <= 0 || o.rate <= 0) Usage();
  return o;
}

// Owns the in-process mock cluster; its rd_kafka_t must outlive every client.
class MockCluster {
 public:
  MockCluster() {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (rk_ == nullptr) Die(std::string("mock host: ") + err);
    cluster_ = rd_kafka_mock_cluster_new(rk_, 1);
    if (cluster_ == nullptr) Die("rd_kafka_mock_cluster_new failed");
  }
  ~MockCluster() {
    rd_kafka_mock_cluster_destroy(cluster_);
    rd_kafka_destroy(rk_);
  }
  std::string bootstrap() const { return rd_kafka_mock_cluster_bootstraps(cluster_); }
  void CreateTopic(const std::string& topic, int partitions) {
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, 1);
    if (err) Die("mock topic create: " + std::string(rd_kafka_err2str(err)));
  }

 private:
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
};

void Set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
    Die("config " + key + "=" + value + ": " + err);
  }
}

rd_kafka_conf_t* BaseConf(const Options& o, const std::string& bootstrap) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  Set(conf, "bootstrap.servers", bootstrap);
  Set(conf, "log_level", "4");
  for (const auto& [k, v] : o.extra) Set(conf, k, v);
  return conf;
}

// Creates the topic through the Admin API; an existing topic is fine.
void CreateTopic(const Options& o, const std::string& bootstrap) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, BaseConf(o, bootstrap), err, sizeof(err));
  if (rk == nullptr) Die(std::string("admin client: ") + err);
  rd_kafka_NewTopic_t* nt =
      rd_kafka_NewTopic_new(o.topic.c_str(), o.partitions, 1, err, sizeof(err));
  if (nt == nullptr) Die(std::string("NewTopic: ") + err);
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &nt, 1, nullptr, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000);
  if (ev == nullptr) Die("CreateTopics timed out");
  if (rd_kafka_event_error(ev))
    Die(std::string("CreateTopics: ") + rd_kafka_event_error_string(ev));
  size_t n = 0;
  const rd_kafka_topic_result_t** res =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
  for (size_t i = 0; i < n; i++) {
    rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
    if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      Die("CreateTopics " + o.topic + ": " + rd_kafka_err2name(e) + " " +
          (rd_kafka_topic_result_error_string(res[i]) ? rd_kafka_topic_result_error_string(res[i])
                                                      : ""));
    }
  }
  rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_destroy(rk);
}

// Letters rather than random bytes so that compression has something to do,
// like Kafka's own producer-perf-test.
std::string Payload(int size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(size, 'A');
  for (auto& c : s) c = static_cast<char>('A' + rng() % 26);
  return s;
}

// Delivery bookkeeping shared with the delivery-report callback.
struct Deliveries {
  std::atomic<int64_t> done{0};
  std::atomic<int64_t> errors{0};
  std::atomic<int> first_error{0};
  // Latency mode: send time per message index, and latency once delivered.
  std::vector<int64_t> sent_ns;
  std::vector<int64_t> latency_ns;
};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* d = static_cast<Deliveries*>(opaque);
  if (m->err) {
    if (d->errors.fetch_add(1) == 0) d->first_error = m->err;
  } else if (!d->latency_ns.empty()) {
    auto i = reinterpret_cast<uintptr_t>(m->_private);
    d->latency_ns[i] = NowNs() - d->sent_ns[i];
  }
  d->done.fetch_add(1, std::memory_order_release);
}

rd_kafka_t* NewProducer(const Options& o, const std::string& bootstrap, Deliveries* d) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  Set(conf, "bootstrap.servers", bootstrap);
  Set(conf, "log_level", "4");
  Set(conf, "acks", o.acks);
  Set(conf, "compression.codec", o.compression);
  Set(conf, "linger.ms", o.linger_ms);
  Set(conf, "batch.size", o.batch_size);
  Set(conf, "queue.buffering.max.messages", "1000000");
  Set(conf, "queue.buffering.max.kbytes", "1048576");
  for (const auto& [k, v] : o.extra) Set(conf, k, v);
  rd_kafka_conf_set_dr_msg_cb(conf, OnDelivery);
  rd_kafka_conf_set_opaque(conf, d);
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (rk == nullptr) Die(std::string("producer: ") + err);
  return rk;
}

// Sends one message, waiting for queue space if the local queue is full.
void Send(rd_kafka_t* rk, const Options& o, const std::string& key, const std::string& value,
          void* opaque) {
  for (;;) {
    // No RD_KAFKA_MSG_F_COPY: key and value outlive the producer.
    rd_kafka_resp_err_t err =
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(o.topic.c_str()),
                          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                          RD_KAFKA_V_KEY(key.empty() ? nullptr : key.data(), key.size()),
                          RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) Die(std::string("produce: ") + rd_kafka_err2str(err));
    rd_kafka_poll(rk, 1);
  }
}

// Waits until every delivery report arrived or the timeout passed.
void WaitDeliveries(rd_kafka_t* rk, const Options& o, Deliveries* d, int64_t sent) {
  auto deadline = Clock::now() + std::chrono::duration<double>(o.timeout_s);
  while (d->done.load(std::memory_order_acquire) < sent && Clock::now() < deadline) {
    rd_kafka_poll(rk, 10);
  }
  if (d->done < sent) {
    Die("timed out waiting for deliveries: " + std::to_string(d->done.load()) + "/" +
        std::to_string(sent));
  }
}

std::string ErrorField(const Deliveries& d) {
  std::string s = "errors=" + std::to_string(d.errors.load());
  if (d.errors > 0) {
    s += " first_error=";
    s += rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(d.first_error.load()));
  }
  return s;
}

// Produces o.messages messages; returns elapsed seconds from first send to last delivery.
double ProduceAll(const Options& o, const std::string& bootstrap, Deliveries* d) {
  rd_kafka_t* rk = NewProducer(o, bootstrap, d);
  std::string value = Payload(o.size, 1);
  std::vector<std::string> keys;
  // A few distinct keys spread messages over partitions without per-message allocation.
  for (int i = 0; o.key_size > 0 && i < 1024; i++) {
    std::string k = std::to_string(i);
    k.resize(o.key_size, 'k');
    keys.push_back(k);
  }
  static const std::string kNoKey;
  auto start = Clock::now();
  for (int64_t i = 0; i < o.messages; i++) {
    Send(rk, o, keys.empty() ? kNoKey : keys[i % keys.size()], value, nullptr);
    if ((i & 1023) == 0) rd_kafka_poll(rk, 0);
  }
  WaitDeliveries(rk, o, d, o.messages);
  double elapsed = SecondsSince(start);
  rd_kafka_destroy(rk);
  return elapsed;
}

void PrintRate(const char* mode, const Options& o, int64_t msgs, int64_t bytes, double secs,
               const std::string& tail) {
  std::printf("%s target=%s msgs=%" PRId64
              " size=%d acks=%s compression=%s linger_ms=%s partitions=%d elapsed_s=%.3f "
              "rate_msgs_s=%.0f rate_mb_s=%.2f %s\n",
              mode, o.target.c_str(), msgs, o.size, o.acks.c_str(), o.compression.c_str(),
              o.linger_ms.c_str(), o.partitions, secs, msgs / secs, bytes / secs / 1e6,
              tail.c_str());
  std::fflush(stdout);
}

int RunProduce(const Options& o, const std::string& bootstrap) {
  Deliveries d;
  double secs = ProduceAll(o, bootstrap, &d);
  PrintRate("produce", o, o.messages, o.messages * (o.size + o.key_size), secs, ErrorField(d));
  return d.errors > 0 ? 1 : 0;
}

int RunConsume(const Options& o, const std::string& bootstrap) {
  if (o.prefill) {
    // Spread evenly rather than sticky, so no partition outgrows the others
    // (the mock cluster keeps only 5 MB per partition).
    Options fill = o;
    fill.extra.emplace_back("sticky.partitioning.linger.ms", "0");
    Deliveries d;
    ProduceAll(fill, bootstrap, &d);
    if (d.errors > 0) Die("prefill failed: " + ErrorField(d));
  }
  rd_kafka_conf_t* conf = BaseConf(o, bootstrap);
  // Manual assignment only: no group membership, no offset commits.
  Set(conf, "group.id", "runnel-load");
  Set(conf, "enable.auto.commit", "false");
  Set(conf, "enable.auto.offset.store", "false");
  Set(conf, "enable.partition.eof", "true");
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  if (rk == nullptr) Die(std::string("consumer: ") + err);
  rd_kafka_poll_set_consumer(rk);

  // Partition count from metadata, so any existing topic can be read.
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, o.topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 30000);
  if (e) Die(std::string("metadata: ") + rd_kafka_err2str(e));
  if (md->topic_cnt != 1 || md->topics[0].err) Die("metadata: topic " + o.topic + " not found");
  int partitions = md->topics[0].partition_cnt;
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);

  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; p++) {
    rd_kafka_topic_partition_list_add(parts, o.topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  e = rd_kafka_assign(rk, parts);
  if (e) Die(std::string("assign: ") + rd_kafka_err2str(e));
  rd_kafka_topic_partition_list_destroy(parts);

  int64_t msgs = 0, bytes = 0;
  int eofs = 0;
  auto start = Clock::now();
  auto deadline = start + std::chrono::duration<double>(o.timeout_s);
  // EOF on every partition before N messages means the topic holds fewer.
  std::vector<bool> at_eof(partitions, false);
  // Batches of messages per call: per-message polling costs more than the broker.
  rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(rk);
  std::vector<rd_kafka_message_t*> batch(4096);
  bool all_eof = false;
  while (msgs < o.messages && !all_eof && Clock::now() < deadline) {
    ssize_t n = rd_kafka_consume_batch_queue(queue, 100, batch.data(), batch.size());
    for (ssize_t i = 0; i < n; i++) {
      rd_kafka_message_t* m = batch[i];
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (!at_eof[m->partition]) eofs++;
        at_eof[m->partition] = true;
        all_eof = eofs == partitions;
      } else if (m->err) {
        Die(std::string("consume: ") + rd_kafka_message_errstr(m));
      } else {
        if (at_eof[m->partition]) eofs--;
        at_eof[m->partition] = false;
        all_eof = false;
        msgs++;
        bytes += m->len + m->key_len;
      }
      rd_kafka_message_destroy(m);
    }
  }
  rd_kafka_queue_destroy(queue);
  double secs = SecondsSince(start);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  PrintRate("consume", o, msgs, bytes, secs, "wanted=" + std::to_string(o.messages));
  return msgs == o.messages ? 0 : 1;
}

double PercentileMs(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(q * (sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)] / 1e6;
}

int RunLatency(const Options& o, const std::string& bootstrap) {
  Deliveries d;
  const int64_t total = static_cast<int64_t>(o.rate * o.duration_s);
  d.sent_ns.assign(total, 0);
  d.latency_ns.assign(total, -1);
  rd_kafka_t* rk = NewProducer(o, bootstrap, &d);
  std::string value = Payload(o.size, 1);

  // Warm up: metadata and connections, so the first messages measure the broker.
  {
    rd_kafka_resp_err_t err =
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(o.topic.c_str()),
                          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                          RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(uintptr_t{0})), RD_KAFKA_V_END);
    if (err) Die(std::string("warm-up produce: ") + rd_kafka_err2str(err));
    WaitDeliveries(rk, o, &d, 1);
    if (d.errors > 0) Die("warm-up failed: " + ErrorField(d));
    d.done = 0;
    d.latency_ns[0] = -1;
  }

  // Delivery reports are served by their own thread so that they are timed
  // when they arrive, not when the sender gets around to polling.
  std::atomic<bool> stop{false};
  std::thread poller([&] {
    while (!stop.load()) rd_kafka_poll(rk, 1);
  });

  const std::string key;
  const int64_t interval_ns = 1000000000LL / o.rate;
  int64_t start_ns = NowNs();
  int64_t max_behind_ns = 0;
  for (int64_t i = 0; i < total; i++) {
    int64_t due = start_ns + i * interval_ns;
    int64_t now = NowNs();
    if (now < due) {
      std::this_thread::sleep_for(std::chrono::nanoseconds(due - now));
      now = NowNs();
    }
    max_behind_ns = std::max(max_behind_ns, now - due);
    d.sent_ns[i] = now;
    Send(rk, o, key, value, reinterpret_cast<void*>(static_cast<uintptr_t>(i)));
  }
  double send_secs = (NowNs() - start_ns) / 1e9;
  auto deadline = Clock::now() + std::chrono::duration<double>(o.timeout_s);
  while (d.done.load(std::memory_order_acquire) < total && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop = true;
  poller.join();
  if (d.done < total) {
    Die("timed out waiting for deliveries: " + std::to_string(d.done.load()) + "/" +
        std::to_string(total));
  }

  std::vector<int64_t> lat;
  lat.reserve(total);
  for (int64_t v : d.latency_ns) {
    if (v >= 0) lat.push_back(v);
  }
  std::sort(lat.begin(), lat.end());
  std::printf("latency target=%s msgs=%" PRId64
              " size=%d acks=%s compression=%s linger_ms=%s rate_msgs_s=%d achieved_msgs_s=%.0f "
              "p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f max_send_lag_ms=%.3f %s\n",
              o.target.c_str(), total, o.size, o.acks.c_str(), o.compression.c_str(),
              o.linger_ms.c_str(), o.rate, total / send_secs, PercentileMs(lat, 0.50),
              PercentileMs(lat, 0.99), PercentileMs(lat, 0.999),
              lat.empty() ? 0.0 : lat.back() / 1e6, max_behind_ns / 1e6, ErrorField(d).c_str());
  std::fflush(stdout);
  rd_kafka_destroy(rk);
  return d.errors > 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    o = ParseArgs(argc, argv);
  } catch (const std::exception&) {  // std::stoi and friends on a bad number
    Usage();
  }
  std::unique_ptr<MockCluster> mock;
  std::string bootstrap = o.bootstrap;
  if (o.mock) {
    mock = std::make_unique<MockCluster>();
    bootstrap = mock->bootstrap();
    // The mock broker has no CreateTopics; create the topic directly.
    mock->CreateTopic(o.topic, o.partitions);
  } else if (o.create_topic) {
    CreateTopic(o, bootstrap);
  }
  if (o.mode == "produce") return RunProduce(o, bootstrap);
  if (o.mode == "consume") return RunConsume(o, bootstrap);
  return RunLatency(o, bootstrap);
}
