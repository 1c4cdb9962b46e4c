// Unit tests for GroupCoordinator: the classic group state machine, its errors, its
// timers (driven by running a real io_context briefly, or by expiring sessions
// directly), and committed offsets surviving a reload from __consumer_offsets.
#include "broker/group_coordinator.h"

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <optional>

#include "gtest/gtest.h"

namespace runnel::broker {
namespace {

class GroupCoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "group_coordinator_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    config_.initial_rebalance_delay_ms = 0;
    config_.min_session_timeout_ms = 10;
    config_.offsets_topic_partitions = 3;
    Reopen();
  }
  void TearDown() override {
    if (gc_) {
      EXPECT_TRUE(gc_->Close().ok());
    }
    gc_.reset();
    io_.restart();
    io_.poll();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    if (gc_) {
      ASSERT_TRUE(gc_->Close().ok());
    }
    gc_ = std::make_unique<GroupCoordinator>(&io_, config_, dir_);
    ASSERT_TRUE(gc_->Load(/*clean_shutdown=*/false).ok());
  }
  // Runs due timers (the zero initial delay, expired sessions).
  void RunFor(int ms) {
    io_.restart();
    io_.run_for(std::chrono::milliseconds(ms));
  }

  JoinGroupParams Params(const std::string& member_id, int32_t session_ms = 10000,
                         std::vector<std::pair<std::string, std::string>> protocols = {
                             {"range", "md"}}) {
    JoinGroupParams p;
    p.group_id = "g";
    p.member_id = member_id;
    p.client_id = "client";
    p.session_timeout_ms = session_ms;
    p.rebalance_timeout_ms = 1000;
    p.protocol_type = "consumer";
    p.protocols = std::move(protocols);
    p.require_known_member_id = true;
    return p;
  }

  // Starts a join; the result is filled in when the coordinator answers.
  std::shared_ptr<std::optional<JoinGroupResult>> Join(const JoinGroupParams& p) {
    auto out = std::make_shared<std::optional<JoinGroupResult>>();
    gc_->JoinGroup(p, [out](const JoinGroupResult& r) { *out = r; });
    return out;
  }

  // The two-step KIP-394 join of a new member; returns its member id.
  std::string NewMemberId(JoinGroupParams p) {
    auto first = Join(p);
    EXPECT_TRUE(first->has_value());
    EXPECT_EQ((*first)->error, ErrorCode::kMemberIdRequired);
    EXPECT_TRUE((*first)->member_id.rfind("client-", 0) == 0);
    return (*first)->member_id;
  }

  std::shared_ptr<std::optional<SyncGroupResult>> Sync(
      const std::string& member_id, int32_t generation,
      std::vector<std::pair<std::string, std::string>> assignments = {}) {
    SyncGroupParams p;
    p.group_id = "g";
    p.member_id = member_id;
    p.generation_id = generation;
    p.assignments = std::move(assignments);
    auto out = std::make_shared<std::optional<SyncGroupResult>>();
    gc_->SyncGroup(p, [out](const SyncGroupResult& r) { *out = r; });
    return out;
  }

  // One member joined and synced: returns its id; the group is Stable at generation 1.
  std::string StableSingleMember() {
    std::string id = NewMemberId(Params(""));
    auto join = Join(Params(id));
    RunFor(20);
    EXPECT_TRUE(join->has_value());
    EXPECT_EQ((*join)->error, ErrorCode::kNone);
    auto sync = Sync(id, 1, {{id, "A"}});
    EXPECT_TRUE(sync->has_value());
    EXPECT_EQ((*sync)->assignment, "A");
    return id;
  }

  std::string dir_;
  GroupCoordinatorConfig config_;
  asio::io_context io_;
  std::unique_ptr<GroupCoordinator> gc_;
};

TEST(JavaStringHashCodeTest, MatchesJava) {
  EXPECT_EQ(JavaStringHashCode(""), 0);
  EXPECT_EQ(JavaStringHashCode("hello"), 99162322);
  EXPECT_EQ(JavaStringHashCode("console-consumer-12345"), 158455506);
  EXPECT_EQ(JavaStringHashCode("\xc3\xa9"), 233);              // U+00E9, one UTF-16 unit
  EXPECT_EQ(JavaStringHashCode("\xf0\x9f\x98\x80"), 1772899);  // U+1F600, a surrogate pair
}

