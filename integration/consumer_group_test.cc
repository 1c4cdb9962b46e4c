// Consumer groups with librdkafka's high-level consumer (C API) against a real runnel
// process started with group.initial.rebalance.delay.ms=0: three members of one group
// on a 6-partition topic, once with partition.assignment.strategy=range and once with
// cooperative-sticky.
//
// Checks: in each stable generation every partition is owned by exactly one member;
// a member that closes, and then a member destroyed without closing (its 6 s session
// expires on the broker), each trigger a rebalance after which the remaining members
// own every partition; every produced message is consumed, and none is consumed twice
// within a stable generation unless its first consumer's synchronous commit was
// refused (a commit racing a rebalance); see ExpectNoDuplicates for the one client bug
// allowed for. No timing assertions: waits are bounded loops on content.
//
// Each member polls on its own thread, as separate consumer processes would: a
// synchronous commit waits behind the member's JoinGroup on the coordinator
// connection, and that JoinGroup completes only once the other members have run
// their rebalance callbacks, which a single polling thread could not do meanwhile.

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "broker_process.h"
#include "kafka_client.h"

namespace runnel::integration {
namespace {

constexpr int kPartitions = 6;
constexpr char kTopic[] = "group-topic";
constexpr char kGroup[] = "group-1";

struct Delivery {
  std::string member;
  int round;       // the member's rebalance callbacks so far
  bool committed;  // its synchronous commit succeeded
};
using Deliveries = std::map<std::pair<int32_t, int64_t>, std::vector<Delivery>>;

// What every member saw, shared by their polling threads.
struct Seen {
  std::mutex mu;
  Deliveries deliveries;
  size_t Size() {
    std::lock_guard<std::mutex> lock(mu);
    return deliveries.size();
  }
};

class Member {
 public:
  Member(const std::string& bootstrap, const std::string& strategy, const std::string& name,
         Seen* seen)
      : name_(name), seen_(seen) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char err[512];
    auto set = [&](const char* k, const std::string& v) {
      EXPECT_EQ(rd_kafka_conf_set(conf, k, v.c_str(), err, sizeof(err)), RD_KAFKA_CONF_OK) << err;
    };
    set("bootstrap.servers", bootstrap);
    set("group.id", kGroup);
    set("client.id", name);
    set("partition.assignment.strategy", strategy);
    set("session.timeout.ms", "6000");
    set("heartbeat.interval.ms", "500");
    set("enable.auto.commit", "false");
    set("auto.offset.reset", "earliest");
    rd_kafka_conf_set_rebalance_cb(conf, &Member::OnRebalance);
    rd_kafka_conf_set_opaque(conf, this);
    rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    EXPECT_NE(rk_, nullptr) << err;
    rd_kafka_poll_set_consumer(rk_);
    rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, kTopic, RD_KAFKA_PARTITION_UA);
    EXPECT_EQ(rd_kafka_subscribe(rk_, topics), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(topics);
    poller_ = std::thread([this] {
      while (!stop_) Poll();
    });
  }
  ~Member() {
    if (rk_ != nullptr) Close();
  }

  std::set<int32_t> Assignment() {
    std::set<int32_t> out;
    rd_kafka_topic_partition_list_t* parts = nullptr;
    if (rd_kafka_assignment(rk_, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR) return out;
    for (int i = 0; i < parts->cnt; ++i) out.insert(parts->elems[i].partition);
    rd_kafka_topic_partition_list_destroy(parts);
    return out;
  }

  void Close() {
    StopPolling();
    EXPECT_EQ(rd_kafka_consumer_close(rk_), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk_);
    rk_ = nullptr;
  }
  // Gone without LeaveGroup: the broker only notices when the session expires.
  void Vanish() {
    StopPolling();
    rd_kafka_destroy_flags(rk_, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    rk_ = nullptr;
  }

 private:
  // Polls once; a message is committed synchronously and recorded in seen_.
  void Poll() {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, 50);
    if (m == nullptr) return;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      bool ok = rd_kafka_commit_message(rk_, m, /*async=*/0) == RD_KAFKA_RESP_ERR_NO_ERROR;
      std::lock_guard<std::mutex> lock(seen_->mu);
      seen_->deliveries[{m->partition, m->offset}].push_back({name_, round_, ok});
    } else {
      EXPECT_EQ(m->err, RD_KAFKA_RESP_ERR__PARTITION_EOF) << rd_kafka_message_errstr(m);
    }
    rd_kafka_message_destroy(m);
  }

  void StopPolling() {
    stop_ = true;
    poller_.join();
  }

  // librdkafka's default rebalance handling, counting the callbacks.
  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* partitions, void* opaque) {
    ++static_cast<Member*>(opaque)->round_;
    bool assign = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    if (std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0) {
      rd_kafka_error_t* error = assign ? rd_kafka_incremental_assign(rk, partitions)
                                       : rd_kafka_incremental_unassign(rk, partitions);
      EXPECT_EQ(error, nullptr) << rd_kafka_error_string(error);
      if (error != nullptr) rd_kafka_error_destroy(error);
    } else {
      EXPECT_EQ(rd_kafka_assign(rk, assign ? partitions : nullptr), RD_KAFKA_RESP_ERR_NO_ERROR);
    }
  }

