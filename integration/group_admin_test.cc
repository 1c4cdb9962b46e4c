// Consumer-group administration through librdkafka's Admin API (C), the calls
// confluent-kafka's AdminClient wraps: ListConsumerGroups (with a states filter),
// DescribeConsumerGroups, DeleteGroups, ListConsumerGroupOffsets,
// AlterConsumerGroupOffsets and DeleteConsumerGroupOffsets, against a real runnel process
// started with group.initial.rebalance.delay.ms=0.
//
// Checks, with exact states, members and offsets as Kafka answers them:
// - a group of two live range members on a 4-partition topic is listed and described as
//   Stable (assignor, coordinator, each member's client id, member id, host "/127.0.0.1"
//   and assignment); an unknown group is described as Dead without an error; deleting
//   the group (NON_EMPTY_GROUP) or its offsets of a subscribed topic
//   (GROUP_SUBSCRIBED_TO_TOPIC) is refused;
// - once the members have committed and closed, the group is Empty with their exact
//   offsets, which can be listed, deleted per partition and altered; then the group is
//   deleted: described as Dead, no longer listed, its offsets gone, and deleting it again
//   gives GROUP_ID_NOT_FOUND;
// - offsets committed by the admin client alone make a simple (protocol-less) Empty group.
// No timing assertions: waits are bounded loops on content.

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "broker_process.h"
#include "kafka_client.h"

