// Crash recovery: a librdkafka producer (acks=all, no idempotence, no retries, small
// linger) produces keyed records to a real runnel process running with
// log.fsync.before.ack=true; at a random moment the broker is SIGKILLed, started again on
// the same data dir, and the whole log is read back (librdkafka checks every batch CRC)
// and checked against what was sent:
//   - offsets are consecutive from 0 to the high watermark;
//   - every record whose delivery report succeeded is there exactly once, at the offset
//     the report gave, with its key and value;
//   - every record in the log is one that was sent to that partition, with its exact
//     value, no key appears twice, and records are in production order (records without
//     a successful report may be missing, but never duplicated or reordered).
// One trial is one broker lifetime: produce, SIGKILL, restart, check. The trials of one
// case share the data dir, so later ones recover logs that earlier crashes left behind
// (several segments: log.segment.bytes is 1 MiB, the minimum). 4 cases x 6 trials.
//
// kill -9 is a process crash, not a power loss: the page cache survives, so this tests
// the broker's own write path (nothing acknowledged before it reached the OS, whole
// batches in order) and its recovery of logs that were not closed cleanly, not whether
// fsync reaches the disk.
//
// Seeds: case i uses seed i, XORed with $RUNNEL_CRASH_SEED if set; the seed and each
// trial's kill delay (after the trial's first delivery report) are printed. The delay picks the
// kill moment, but the crash point also depends on scheduling, so a seed does not reproduce a run
// exactly.

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "broker_process.h"
#include "kafka_client.h"

namespace runnel::integration {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kPartitions = 2;
constexpr int kTrialsPerCase = 6;
constexpr int kCases = 4;

std::string ErrName(rd_kafka_resp_err_t err) { return rd_kafka_err2name(err); }

rd_kafka_conf_t* NewConf(const std::string& bootstrap,
                         const std::vector<std::pair<std::string, std::string>>& kvs) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  auto set = [&](const std::string& k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      ADD_FAILURE() << k << "=" << v << ": " << err;
    }
  };
  set("bootstrap.servers", bootstrap);
  set("log_level", "2");  // the killed broker makes librdkafka log connection errors
  for (const auto& [k, v] : kvs) set(k, v);
  return conf;
}

// One record as sent, and what its delivery report said.
struct Sent {
  int32_t partition = 0;
  int trial = 0;
  std::string key;
  std::string value;
  bool reported = false;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  int64_t offset = -1;
  bool acked() const { return reported && err == RD_KAFKA_RESP_ERR_NO_ERROR; }
};

struct ProducerState {
  std::vector<Sent>* sent;
  std::optional<Clock::time_point> first_report;
};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* st = static_cast<ProducerState*>(opaque);
  Sent& s = (*st->sent)[reinterpret_cast<uintptr_t>(m->_private)];
  if (!st->first_report) st->first_report = Clock::now();
  s.reported = true;
  s.err = m->err;
  s.offset = m->err ? -1 : m->offset;
  if (!m->err && m->partition != s.partition) {
    ADD_FAILURE() << s.key << " reported on partition " << m->partition;
  }
}