TEST_F(GroupCoordinatorTest, FirstJoinRequiresMemberIdThenCompletes) {
  std::string id = NewMemberId(Params(""));
  EXPECT_EQ(gc_->StateOf("g"), GroupState::kEmpty);
  auto join = Join(Params(id));
  EXPECT_EQ(gc_->StateOf("g"), GroupState::kPreparingRebalance);
  EXPECT_FALSE(join->has_value());  // waits for the (zero) initial delay
  RunFor(20);
  ASSERT_TRUE(join->has_value());
  EXPECT_EQ((*join)->error, ErrorCode::kNone);
  EXPECT_EQ((*join)->generation_id, 1);
  EXPECT_EQ((*join)->leader, id);
  EXPECT_EQ((*join)->protocol_name, "range");
  ASSERT_EQ((*join)->members.size(), 1u);
  EXPECT_EQ((*join)->members[0].metadata, "md");
  EXPECT_EQ(gc_->StateOf("g"), GroupState::kCompletingRebalance);
  auto sync = Sync(id, 1, {{id, "assignment"}});
  ASSERT_TRUE(sync->has_value());
  EXPECT_EQ((*sync)->error, ErrorCode::kNone);
  EXPECT_EQ((*sync)->assignment, "assignment");
  EXPECT_EQ(gc_->StateOf("g"), GroupState::kStable);
  EXPECT_EQ(gc_->Heartbeat("g", id, std::nullopt, 1), ErrorCode::kNone);
}

TEST_F(GroupCoordinatorTest, SecondMemberRebalancesAndFollowerGetsAssignment) {
  std::string a = StableSingleMember();
  std::string b = NewMemberId(Params(""));
  auto join_b = Join(Params(b));
  EXPECT_EQ(gc_->StateOf("g"), GroupState::kPreparingRebalance);
  EXPECT_EQ(gc_->Heartbeat("g", a, std::nullopt, 1), ErrorCode::kRebalanceInProgress);
  EXPECT_FALSE(join_b->has_value());
  auto join_a = Join(Params(a));  // all known members have rejoined: completes now
  ASSERT_TRUE(join_a->has_value() && join_b->has_value());
  EXPECT_EQ((*join_a)->generation_id, 2);
  EXPECT_EQ((*join_a)->leader, a);
  EXPECT_EQ((*join_a)->members.size(), 2u);
  EXPECT_TRUE((*join_b)->members.empty());
  auto sync_b = Sync(b, 2);
  EXPECT_FALSE(sync_b->has_value());  // waits for the leader
  auto sync_a = Sync(a, 2, {{a, "A"}, {b, "B"}});
  ASSERT_TRUE(sync_b->has_value());
  EXPECT_EQ((*sync_b)->assignment, "B");
  EXPECT_EQ((*sync_a)->assignment, "A");
  EXPECT_EQ(gc_->Heartbeat("g", b, std::nullopt, 1), ErrorCode::kIllegalGeneration);
  EXPECT_EQ(gc_->Heartbeat("g", "nobody", std::nullopt, 2), ErrorCode::kUnknownMemberId);
  EXPECT_EQ(gc_->Heartbeat("other", b, std::nullopt, 2), ErrorCode::kUnknownMemberId);
}

TEST_F(GroupCoordinatorTest, JoinErrors) {
  auto bad_timeout = Join(Params("", 5));
  EXPECT_EQ((*bad_timeout)->error, ErrorCode::kInvalidSessionTimeout);
  JoinGroupParams empty_group = Params("");
  empty_group.group_id = "";
  EXPECT_EQ((*Join(empty_group))->error, ErrorCode::kInvalidGroupId);
  EXPECT_EQ((*Join(Params("unknown")))->error, ErrorCode::kUnknownMemberId);
  std::string a = StableSingleMember();
  JoinGroupParams other_type = Params("");
  other_type.protocol_type = "connect";
  EXPECT_EQ((*Join(other_type))->error, ErrorCode::kInconsistentGroupProtocol);
  EXPECT_EQ((*Join(Params("", 10000, {{"roundrobin", ""}})))->error,
            ErrorCode::kInconsistentGroupProtocol);
  EXPECT_EQ(gc_->StateOf("g"), GroupState::kStable);
  EXPECT_EQ(gc_->GenerationOf("g"), 1);
  (void)a;
}