namespace runnel::integration {
namespace {

constexpr int kPartitions = 4;
constexpr char kTopic[] = "admin-topic";
constexpr char kGroup[] = "admin-g";
constexpr int kAdminTimeoutMs = 30000;

// Names make failures readable: "NON_EMPTY_GROUP" rather than 68, "Stable" rather than 3.
std::string Name(rd_kafka_resp_err_t err) { return rd_kafka_err2name(err); }
std::string Name(rd_kafka_consumer_group_state_t state) {
  return rd_kafka_consumer_group_state_name(state);
}
std::string Name(const rd_kafka_error_t* error) {
  return error == nullptr ? Name(RD_KAFKA_RESP_ERR_NO_ERROR) : Name(rd_kafka_error_code(error));
}

using TopicPartitions = std::vector<std::pair<std::string, int32_t>>;

TopicPartitions AllPartitions() {
  TopicPartitions out;
  for (int32_t p = 0; p < kPartitions; ++p) out.emplace_back(kTopic, p);
  return out;
}

// One ListConsumerGroups entry.
struct Listing {
  std::string state;
  bool simple = false;
};

struct MemberInfo {
  std::string client_id;
  std::string consumer_id;
  std::string host;
  TopicPartitions assignment;
};

struct Description {
  std::string error = "(no result)";
  std::string state;
  std::string assignor;
  bool simple = false;
  int coordinator_id = -1;
  std::string coordinator_host;
  int coordinator_port = -1;
  std::vector<MemberInfo> members;  // sorted by client id
};

// The result of an admin call on one group of kTopic's partitions.
struct GroupResult {
  std::string error = "(no result)";
  std::map<int32_t, int64_t> offsets;
  std::map<int32_t, std::string> errors;
};

std::map<int32_t, std::string> AllErrors(rd_kafka_resp_err_t err,
                                         const std::vector<int32_t>& partitions) {
  std::map<int32_t, std::string> out;
  for (int32_t p : partitions) out[p] = Name(err);
  return out;
}

struct TopicPartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, TopicPartitionListDeleter>;

// kTopic's partitions with the given offsets (RD_KAFKA_OFFSET_INVALID: none).
PartitionList MakeList(const std::map<int32_t, int64_t>& offsets) {
  PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const auto& [p, offset] : offsets) {
    rd_kafka_topic_partition_list_add(list.get(), kTopic, p)->offset = offset;
  }
  return list;
}
PartitionList MakeList(const std::vector<int32_t>& partitions) {
  std::map<int32_t, int64_t> offsets;
  for (int32_t p : partitions) offsets[p] = RD_KAFKA_OFFSET_INVALID;
  return MakeList(offsets);
}

TopicPartitions FromList(const rd_kafka_topic_partition_list_t* list) {
  TopicPartitions out;
  for (int i = 0; list != nullptr && i < list->cnt; ++i) {
    out.emplace_back(list->elems[i].topic, list->elems[i].partition);
  }
  return out;
}

struct EventDeleter {
  void operator()(rd_kafka_event_t* ev) const { rd_kafka_event_destroy(ev); }
};
using Event = std::unique_ptr<rd_kafka_event_t, EventDeleter>;

// An admin client; each call runs one operation and waits for its result.
// Failures of the call itself (no result, wrong result type, request-level error) are
// reported with ADD_FAILURE and leave the returned result at its defaults.
class AdminClient {
 public:
  explicit AdminClient(const std::string& bootstrap) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char err[512];
    EXPECT_EQ(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof(err)),
              RD_KAFKA_CONF_OK)
        << err;
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    EXPECT_NE(rk_, nullptr) << err;
    queue_ = rd_kafka_queue_new(rk_);
  }
  ~AdminClient() {
    rd_kafka_queue_destroy(queue_);
    rd_kafka_destroy(rk_);
  }
  AdminClient(const AdminClient&) = delete;
  AdminClient& operator=(const AdminClient&) = delete;

  // The brokers Metadata reports, as id -> "host:port".
  std::map<int, std::string> Brokers() {
    std::map<int, std::string> out;
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk_, 0, nullptr, &md, kAdminTimeoutMs);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      ADD_FAILURE() << "Metadata: " << Name(err);
      return out;
    }
    for (int i = 0; i < md->broker_cnt; ++i) {
      out[md->brokers[i].id] =
          std::string(md->brokers[i].host) + ":" + std::to_string(md->brokers[i].port);
    }
    rd_kafka_metadata_destroy(md);
    return out;
  }

  // Every listed group by id, optionally only those in the given states.
  std::map<std::string, Listing> ListGroups(
      const std::vector<rd_kafka_consumer_group_state_t>& states = {}) {
    std::map<std::string, Listing> out;
    Event ev = Run(
        RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS, RD_KAFKA_EVENT_LISTCONSUMERGROUPS_RESULT,
        [&](rd_kafka_AdminOptions_t* options) {
          if (states.empty()) return;
          rd_kafka_error_t* error = rd_kafka_AdminOptions_set_match_consumer_group_states(
              options, states.data(), states.size());
          EXPECT_EQ(error, nullptr) << rd_kafka_error_string(error);
          if (error != nullptr) rd_kafka_error_destroy(error);
        },
        [&](const rd_kafka_AdminOptions_t* options) {
          rd_kafka_ListConsumerGroups(rk_, options, queue_);
        });
    if (!ev) return out;
    const rd_kafka_ListConsumerGroups_result_t* result =
        rd_kafka_event_ListConsumerGroups_result(ev.get());
    size_t n = 0;
    const rd_kafka_error_t** errors = rd_kafka_ListConsumerGroups_result_errors(result, &n);
    for (size_t i = 0; i < n; ++i) ADD_FAILURE() << "ListConsumerGroups: " << Name(errors[i]);
    const rd_kafka_ConsumerGroupListing_t** groups =
        rd_kafka_ListConsumerGroups_result_valid(result, &n);
    for (size_t i = 0; i < n; ++i) {
      out[rd_kafka_ConsumerGroupListing_group_id(groups[i])] = {
          Name(rd_kafka_ConsumerGroupListing_state(groups[i])),
          rd_kafka_ConsumerGroupListing_is_simple_consumer_group(groups[i]) != 0};
    }
    return out;
  }

  Description DescribeGroup(const std::string& group) {
    Description out;
    const char* groups[] = {group.c_str()};
    Event ev =
        Run(RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS, RD_KAFKA_EVENT_DESCRIBECONSUMERGROUPS_RESULT,
            nullptr, [&](const rd_kafka_AdminOptions_t* options) {
              rd_kafka_DescribeConsumerGroups(rk_, groups, 1, options, queue_);
            });
    if (!ev) return out;
    size_t n = 0;
    const rd_kafka_ConsumerGroupDescription_t** descs =
        rd_kafka_DescribeConsumerGroups_result_groups(
            rd_kafka_event_DescribeConsumerGroups_result(ev.get()), &n);
    if (n != 1 || rd_kafka_ConsumerGroupDescription_group_id(descs[0]) != group) {
      ADD_FAILURE() << "DescribeConsumerGroups " << group << ": " << n << " results";
      return out;
    }
    const rd_kafka_ConsumerGroupDescription_t* d = descs[0];
    out.error = Name(rd_kafka_ConsumerGroupDescription_error(d));
    out.state = Name(rd_kafka_ConsumerGroupDescription_state(d));
    const char* assignor = rd_kafka_ConsumerGroupDescription_partition_assignor(d);
    out.assignor = assignor != nullptr ? assignor : "(null)";
    out.simple = rd_kafka_ConsumerGroupDescription_is_simple_consumer_group(d) != 0;
    if (const rd_kafka_Node_t* node = rd_kafka_ConsumerGroupDescription_coordinator(d)) {
      out.coordinator_id = rd_kafka_Node_id(node);
      out.coordinator_host = rd_kafka_Node_host(node);
      out.coordinator_port = rd_kafka_Node_port(node);
    }
    for (size_t i = 0; i < rd_kafka_ConsumerGroupDescription_member_count(d); ++i) {
      const rd_kafka_MemberDescription_t* m = rd_kafka_ConsumerGroupDescription_member(d, i);
      const rd_kafka_MemberAssignment_t* a = rd_kafka_MemberDescription_assignment(m);
      out.members.push_back(
          {rd_kafka_MemberDescription_client_id(m), rd_kafka_MemberDescription_consumer_id(m),
           rd_kafka_MemberDescription_host(m),
           FromList(a != nullptr ? rd_kafka_MemberAssignment_partitions(a) : nullptr)});
    }
    std::sort(out.members.begin(), out.members.end(),
              [](const MemberInfo& x, const MemberInfo& y) { return x.client_id < y.client_id; });
    return out;
  }

  GroupResult DeleteGroup(const std::string& group) {
    rd_kafka_DeleteGroup_t* del = rd_kafka_DeleteGroup_new(group.c_str());
    Event ev = Run(RD_KAFKA_ADMIN_OP_DELETEGROUPS, RD_KAFKA_EVENT_DELETEGROUPS_RESULT, nullptr,
                   [&](const rd_kafka_AdminOptions_t* options) {
                     rd_kafka_DeleteGroups(rk_, &del, 1, options, queue_);
                   });
    rd_kafka_DeleteGroup_destroy(del);
    if (!ev) return {};
    size_t n = 0;
    const rd_kafka_group_result_t** res =
        rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(ev.get()), &n);
    return ReadGroupResult("DeleteGroups", group, res, n);
  }

  // The committed offsets of the given partitions of kTopic.
  GroupResult ListOffsets(const std::string& group, const std::vector<int32_t>& partitions) {
    PartitionList list = MakeList(partitions);
    rd_kafka_ListConsumerGroupOffsets_t* req =
        rd_kafka_ListConsumerGroupOffsets_new(group.c_str(), list.get());
    Event ev = Run(RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS,
                   RD_KAFKA_EVENT_LISTCONSUMERGROUPOFFSETS_RESULT, nullptr,
                   [&](const rd_kafka_AdminOptions_t* options) {
                     rd_kafka_ListConsumerGroupOffsets(rk_, &req, 1, options, queue_);
                   });
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    if (!ev) return {};
    size_t n = 0;
    const rd_kafka_group_result_t** res = rd_kafka_ListConsumerGroupOffsets_result_groups(
        rd_kafka_event_ListConsumerGroupOffsets_result(ev.get()), &n);
    return ReadGroupResult("ListConsumerGroupOffsets", group, res, n);
  }

  GroupResult AlterOffsets(const std::string& group, const std::map<int32_t, int64_t>& offsets) {
    PartitionList list = MakeList(offsets);
    rd_kafka_AlterConsumerGroupOffsets_t* req =
        rd_kafka_AlterConsumerGroupOffsets_new(group.c_str(), list.get());
    Event ev = Run(RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS,
                   RD_KAFKA_EVENT_ALTERCONSUMERGROUPOFFSETS_RESULT, nullptr,
                   [&](const rd_kafka_AdminOptions_t* options) {
                     rd_kafka_AlterConsumerGroupOffsets(rk_, &req, 1, options, queue_);
                   });
    rd_kafka_AlterConsumerGroupOffsets_destroy(req);
    if (!ev) return {};
    size_t n = 0;
    const rd_kafka_group_result_t** res = rd_kafka_AlterConsumerGroupOffsets_result_groups(
        rd_kafka_event_AlterConsumerGroupOffsets_result(ev.get()), &n);
    return ReadGroupResult("AlterConsumerGroupOffsets", group, res, n);
  }

  GroupResult DeleteOffsets(const std::string& group, const std::vector<int32_t>& partitions) {
    PartitionList list = MakeList(partitions);
    rd_kafka_DeleteConsumerGroupOffsets_t* req =
        rd_kafka_DeleteConsumerGroupOffsets_new(group.c_str(), list.get());
    Event ev = Run(RD_KAFKA_ADMIN_OP_DELETECONSUMERGROUPOFFSETS,
                   RD_KAFKA_EVENT_DELETECONSUMERGROUPOFFSETS_RESULT, nullptr,
                   [&](const rd_kafka_AdminOptions_t* options) {
                     rd_kafka_DeleteConsumerGroupOffsets(rk_, &req, 1, options, queue_);
                   });
    rd_kafka_DeleteConsumerGroupOffsets_destroy(req);
    if (!ev) return {};
    size_t n = 0;
    const rd_kafka_group_result_t** res = rd_kafka_DeleteConsumerGroupOffsets_result_groups(
        rd_kafka_event_DeleteConsumerGroupOffsets_result(ev.get()), &n);
    return ReadGroupResult("DeleteConsumerGroupOffsets", group, res, n);
  }

 private:
  // Creates options for op (request timeout kAdminTimeoutMs, then configure), calls start
  // and waits for the result event, which must be of type want without a request error.
  Event Run(rd_kafka_admin_op_t op, int want,
            const std::function<void(rd_kafka_AdminOptions_t*)>& configure,
            const std::function<void(const rd_kafka_AdminOptions_t*)>& start) {
    rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(rk_, op);
    char err[512];
    EXPECT_EQ(rd_kafka_AdminOptions_set_request_timeout(options, kAdminTimeoutMs, err, sizeof(err)),
              RD_KAFKA_RESP_ERR_NO_ERROR)
        << err;
    if (configure) configure(options);
    start(options);
    rd_kafka_AdminOptions_destroy(options);
    // The request timeout ends the call with a result event; the margin is for safety.
    Event ev(rd_kafka_queue_poll(queue_, kAdminTimeoutMs + 10000));
    if (!ev) {
      ADD_FAILURE() << "admin op " << op << ": no result";
    } else if (rd_kafka_event_type(ev.get()) != want) {
      ADD_FAILURE() << "admin op " << op << ": got " << rd_kafka_event_name(ev.get());
      ev.reset();
    } else if (rd_kafka_event_error(ev.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      ADD_FAILURE() << rd_kafka_event_name(ev.get()) << ": " << Name(rd_kafka_event_error(ev.get()))
                    << " " << rd_kafka_event_error_string(ev.get());
      ev.reset();
    }
    return ev;
  }

  // The single group result of a call, with per-partition offsets and errors (kTopic only).
  static GroupResult ReadGroupResult(const char* what, const std::string& group,
                                     const rd_kafka_group_result_t** res, size_t n) {
    GroupResult out;
    if (n != 1 || rd_kafka_group_result_name(res[0]) != group) {
      ADD_FAILURE() << what << " " << group << ": " << n << " results";
      return out;
    }
    out.error = Name(rd_kafka_group_result_error(res[0]));
    const rd_kafka_topic_partition_list_t* parts = rd_kafka_group_result_partitions(res[0]);
    for (int i = 0; parts != nullptr && i < parts->cnt; ++i) {
      const rd_kafka_topic_partition_t& tp = parts->elems[i];
      EXPECT_EQ(std::string(tp.topic), kTopic) << what;
      out.offsets[tp.partition] = tp.offset;
      out.errors[tp.partition] = Name(tp.err);
    }
    return out;
  }

  rd_kafka_t* rk_ = nullptr;
  rd_kafka_queue_t* queue_ = nullptr;
};