// Produces until `kill_after` has passed since the first delivery report (so that the
// kill falls while records are being acknowledged), then SIGKILLs the broker and collects
// every delivery report (purging what is still queued or in flight).
void ProduceUntilKilled(BrokerProcess* broker, const std::string& topic, int trial,
                        std::chrono::milliseconds kill_after, std::mt19937* rng,
                        std::vector<Sent>* sent) {
  ProducerState st{sent, std::nullopt};
  rd_kafka_conf_t* conf = NewConf(broker->bootstrap(), {{"acks", "all"},
                                                        {"enable.idempotence", "false"},
                                                        {"linger.ms", "2"},
                                                        {"message.send.max.retries", "0"},
                                                        {"queue.buffering.max.messages", "2000"},
                                                        {"message.timeout.ms", "30000"}});
  rd_kafka_conf_set_dr_msg_cb(conf, OnDelivery);
  rd_kafka_conf_set_opaque(conf, &st);
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  ASSERT_NE(rk, nullptr) << err;

  std::uniform_int_distribution<int> length(0, 1500);
  std::uniform_int_distribution<int> byte(0, 255);
  // Bounded: a broker that acknowledges nothing within 30 s fails the test.
  const auto give_up = Clock::now() + std::chrono::seconds(30);
  auto time_to_kill = [&] {
    const auto now = Clock::now();
    return (st.first_report && now >= *st.first_report + kill_after) || now >= give_up;
  };
  bool stop = false;
  for (int n = 0; !stop && !time_to_kill(); n++) {
    Sent s;
    s.partition = n % kPartitions;
    s.trial = trial;
    s.key = topic + "-t" + std::to_string(trial) + "-n" + std::to_string(n);
    s.value = s.key + ":";
    for (int i = length(*rng); i > 0; i--) s.value += static_cast<char>(byte(*rng));
    const size_t index = sent->size();
    sent->push_back(std::move(s));
    const Sent& m = sent->back();
    for (;;) {
      rd_kafka_resp_err_t e = rd_kafka_producev(
          rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(m.partition),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(m.key.data(), m.key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(m.value.data()), m.value.size()),
          RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(index)), RD_KAFKA_V_END);
      if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || time_to_kill()) {
        sent->pop_back();  // never handed to the client
        stop = true;
        break;
      }
      rd_kafka_poll(rk, 2);
    }
    rd_kafka_poll(rk, 0);
  }
  const bool reported = st.first_report.has_value();
  broker->Kill();
  EXPECT_TRUE(reported) << "no delivery report within 30 s";
  rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (rd_kafka_outq_len(rk) > 0 && Clock::now() < deadline) rd_kafka_poll(rk, 50);
  rd_kafka_poll(rk, 0);
  const int left = rd_kafka_outq_len(rk);
  rd_kafka_destroy(rk);
  ASSERT_EQ(left, 0) << "delivery reports still outstanding after the purge";
  for (const Sent& s : *sent) ASSERT_TRUE(s.trial != trial || s.reported) << s.key;
}

// Checks the log against everything sent so far (see the file comment). Returns the
// number of acknowledged records checked.
int64_t CheckLog(const std::string& bootstrap, const std::string& topic,
                 const std::vector<Sent>& sent) {
  std::map<std::string, size_t> by_key;
  for (size_t i = 0; i < sent.size(); i++) by_key[sent[i].key] = i;
  int64_t acked = 0;
  for (int32_t p = 0; p < kPartitions; p++) {
    SCOPED_TRACE("partition " + std::to_string(p));
    Watermarks w = QueryWatermarks(bootstrap, topic, p);
    EXPECT_EQ(w.err, RD_KAFKA_RESP_ERR_NO_ERROR) << ErrName(w.err);
    EXPECT_EQ(w.low, 0);
    std::string error;
    std::vector<ReadRecord> got = ReadPartition(bootstrap, topic, p, &error);
    EXPECT_EQ(error, "");
    EXPECT_EQ(static_cast<int64_t>(got.size()), w.high) << "records read vs high watermark";
    int failures = 0;
    auto fail = [&](const std::string& what) {
      if (failures++ < 10) ADD_FAILURE() << what;
    };
    std::set<std::string> seen;
    int64_t last_index = -1;
    for (size_t i = 0; i < got.size(); i++) {
      const ReadRecord& r = got[i];
      if (r.offset != static_cast<int64_t>(i)) {
        fail("record " + std::to_string(i) + " has offset " + std::to_string(r.offset));
      }
      if (!seen.insert(r.key).second) {
        fail("key " + r.key + " appears twice (again at offset " + std::to_string(r.offset) + ")");
        continue;
      }
      auto it = by_key.find(r.key);
      if (it == by_key.end()) {
        fail("offset " + std::to_string(r.offset) + " holds unknown key " + r.key);
        continue;
      }
      const Sent& s = sent[it->second];
      if (s.partition != p) fail(r.key + " was sent to partition " + std::to_string(s.partition));
      if (r.value != s.value)
        fail("offset " + std::to_string(r.offset) + " " + r.key + ": value differs");
      if (static_cast<int64_t>(it->second) <= last_index) {
        fail("offset " + std::to_string(r.offset) + " " + r.key + " is out of production order");
      }
      last_index = static_cast<int64_t>(it->second);
    }
    for (const Sent& s : sent) {
      if (s.partition != p || !s.acked()) continue;
      acked++;
      if (s.offset < 0 || s.offset >= static_cast<int64_t>(got.size())) {
        fail("acknowledged " + s.key + " at offset " + std::to_string(s.offset) +
             " is past the end of the log (" + std::to_string(got.size()) + " records)");
      } else if (got[s.offset].key != s.key) {
        fail("acknowledged " + s.key + " at offset " + std::to_string(s.offset) + " but " +
             got[s.offset].key + " is there");
      }
    }
    if (failures > 10) ADD_FAILURE() << failures - 10 << " more failures";
  }
  return acked;
}