TEST_F(GroupCoordinatorTest, ProtocolSelectedByVotesAmongCommonProtocols) {
  std::string a = NewMemberId(Params("", 10000, {{"range", "ra"}, {"roundrobin", "rra"}}));
  auto join_a = Join(Params(a, 10000, {{"range", "ra"}, {"roundrobin", "rra"}}));
  std::string b = NewMemberId(Params("", 10000, {{"roundrobin", "rrb"}, {"sticky", ""}}));
  auto join_b = Join(Params(b, 10000, {{"roundrobin", "rrb"}, {"sticky", ""}}));
  RunFor(20);
  ASSERT_TRUE(join_a->has_value() && join_b->has_value());
  EXPECT_EQ((*join_a)->protocol_name, "roundrobin");
  EXPECT_EQ((*join_a)->generation_id, 1);
  const auto& leader_result = (*join_a)->leader == a ? **join_a : **join_b;
  ASSERT_EQ(leader_result.members.size(), 2u);
  for (const auto& m : leader_result.members)
    EXPECT_EQ(m.metadata, m.member_id == a ? "rra" : "rrb");
}

TEST_F(GroupCoordinatorTest, ExpiredSessionRemovesMemberAndRebalances) {
  std::string a = StableSingleMember();
  std::string b = NewMemberId(Params(""));
  auto join_b = Join(Params(b));
  auto join_a = Join(Params(a));
  auto sync_a = Sync(a, 2, {{a, "A"}, {b, "B"}});
  auto sync_b = Sync(b, 2);
  ASSERT_EQ(gc_->StateOf("g"), GroupState::kStable);
  gc_->ExpireMemberSession("g", b);
  EXPECT_EQ(gc_->StateOf("g"), GroupState::kPreparingRebalance);
  EXPECT_EQ(gc_->Heartbeat("g", b, std::nullopt, 2), ErrorCode::kUnknownMemberId);
  auto rejoin_a = Join(Params(a));
  ASSERT_TRUE(rejoin_a->has_value());
  EXPECT_EQ((*rejoin_a)->generation_id, 3);
  ASSERT_EQ((*rejoin_a)->members.size(), 1u);
  EXPECT_EQ((*rejoin_a)->members[0].member_id, a);
}

TEST_F(GroupCoordinatorTest, SessionTimerExpiresSilentMember) {
  std::string id = NewMemberId(Params("", 50));
  auto join = Join(Params(id, 50));
  RunFor(10);
  ASSERT_TRUE(join->has_value());
  auto sync = Sync(id, 1, {{id, "A"}});
  ASSERT_EQ(gc_->StateOf("g"), GroupState::kStable);
  RunFor(300);  // no heartbeats: the 50 ms session expires
  EXPECT_EQ(gc_->StateOf("g"), GroupState::kEmpty);
  EXPECT_EQ(gc_->GenerationOf("g"), 2);
  EXPECT_EQ(gc_->Heartbeat("g", id, std::nullopt, 1), ErrorCode::kUnknownMemberId);
}

TEST_F(GroupCoordinatorTest, RebalanceTimeoutRemovesMembersThatDoNotRejoin) {
  std::string a = StableSingleMember();
  std::string b = NewMemberId(Params(""));
  JoinGroupParams pb = Params(b);
  pb.rebalance_timeout_ms = 50;
  auto join_b = Join(pb);
  EXPECT_FALSE(join_b->has_value());
  RunFor(1300);  // a never rejoins; the round ends after the largest rebalance timeout
  ASSERT_TRUE(join_b->has_value());
  EXPECT_EQ((*join_b)->error, ErrorCode::kNone);
  EXPECT_EQ((*join_b)->generation_id, 2);
  EXPECT_EQ((*join_b)->leader, b);
  ASSERT_EQ((*join_b)->members.size(), 1u);
  EXPECT_EQ(gc_->Heartbeat("g", a, std::nullopt, 2), ErrorCode::kUnknownMemberId);
}

TEST_F(GroupCoordinatorTest, LeaveGroupBatchAndEmptyGroup) {
  std::string a = StableSingleMember();
  auto [error, errors] =
      gc_->LeaveGroup("g", {{a, std::nullopt}, {"ghost", std::nullopt}, {"", "no-such"}});
  EXPECT_EQ(error, ErrorCode::kNone);
  EXPECT_EQ(errors, (std::vector<ErrorCode>{ErrorCode::kNone, ErrorCode::kUnknownMemberId,
                                            ErrorCode::kUnknownMemberId}));
  EXPECT_EQ(gc_->StateOf("g"), GroupState::kEmpty);
  EXPECT_EQ(gc_->GenerationOf("g"), 2);
  EXPECT_EQ(gc_->Heartbeat("g", a, std::nullopt, 1), ErrorCode::kUnknownMemberId);
}