// A high-level consumer of kGroup subscribed to kTopic with the range assignor, committing
// each message it consumes synchronously.
class Member {
 public:
  Member(const std::string& bootstrap, const std::string& client_id) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char err[512];
    for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
             {"bootstrap.servers", bootstrap},
             {"group.id", kGroup},
             {"client.id", client_id},
             {"partition.assignment.strategy", "range"},
             {"session.timeout.ms", "6000"},
             {"heartbeat.interval.ms", "500"},
             {"enable.auto.commit", "false"},
             {"auto.offset.reset", "earliest"}}) {
      EXPECT_EQ(rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof(err)), RD_KAFKA_CONF_OK)
          << err;
    }
    rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    EXPECT_NE(rk_, nullptr) << err;
    rd_kafka_poll_set_consumer(rk_);
    PartitionList topics(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(topics.get(), kTopic, RD_KAFKA_PARTITION_UA);
    EXPECT_EQ(rd_kafka_subscribe(rk_, topics.get()), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  ~Member() {
    if (rk_ != nullptr) Close();
  }
  Member(const Member&) = delete;
  Member& operator=(const Member&) = delete;

  // Polls once; a message is committed synchronously and, if that succeeds, its
  // (partition, offset) is added to *committed.
  void Poll(std::set<std::pair<int32_t, int64_t>>* committed) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, 50);
    if (m == nullptr) return;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (rd_kafka_commit_message(rk_, m, /*async=*/0) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        committed->insert({m->partition, m->offset});
      }
    } else {
      EXPECT_EQ(m->err, RD_KAFKA_RESP_ERR__PARTITION_EOF) << rd_kafka_message_errstr(m);
    }
    rd_kafka_message_destroy(m);
  }

  TopicPartitions Assignment() {
    rd_kafka_topic_partition_list_t* parts = nullptr;
    if (rd_kafka_assignment(rk_, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR) return {};
    TopicPartitions out = FromList(parts);
    rd_kafka_topic_partition_list_destroy(parts);
    std::sort(out.begin(), out.end());
    return out;
  }

  std::string MemberId() {
    char* id = rd_kafka_memberid(rk_);
    std::string out = id != nullptr ? id : "";
    if (id != nullptr) rd_kafka_mem_free(rk_, id);
    return out;
  }

  // Leaves the group (LeaveGroup) and destroys the consumer.
  void Close() {
    EXPECT_EQ(rd_kafka_consumer_close(rk_), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk_);
    rk_ = nullptr;
  }

 private:
  rd_kafka_t* rk_ = nullptr;
};