  std::string name_;
  Seen* seen_;
  int round_ = 0;  // only touched by the polling thread, which runs the callbacks
  rd_kafka_t* rk_ = nullptr;
  std::atomic<bool> stop_{false};
  std::thread poller_;
};

class ConsumerGroupTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    broker_ = std::make_unique<BrokerProcess>(
        BrokerProcess::DefaultBinary(),
        std::vector<std::string>{"group.initial.rebalance.delay.ms=0"});
    std::string error;
    ASSERT_TRUE(broker_->Start(&error)) << error;
    ASSERT_EQ(CreateTopic(broker_->bootstrap(), kTopic, kPartitions), "");
  }

  void ProduceBatch(int n, const std::string& tag) {
    std::vector<Message> messages = MakeMessages(n, kPartitions, tag);
    ASSERT_EQ(Produce(broker_->bootstrap(), kTopic, &messages, ProduceOptions{}), "");
    produced_ += n;
  }

  // Waits until the members' assignments partition the topic (disjoint, complete, each
  // member owning some) and every produced message has been consumed.
  void WaitUntilStableAndDrained(const std::vector<Member*>& members) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    bool stable = false;
    while (std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      std::set<int32_t> all;
      size_t total = 0;
      bool each_owns = true;
      for (Member* m : members) {
        std::set<int32_t> a = m->Assignment();
        each_owns = each_owns && !a.empty();
        total += a.size();
        all.insert(a.begin(), a.end());
      }
      stable = each_owns && total == kPartitions && all.size() == kPartitions;
      if (stable && static_cast<int>(seen_.Size()) == produced_) break;
    }
    ASSERT_TRUE(stable) << "assignments never covered the topic exactly once";
    ASSERT_EQ(static_cast<int>(seen_.Size()), produced_);
    std::set<int32_t> all;
    for (Member* m : members) {
      for (int32_t p : m->Assignment()) EXPECT_TRUE(all.insert(p).second) << "partition " << p;
    }
  }

  // A message whose first consumer committed it is never delivered again, with one
  // exception, a bug of Debian's librdkafka 2.0.2 fixed in 2.4.0 (librdkafka issues
  // #4637 and #4686): with cooperative-sticky, an incremental assignment resumes the
  // partitions a member keeps, which bumps their fetch version and restarts them from
  // a stale fetch-start offset, with no OffsetFetch sent. Such a re-delivery is
  // allowed only to the same member and only after a later rebalance callback of it;
  // a second delivery to another member, or within one rebalance round, fails.
  void ExpectNoDuplicates() {
    bool cooperative = GetParam() == "cooperative-sticky";
    std::lock_guard<std::mutex> lock(seen_.mu);
    for (const auto& [tp, deliveries] : seen_.deliveries) {
      const Delivery& first = deliveries.front();
      if (!first.committed) continue;
      std::string all;
      for (const Delivery& d : deliveries) {
        all += d.member + "@" + std::to_string(d.round) + (d.committed ? " " : "(refused) ");
      }
      for (size_t i = 1; i < deliveries.size(); ++i) {
        const Delivery& d = deliveries[i];
        bool client_bug =
            cooperative && d.member == first.member && d.round > deliveries[i - 1].round;
        EXPECT_TRUE(client_bug) << "partition " << tp.first << " offset " << tp.second
                                << " delivered as " << all;
      }
    }
  }

  std::unique_ptr<BrokerProcess> broker_;
  Seen seen_;
  int produced_ = 0;
};

TEST_P(ConsumerGroupTest, ThreeMembersCloseAndSessionTimeout) {
  const std::string& strategy = GetParam();
  ProduceBatch(300, "first");
  Member a(broker_->bootstrap(), strategy, "member-a", &seen_);
  Member b(broker_->bootstrap(), strategy, "member-b", &seen_);
  auto c = std::make_unique<Member>(broker_->bootstrap(), strategy, "member-c", &seen_);
  WaitUntilStableAndDrained({&a, &b, c.get()});

  c->Close();  // LeaveGroup: a and b take over its partitions
  c.reset();
  ProduceBatch(300, "second");
  WaitUntilStableAndDrained({&a, &b});

  b.Vanish();  // no LeaveGroup: its session expires after 6 s
  ProduceBatch(300, "third");
  WaitUntilStableAndDrained({&a});
  EXPECT_EQ(a.Assignment().size(), static_cast<size_t>(kPartitions));
  ExpectNoDuplicates();
}

INSTANTIATE_TEST_SUITE_P(Strategies, ConsumerGroupTest,
                         ::testing::Values("range", "cooperative-sticky"), [](const auto& info) {
                           return info.param == "range" ? std::string("Range")
                                                        : std::string("CooperativeSticky");
                         });

}  // namespace
}  // namespace runnel::integration