TEST_F(GroupCoordinatorTest, SyncErrors) {
  std::string a = NewMemberId(Params(""));
  auto join = Join(Params(a));
  EXPECT_EQ((*Sync(a, 5))->error, ErrorCode::kIllegalGeneration);
  EXPECT_EQ((*Sync(a, 0))->error, ErrorCode::kRebalanceInProgress);
  EXPECT_EQ((*Sync("ghost", 1))->error, ErrorCode::kUnknownMemberId);
  RunFor(20);
  std::string b = NewMemberId(Params(""));
  auto join_b = Join(Params(b));  // group is rebalancing again
  EXPECT_EQ((*Sync(a, 1))->error, ErrorCode::kRebalanceInProgress);
}

TEST_F(GroupCoordinatorTest, StaticMemberReplacesWithoutRebalanceAndFencesOldId) {
  JoinGroupParams p = Params("");
  p.group_instance_id = "instance-1";
  auto first = Join(p);  // static members get their id at once
  RunFor(20);
  ASSERT_TRUE(first->has_value());
  ASSERT_EQ((*first)->error, ErrorCode::kNone);
  std::string old_id = (*first)->member_id;
  Sync(old_id, 1, {{old_id, "A"}});
  ASSERT_EQ(gc_->StateOf("g"), GroupState::kStable);

  auto again = Join(p);  // restarted instance: unknown member id, same instance id
  ASSERT_TRUE(again->has_value());
  EXPECT_EQ((*again)->error, ErrorCode::kNone);
  EXPECT_NE((*again)->member_id, old_id);
  EXPECT_EQ((*again)->generation_id, 1);
  EXPECT_EQ(gc_->StateOf("g"), GroupState::kStable);
  EXPECT_EQ(gc_->GenerationOf("g"), 1);
  EXPECT_EQ(gc_->Heartbeat("g", old_id, std::string("instance-1"), 1),
            ErrorCode::kFencedInstanceId);
  EXPECT_EQ(gc_->Heartbeat("g", (*again)->member_id, std::string("instance-1"), 1),
            ErrorCode::kNone);
  auto sync = Sync((*again)->member_id, 1);
  EXPECT_EQ((*sync)->assignment, "A");
}

TEST_F(GroupCoordinatorTest, OffsetsCommitFetchAndSurviveReload) {
  CommittedOffset o{42, 3, "meta", 0};
  // A simple commit (no generation, no member) creates the group.
  auto errors = gc_->CommitOffsets("simple", -1, "", std::nullopt, 8, {{"t", 0, o}, {"t", 1, o}});
  EXPECT_EQ(errors, (std::vector<ErrorCode>{ErrorCode::kNone, ErrorCode::kNone}));
  EXPECT_EQ(gc_->StateOf("simple"), GroupState::kEmpty);
  std::string a = StableSingleMember();
  EXPECT_EQ(gc_->CommitOffsets("g", 0, a, std::nullopt, 8, {{"t", 0, o}}).front(),
            ErrorCode::kIllegalGeneration);
  EXPECT_EQ(gc_->CommitOffsets("g", 1, "ghost", std::nullopt, 8, {{"t", 0, o}}).front(),
            ErrorCode::kUnknownMemberId);
  EXPECT_EQ(gc_->CommitOffsets("g", -1, "", std::nullopt, 8, {{"t", 0, o}}).front(),
            ErrorCode::kUnknownMemberId);  // the group has members
  EXPECT_EQ(gc_->CommitOffsets("nogroup", 5, "m", std::nullopt, 8, {{"t", 0, o}}).front(),
            ErrorCode::kIllegalGeneration);
  EXPECT_EQ(gc_->CommitOffsets("nogroup", 5, "m", std::nullopt, 9, {{"t", 0, o}}).front(),
            ErrorCode::kGroupIdNotFound);  // OffsetCommit v9+
  CommittedOffset big{1, -1, std::string(5000, 'x'), 0};
  EXPECT_EQ(gc_->CommitOffsets("g", 1, a, std::nullopt, 8, {{"t", 0, o}, {"t", 1, big}}),
            (std::vector<ErrorCode>{ErrorCode::kNone, ErrorCode::kOffsetMetadataTooLarge}));
  CommittedOffset newer{50, 4, "", 0};
  EXPECT_EQ(gc_->CommitOffsets("g", 1, a, std::nullopt, 8, {{"t", 0, newer}}).front(),
            ErrorCode::kNone);

  Reopen();
  auto fetched = gc_->FetchOffset("g", "t", 0);
  ASSERT_TRUE(fetched.has_value());
  EXPECT_EQ(fetched->offset, 50);
  EXPECT_EQ(fetched->leader_epoch, 4);
  EXPECT_FALSE(gc_->FetchOffset("g", "t", 1).has_value());
  auto all = gc_->FetchAllOffsets("simple");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].partition, 1);
  EXPECT_EQ(all[1].offset.offset, 42);
  EXPECT_EQ(all[1].offset.metadata, "meta");
  // The member was restored: it may heartbeat at its generation.
  EXPECT_EQ(gc_->StateOf("g"), GroupState::kStable);
  EXPECT_EQ(gc_->Heartbeat("g", a, std::nullopt, 1), ErrorCode::kNone);
}