class GroupAdminTest : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = std::make_unique<BrokerProcess>(
        BrokerProcess::DefaultBinary(),
        std::vector<std::string>{"group.initial.rebalance.delay.ms=0"});
    std::string error;
    ASSERT_TRUE(broker_->Start(&error)) << error;
    ASSERT_EQ(CreateTopic(broker_->bootstrap(), kTopic, kPartitions), "");
    admin_ = std::make_unique<AdminClient>(broker_->bootstrap());
  }

  // Starts member-a and member-b and polls them until each owns some partitions and
  // together they own every partition of kTopic exactly once (both in one generation).
  void StartMembers() {
    a_ = std::make_unique<Member>(broker_->bootstrap(), "member-a");
    b_ = std::make_unique<Member>(broker_->bootstrap(), "member-b");
    std::set<std::pair<int32_t, int64_t>> unused;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      a_->Poll(&unused);
      b_->Poll(&unused);
      TopicPartitions pa = a_->Assignment(), pb = b_->Assignment();
      TopicPartitions all = pa;
      all.insert(all.end(), pb.begin(), pb.end());
      std::sort(all.begin(), all.end());
      if (!pa.empty() && !pb.empty() && all == AllPartitions()) return;
    }
    FAIL() << "assignments never split the topic between the two members";
  }

  // Produces n messages over kTopic's partitions and polls the members until each has
  // been consumed and committed. Returns the number of messages per partition, which
  // is then each partition's committed offset.
  std::map<int32_t, int64_t> ProduceAndCommit(int n) {
    std::vector<Message> messages = MakeMessages(n, kPartitions, "admin");
    EXPECT_EQ(Produce(broker_->bootstrap(), kTopic, &messages, ProduceOptions{}), "");
    std::set<std::pair<int32_t, int64_t>> committed;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (static_cast<int>(committed.size()) < n && std::chrono::steady_clock::now() < deadline) {
      a_->Poll(&committed);
      b_->Poll(&committed);
    }
    EXPECT_EQ(static_cast<int>(committed.size()), n) << "messages consumed and committed";
    std::map<int32_t, int64_t> per_partition;
    for (const Message& m : messages) ++per_partition[m.partition];
    return per_partition;
  }

  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<AdminClient> admin_;
  std::unique_ptr<Member> a_;
  std::unique_ptr<Member> b_;
};