class CrashTest : public ::testing::TestWithParam<int> {};

TEST_P(CrashTest, AcknowledgedRecordsSurviveSigkill) {
  uint64_t seed = static_cast<uint64_t>(GetParam());
  if (const char* env = std::getenv("RUNNEL_CRASH_SEED"); env != nullptr && *env != '\0') {
    seed ^= std::strtoull(env, nullptr, 0);
  }
  std::printf("crash test seed %llu\n", static_cast<unsigned long long>(seed));
  RecordProperty("seed", std::to_string(seed));
  std::mt19937 rng(static_cast<uint32_t>(seed));

  BrokerProcess broker(BrokerProcess::DefaultBinary(),
                       {"log.fsync.before.ack=true", "log.segment.bytes=1048576"});
  std::string error;
  ASSERT_TRUE(broker.Start(&error)) << error;
  const std::string topic = "crash" + std::to_string(seed);
  ASSERT_EQ(CreateTopic(broker.bootstrap(), topic, kPartitions), "");

  std::vector<Sent> sent;
  int64_t acked = 0;
  std::uniform_int_distribution<int> delay_ms(0, 800);
  for (int trial = 0; trial < kTrialsPerCase; trial++) {
    const int delay = delay_ms(rng);
    SCOPED_TRACE("seed " + std::to_string(seed) + " trial " + std::to_string(trial) +
                 " kill after " + std::to_string(delay) + " ms");
    const size_t before = sent.size();
    ProduceUntilKilled(&broker, topic, trial, std::chrono::milliseconds(delay), &rng, &sent);
    if (HasFatalFailure()) return;
    int64_t trial_acked = 0;
    for (size_t i = before; i < sent.size(); i++) trial_acked += sent[i].acked();
    std::printf("  trial %d: kill after %d ms; %zu records sent, %lld acknowledged\n", trial, delay,
                sent.size() - before, static_cast<long long>(trial_acked));
    ASSERT_TRUE(broker.Restart(&error)) << error;
    acked = CheckLog(broker.bootstrap(), topic, sent);
    if (HasFailure()) {
      ADD_FAILURE() << "broker output:\n" << broker.Output().substr(0, 20000);
      return;
    }
  }
  // Otherwise the checks above were vacuous.
  EXPECT_GT(acked, 0) << "no record was ever acknowledged";
  EXPECT_EQ(broker.Stop(), 0) << broker.Output();
}

INSTANTIATE_TEST_SUITE_P(Seeds, CrashTest, ::testing::Range(1, kCases + 1));

}  // namespace
}  // namespace runnel::integration