bool Listed(const GroupCoordinator& gc, const std::string& group_id) {
  for (const auto& [id, type, state] : gc.ListGroups()) {
    if (id == group_id) return true;
  }
  return false;
}

int64_t WallNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Offset retention is driven with an injected wall clock, so nothing waits a minute.
TEST_F(GroupCoordinatorTest, OffsetsExpireOnlyForEmptyGroupsAndExpirySurvivesReload) {
  config_.offsets_retention_minutes = 1;
  Reopen();
  constexpr int64_t kMinute = 60 * 1000;
  CommittedOffset o{7, -1, "", 0};
  std::string a = StableSingleMember();
  ASSERT_EQ(gc_->CommitOffsets("g", 1, a, std::nullopt, 8, {{"t", 0, o}}).front(),
            ErrorCode::kNone);
  ASSERT_EQ(gc_->CommitOffsets("simple", -1, "", std::nullopt, 8, {{"t", 0, o}}).front(),
            ErrorCode::kNone);
  int64_t now = WallNowMs();

  // Within the retention nothing expires.
  gc_->CleanupExpiredOffsets(now + kMinute / 2);
  EXPECT_TRUE(gc_->FetchOffset("simple", "t", 0).has_value());
  EXPECT_TRUE(Listed(*gc_, "simple"));

  // Past it, standalone commits expire (and their group with them); a Stable group keeps
  // its offsets however old they are.
  gc_->CleanupExpiredOffsets(now + 10 * kMinute);
  EXPECT_FALSE(gc_->FetchOffset("simple", "t", 0).has_value());
  EXPECT_FALSE(Listed(*gc_, "simple"));
  EXPECT_EQ(gc_->StateOf("simple"), GroupState::kDead);
  EXPECT_EQ(gc_->StateOf("g"), GroupState::kStable);
  EXPECT_TRUE(gc_->FetchOffset("g", "t", 0).has_value());

  // Once Empty, the group's retention counts from when it became Empty, across a reload.
  gc_->LeaveGroup("g", {{a, std::nullopt}});
  ASSERT_EQ(gc_->StateOf("g"), GroupState::kEmpty);
  int64_t emptied = WallNowMs();
  gc_->CleanupExpiredOffsets(emptied + kMinute / 2);
  EXPECT_TRUE(gc_->FetchOffset("g", "t", 0).has_value());
  Reopen();
  EXPECT_EQ(gc_->StateOf("g"), GroupState::kEmpty);
  EXPECT_TRUE(gc_->FetchOffset("g", "t", 0).has_value());
  EXPECT_FALSE(Listed(*gc_, "simple"));
  gc_->CleanupExpiredOffsets(emptied + 2 * kMinute);
  EXPECT_FALSE(gc_->FetchOffset("g", "t", 0).has_value());
  EXPECT_EQ(gc_->StateOf("g"), GroupState::kDead);
  EXPECT_FALSE(Listed(*gc_, "g"));

  // The tombstones replay: neither group nor any offset comes back.
  Reopen();
  EXPECT_EQ(gc_->StateOf("g"), GroupState::kDead);
  EXPECT_EQ(gc_->StateOf("simple"), GroupState::kDead);
  EXPECT_TRUE(gc_->FetchAllOffsets("g").empty());
  EXPECT_TRUE(gc_->ListGroups().empty());
}