TEST_F(GroupAdminTest, StableGroupWithTwoMembers) {
  ASSERT_NO_FATAL_FAILURE(StartMembers());

  std::map<std::string, Listing> listed = admin_->ListGroups();
  ASSERT_EQ(listed.count(kGroup), 1u);
  EXPECT_EQ(listed[kGroup].state, Name(RD_KAFKA_CONSUMER_GROUP_STATE_STABLE));
  EXPECT_FALSE(listed[kGroup].simple);
  EXPECT_EQ(admin_->ListGroups({RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY}).count(kGroup), 0u);
  EXPECT_EQ(admin_->ListGroups({RD_KAFKA_CONSUMER_GROUP_STATE_STABLE}).count(kGroup), 1u);

  // The one broker (node.id 1 by default) coordinates the group.
  std::map<int, std::string> brokers = admin_->Brokers();
  ASSERT_EQ(brokers, (std::map<int, std::string>{{1, broker_->bootstrap()}}));

  Description d = admin_->DescribeGroup(kGroup);
  EXPECT_EQ(d.error, Name(RD_KAFKA_RESP_ERR_NO_ERROR));
  EXPECT_EQ(d.state, Name(RD_KAFKA_CONSUMER_GROUP_STATE_STABLE));
  EXPECT_EQ(d.assignor, "range");
  EXPECT_FALSE(d.simple);
  EXPECT_EQ(d.coordinator_id, 1);
  EXPECT_EQ(d.coordinator_host + ":" + std::to_string(d.coordinator_port), brokers[1]);
  ASSERT_EQ(d.members.size(), 2u);
  Member* consumers[] = {a_.get(), b_.get()};
  const char* client_ids[] = {"member-a", "member-b"};
  TopicPartitions assigned;
  for (int i = 0; i < 2; ++i) {
    const MemberInfo& m = d.members[i];
    EXPECT_EQ(m.client_id, client_ids[i]);
    EXPECT_NE(m.consumer_id, "");
    EXPECT_EQ(m.consumer_id, consumers[i]->MemberId()) << m.client_id;
    EXPECT_EQ(m.host, "/127.0.0.1") << m.client_id;  // Kafka: InetAddress.toString()
    TopicPartitions sorted = m.assignment;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, consumers[i]->Assignment()) << m.client_id;
    assigned.insert(assigned.end(), sorted.begin(), sorted.end());
  }
  std::sort(assigned.begin(), assigned.end());
  EXPECT_EQ(assigned, AllPartitions());

  // Kafka describes a group it does not know as Dead, without an error (DescribeGroups
  // before v6, which librdkafka 2.0.2 uses).
  Description unknown = admin_->DescribeGroup("no-such-group");
  EXPECT_EQ(unknown.error, Name(RD_KAFKA_RESP_ERR_NO_ERROR));
  EXPECT_EQ(unknown.state, Name(RD_KAFKA_CONSUMER_GROUP_STATE_DEAD));
  EXPECT_TRUE(unknown.members.empty());

  EXPECT_EQ(admin_->DeleteGroup(kGroup).error, Name(RD_KAFKA_RESP_ERR_NON_EMPTY_GROUP));

  GroupResult deleted = admin_->DeleteOffsets(kGroup, {0});
  EXPECT_EQ(deleted.error, Name(RD_KAFKA_RESP_ERR_NO_ERROR));
  EXPECT_EQ(deleted.errors, AllErrors(RD_KAFKA_RESP_ERR_GROUP_SUBSCRIBED_TO_TOPIC, {0}));

  // The refused deletions left the group as it was.
  Description after = admin_->DescribeGroup(kGroup);
  EXPECT_EQ(after.state, Name(RD_KAFKA_CONSUMER_GROUP_STATE_STABLE));
  EXPECT_EQ(after.members.size(), 2u);
}

TEST_F(GroupAdminTest, OffsetsAndDeletionAfterMembersLeave) {
  ASSERT_NO_FATAL_FAILURE(StartMembers());
  std::map<int32_t, int64_t> committed = ProduceAndCommit(40);
  ASSERT_EQ(committed, (std::map<int32_t, int64_t>{{0, 10}, {1, 10}, {2, 10}, {3, 10}}));
  a_->Close();
  b_->Close();

  std::map<std::string, Listing> listed = admin_->ListGroups();
  ASSERT_EQ(listed.count(kGroup), 1u);
  EXPECT_EQ(listed[kGroup].state, Name(RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY));
  EXPECT_FALSE(listed[kGroup].simple);  // the group keeps its protocol type "consumer"
  Description d = admin_->DescribeGroup(kGroup);
  EXPECT_EQ(d.error, Name(RD_KAFKA_RESP_ERR_NO_ERROR));
  EXPECT_EQ(d.state, Name(RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY));
  EXPECT_TRUE(d.members.empty());

  const std::vector<int32_t> all = {0, 1, 2, 3};
  GroupResult offsets = admin_->ListOffsets(kGroup, all);
  EXPECT_EQ(offsets.error, Name(RD_KAFKA_RESP_ERR_NO_ERROR));
  EXPECT_EQ(offsets.offsets, committed);
  EXPECT_EQ(offsets.errors, AllErrors(RD_KAFKA_RESP_ERR_NO_ERROR, all));

  GroupResult deleted = admin_->DeleteOffsets(kGroup, {0});
  EXPECT_EQ(deleted.error, Name(RD_KAFKA_RESP_ERR_NO_ERROR));
  EXPECT_EQ(deleted.errors, AllErrors(RD_KAFKA_RESP_ERR_NO_ERROR, {0}));
  std::map<int32_t, int64_t> want = committed;
  want[0] = RD_KAFKA_OFFSET_INVALID;  // Kafka's -1: nothing committed
  EXPECT_EQ(admin_->ListOffsets(kGroup, all).offsets, want);

  GroupResult altered = admin_->AlterOffsets(kGroup, {{1, 3}});
  EXPECT_EQ(altered.error, Name(RD_KAFKA_RESP_ERR_NO_ERROR));
  EXPECT_EQ(altered.errors, AllErrors(RD_KAFKA_RESP_ERR_NO_ERROR, {1}));
  want[1] = 3;
  EXPECT_EQ(admin_->ListOffsets(kGroup, all).offsets, want);

  EXPECT_EQ(admin_->DeleteGroup(kGroup).error, Name(RD_KAFKA_RESP_ERR_NO_ERROR));
  Description gone = admin_->DescribeGroup(kGroup);
  EXPECT_EQ(gone.error, Name(RD_KAFKA_RESP_ERR_NO_ERROR));
  EXPECT_EQ(gone.state, Name(RD_KAFKA_CONSUMER_GROUP_STATE_DEAD));
  EXPECT_TRUE(gone.members.empty());
  EXPECT_EQ(admin_->ListGroups().count(kGroup), 0u);
  GroupResult none = admin_->ListOffsets(kGroup, all);
  EXPECT_EQ(none.error, Name(RD_KAFKA_RESP_ERR_NO_ERROR));
  EXPECT_EQ(none.offsets, (std::map<int32_t, int64_t>{{0, RD_KAFKA_OFFSET_INVALID},
                                                      {1, RD_KAFKA_OFFSET_INVALID},
                                                      {2, RD_KAFKA_OFFSET_INVALID},
                                                      {3, RD_KAFKA_OFFSET_INVALID}}));
  EXPECT_EQ(admin_->DeleteGroup(kGroup).error, Name(RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND));
}