TEST_F(GroupCoordinatorTest, DeleteGroupsAndOffsets) {
  CommittedOffset o{7, -1, "", 0};
  gc_->CommitOffsets("simple", -1, "", std::nullopt, 8, {{"t", 0, o}});
  std::string a = StableSingleMember();
  EXPECT_EQ(gc_->DeleteGroup("g"), ErrorCode::kNonEmptyGroup);
  EXPECT_EQ(gc_->DeleteGroup("missing"), ErrorCode::kGroupIdNotFound);
  std::vector<ErrorCode> errors;
  EXPECT_EQ(gc_->DeleteOffsets("g", {{"t", 0}}, &errors), ErrorCode::kNone);
  EXPECT_EQ(errors, std::vector<ErrorCode>{ErrorCode::kGroupSubscribedToTopic});
  EXPECT_EQ(gc_->DeleteOffsets("missing", {{"t", 0}}, &errors), ErrorCode::kGroupIdNotFound);
  EXPECT_EQ(gc_->DeleteGroup("simple"), ErrorCode::kNone);
  EXPECT_EQ(gc_->StateOf("simple"), GroupState::kDead);
  Reopen();
  EXPECT_FALSE(gc_->FetchOffset("simple", "t", 0).has_value());
  EXPECT_EQ(gc_->StateOf("simple"), GroupState::kDead);
  (void)a;
}

TEST_F(GroupCoordinatorTest, OffsetDeleteRefusesSubscribedTopicsOnly) {
  // ConsumerProtocolSubscription v0: int16 version, [topics], nullable bytes user data.
  std::string subscription("\x00\x00\x00\x00\x00\x01\x00\x01t\xff\xff\xff\xff", 13);
  std::string id = NewMemberId(Params("", 10000, {{"range", subscription}}));
  auto join = Join(Params(id, 10000, {{"range", subscription}}));
  RunFor(20);
  ASSERT_TRUE(join->has_value());
  Sync(id, 1, {{id, ""}});
  CommittedOffset o{5, -1, "", 0};
  ASSERT_EQ(gc_->CommitOffsets("g", 1, id, std::nullopt, 8, {{"t", 0, o}, {"u", 0, o}}),
            (std::vector<ErrorCode>{ErrorCode::kNone, ErrorCode::kNone}));
  std::vector<ErrorCode> errors;
  EXPECT_EQ(gc_->DeleteOffsets("g", {{"t", 0}, {"u", 0}}, &errors), ErrorCode::kNone);
  EXPECT_EQ(errors, (std::vector<ErrorCode>{ErrorCode::kGroupSubscribedToTopic, ErrorCode::kNone}));
  EXPECT_TRUE(gc_->FetchOffset("g", "t", 0).has_value());
  EXPECT_FALSE(gc_->FetchOffset("g", "u", 0).has_value());
  Reopen();
  EXPECT_TRUE(gc_->FetchOffset("g", "t", 0).has_value());
  EXPECT_FALSE(gc_->FetchOffset("g", "u", 0).has_value());
}

// A Stable consumer group loses, past the retention, only the offsets of topics none of
// its members subscribes to.
TEST_F(GroupCoordinatorTest, StableGroupExpiresOffsetsOfUnsubscribedTopicsOnly) {
  config_.offsets_retention_minutes = 1;
  Reopen();
  std::string subscription("\x00\x00\x00\x00\x00\x01\x00\x01t\xff\xff\xff\xff", 13);
  std::string id = NewMemberId(Params("", 10000, {{"range", subscription}}));
  auto join = Join(Params(id, 10000, {{"range", subscription}}));
  RunFor(20);
  ASSERT_TRUE(join->has_value());
  Sync(id, 1, {{id, ""}});
  CommittedOffset o{5, -1, "", 0};
  ASSERT_EQ(gc_->CommitOffsets("g", 1, id, std::nullopt, 8, {{"t", 0, o}, {"u", 0, o}}),
            (std::vector<ErrorCode>{ErrorCode::kNone, ErrorCode::kNone}));
  int64_t now = WallNowMs();
  gc_->CleanupExpiredOffsets(now + 30 * 1000);
  EXPECT_TRUE(gc_->FetchOffset("g", "u", 0).has_value());
  gc_->CleanupExpiredOffsets(now + 2 * 60 * 1000);
  EXPECT_TRUE(gc_->FetchOffset("g", "t", 0).has_value());
  EXPECT_FALSE(gc_->FetchOffset("g", "u", 0).has_value());
  EXPECT_EQ(gc_->StateOf("g"), GroupState::kStable);
  Reopen();
  EXPECT_TRUE(gc_->FetchOffset("g", "t", 0).has_value());
  EXPECT_FALSE(gc_->FetchOffset("g", "u", 0).has_value());
}

}  // namespace
}  // namespace runnel::broker