// Offsets committed by the admin client (generation -1, no member) create a group
// without a protocol type: Kafka's "simple" consumer group, Empty.
TEST_F(GroupAdminTest, GroupMadeByAlterOffsetsIsSimple) {
  const std::string group = "admin-simple";
  GroupResult altered = admin_->AlterOffsets(group, {{0, 5}, {2, 7}});
  EXPECT_EQ(altered.error, Name(RD_KAFKA_RESP_ERR_NO_ERROR));
  EXPECT_EQ(altered.errors, AllErrors(RD_KAFKA_RESP_ERR_NO_ERROR, {0, 2}));

  std::map<std::string, Listing> listed = admin_->ListGroups();
  ASSERT_EQ(listed.count(group), 1u);
  EXPECT_EQ(listed[group].state, Name(RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY));
  EXPECT_TRUE(listed[group].simple);

  Description d = admin_->DescribeGroup(group);
  EXPECT_EQ(d.error, Name(RD_KAFKA_RESP_ERR_NO_ERROR));
  EXPECT_EQ(d.state, Name(RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY));
  EXPECT_TRUE(d.simple);
  EXPECT_EQ(d.assignor, "");
  EXPECT_TRUE(d.members.empty());

  EXPECT_EQ(admin_->ListOffsets(group, {0, 1, 2}).offsets,
            (std::map<int32_t, int64_t>{{0, 5}, {1, RD_KAFKA_OFFSET_INVALID}, {2, 7}}));
}

}  // namespace
}  // namespace runnel::integration
