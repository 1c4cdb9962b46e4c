// GroupCoordinator: Kafka's classic consumer-group protocol (GroupCoordinator /
// ClassicGroup): membership, rebalances, assignment distribution, and committed offsets.
//
// A group is in one of the states Empty, PreparingRebalance, CompletingRebalance, Stable
// and Dead, with Kafka's transitions:
//   Empty/Stable/CompletingRebalance --(join, leave, expiry, metadata change)-->
//       PreparingRebalance --(all known members rejoined, or rebalance timeout)-->
//       CompletingRebalance (generation+1; or Empty if nobody is left)
//       --(leader's SyncGroup)--> Stable
//   Empty --(DeleteGroups, or its last offset expiring)--> Dead
// Invariants: every member of a non-Empty group has a heartbeat deadline
// (session.timeout.ms after its last heartbeat/join/sync) and is removed when it passes,
// unless it is waiting in JoinGroup/SyncGroup; a join round ends at the latest after the
// largest rebalance.timeout.ms of the members, removing the dynamic members that did not
// rejoin. Every JoinGroup/SyncGroup callback is called exactly once. The first rebalance
// of an empty group waits group.initial.rebalance.delay.ms (extended while new members
// keep arriving, up to the rebalance timeout). A static member (group.instance.id) that
// rejoins replaces its old member id without a rebalance when the group is Stable and the
// selected protocol would not change; a request carrying a known instance id with a
// different member id is fenced (FENCED_INSTANCE_ID).
//
// Committed offsets and group metadata are written to GroupStore (__consumer_offsets)
// before the request is answered, and replayed by Load(). Transactional offsets
// (TxnOffsetCommit) are written as the producer's transactional batch and stay pending
// until the transaction coordinator's marker (CompleteTxn) commits or aborts them, also
// on replay.
//
// Single-threaded: every call, and every timer, runs on the broker's io_context.
#ifndef RUNNEL_BROKER_GROUP_COORDINATOR_H_
#define RUNNEL_BROKER_GROUP_COORDINATOR_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "asio.hpp"
#include "broker/group_store.h"
#include "protocol/errors.h"

namespace runnel::broker {

using protocol::ErrorCode;

enum class GroupState { kEmpty, kPreparingRebalance, kCompletingRebalance, kStable, kDead };
const char* GroupStateName(GroupState state);  // Kafka's names, e.g. "PreparingRebalance"

struct GroupCoordinatorConfig {
  int32_t min_session_timeout_ms = 6000;                 // group.min.session.timeout.ms
  int32_t max_session_timeout_ms = 1800000;              // group.max.session.timeout.ms
  int32_t initial_rebalance_delay_ms = 3000;             // group.initial.rebalance.delay.ms
  int32_t max_group_size = 2147483647;                   // group.max.size
  int32_t offset_metadata_max_bytes = 4096;              // offset.metadata.max.bytes
  int32_t offsets_topic_partitions = 50;                 // offsets.topic.num.partitions
  int32_t offsets_retention_minutes = 10080;             // offsets.retention.minutes
  int64_t offsets_retention_check_interval_ms = 600000;  // offsets.retention.check.interval.ms
  // Reads the keys above from broker properties, with Kafka's defaults.
  static GroupCoordinatorConfig FromProperties(const std::map<std::string, std::string>& props);
};

struct JoinGroupParams {
  std::string group_id;
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string client_host;
  int32_t session_timeout_ms = 0;
  int32_t rebalance_timeout_ms = 0;
  std::string protocol_type;
  std::vector<std::pair<std::string, std::string>> protocols;  // name, metadata
  bool require_known_member_id = false;                        // JoinGroup v4+
};

struct JoinGroupResult {
  ErrorCode error = ErrorCode::kNone;
  int32_t generation_id = -1;
  std::optional<std::string> protocol_type;
  std::optional<std::string> protocol_name;
  std::string leader;
  std::string member_id;
  bool skip_assignment = false;
  struct Member {
    std::string member_id;
    std::optional<std::string> group_instance_id;
    std::string metadata;
  };
  std::vector<Member> members;  // for the leader only
};

struct SyncGroupParams {
  std::string group_id;
  int32_t generation_id = -1;
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::optional<std::string> protocol_type;
  std::optional<std::string> protocol_name;
  std::vector<std::pair<std::string, std::string>> assignments;  // member id, assignment
};

struct SyncGroupResult {
  ErrorCode error = ErrorCode::kNone;
  std::optional<std::string> protocol_type;
  std::optional<std::string> protocol_name;
  std::string assignment;
};

struct LeaveGroupMember {
  std::string member_id;
  std::optional<std::string> group_instance_id;
};

struct GroupDescription {
  ErrorCode error = ErrorCode::kNone;
  std::string group_id;
  std::string state;
  std::string protocol_type;
  std::string protocol;
  struct Member {
    std::string member_id;
    std::optional<std::string> group_instance_id;
    std::string client_id;
    std::string client_host;
    std::string metadata;
    std::string assignment;
  };
  std::vector<Member> members;
};

struct TopicPartitionOffset {
  std::string topic;
  int32_t partition = 0;
  CommittedOffset offset;
};

class GroupCoordinator {
 public:
  using JoinCallback = std::function<void(const JoinGroupResult&)>;
  using SyncCallback = std::function<void(const SyncGroupResult&)>;

  GroupCoordinator(asio::io_context* io, GroupCoordinatorConfig config,
                   std::filesystem::path log_dir);
  ~GroupCoordinator();
  GroupCoordinator(const GroupCoordinator&) = delete;
  GroupCoordinator& operator=(const GroupCoordinator&) = delete;

  // Opens __consumer_offsets and replays it.
  // clean_shutdown: the log dir's clean-shutdown marker was present, so the offsets
  // logs need no recovery scan (GroupStore::Load).
  absl::Status Load(bool clean_shutdown);
  absl::Status Close();
  // Each __consumer_offsets partition log, for the log cleaner.
  void ForEachOffsetsLog(const std::function<void(int32_t, storage::PartitionLog&)>& fn) {
    store_.ForEachLog(fn);
  }

  void JoinGroup(const JoinGroupParams& params, JoinCallback callback);
  void SyncGroup(const SyncGroupParams& params, SyncCallback callback);
  ErrorCode Heartbeat(const std::string& group_id, const std::string& member_id,
                      const std::optional<std::string>& group_instance_id, int32_t generation_id);
  // Returns the group-level error and one error per member (in order).
  std::pair<ErrorCode, std::vector<ErrorCode>> LeaveGroup(
      const std::string& group_id, const std::vector<LeaveGroupMember>& members);

  // One error per offset (in order), or a single group-level error applied to all.
  std::vector<ErrorCode> CommitOffsets(const std::string& group_id, int32_t generation_id,
                                       const std::string& member_id,
                                       const std::optional<std::string>& group_instance_id,
                                       int16_t api_version,
                                       const std::vector<TopicPartitionOffset>& offsets);
  // TxnOffsetCommit: validates like OffsetCommit (but accepts a commit while the group
  // completes a rebalance, and one without a generation in any state, as Kafka) and
  // writes the offsets as the producer's transactional batch. They stay pending, invisible
  // to FetchOffset, until CompleteTxn commits or drops them.
  std::vector<ErrorCode> CommitTxnOffsets(const std::string& group_id, int64_t producer_id,
                                          int16_t producer_epoch, int32_t generation_id,
                                          const std::string& member_id,
                                          const std::optional<std::string>& group_instance_id,
                                          const std::vector<TopicPartitionOffset>& offsets);
  // The transaction coordinator's marker for __consumer_offsets-<offsets_partition>:
  // writes it, then makes the producer's pending offsets of the groups in that partition
  // committed (commit) or drops them.
  ErrorCode CompleteTxn(int32_t offsets_partition, int64_t producer_id, int16_t producer_epoch,
                        int32_t coordinator_epoch, bool commit);
  // Whether a transaction has uncommitted offsets for the group (for one partition, or
  // any): OffsetFetch's require_stable answers UNSTABLE_OFFSET_COMMIT then.
  bool HasPendingTxnOffsets(
      const std::string& group_id,
      const std::optional<std::pair<std::string, int32_t>>& partition = std::nullopt) const;
  // The __consumer_offsets partition of a group.
  int32_t PartitionFor(const std::string& group_id) const { return store_.PartitionFor(group_id); }

  // The committed offset, or nullopt.
  std::optional<CommittedOffset> FetchOffset(const std::string& group_id, const std::string& topic,
                                             int32_t partition) const;
  // Every committed offset of the group, sorted by topic and partition.
  std::vector<TopicPartitionOffset> FetchAllOffsets(const std::string& group_id) const;

  GroupDescription DescribeGroup(const std::string& group_id) const;
  // {group id, protocol type, state} of every group (not Dead).
  std::vector<std::tuple<std::string, std::string, std::string>> ListGroups() const;
  ErrorCode DeleteGroup(const std::string& group_id);
  // Group-level error; on kNone, per-partition errors in `partition_errors`
  // (GROUP_SUBSCRIBED_TO_TOPIC for topics the members' subscriptions name).
  ErrorCode DeleteOffsets(const std::string& group_id,
                          const std::vector<std::pair<std::string, int32_t>>& partitions,
                          std::vector<ErrorCode>* partition_errors);

  // offsets.topic.num.partitions, for describing __consumer_offsets in Metadata.
  int32_t offsets_topic_partitions() const { return config_.offsets_topic_partitions; }

  // For tests: the state and generation of a group (kDead if unknown), and forcing a
  // member's session to expire now.
  GroupState StateOf(const std::string& group_id) const;
  int32_t GenerationOf(const std::string& group_id) const;
  void ExpireMemberSession(const std::string& group_id, const std::string& member_id);

  // Kafka's GroupMetadataManager.cleanupGroupMetadata, run every
  // offsets.retention.check.interval.ms (and callable directly, with an injected wall
  // clock `now_ms`, by tests): the offsets of an Empty group expire once
  // offsets.retention.minutes have passed since the group became Empty (or, for a group
  // that never had a protocol type, i.e. standalone commits, since each offset's commit);
  // they are tombstoned in the store, and an Empty group left without offsets becomes
  // Dead and is removed. Non-empty groups keep all their offsets (Kafka's expiry of
  // unsubscribed topics in a non-empty consumer group is not implemented).
  void CleanupExpiredOffsets(int64_t now_ms);

 private:
  struct Member;
  struct Group;
  using Clock = std::chrono::steady_clock;

  Group* FindGroup(const std::string& group_id) const;
  Group& GetOrCreateGroup(const std::string& group_id);

  void NewMemberJoin(Group& g, const JoinGroupParams& p, JoinCallback cb);
  void CurrentMemberJoin(Group& g, const JoinGroupParams& p, JoinCallback cb);
  void StaticMemberJoin(Group& g, const JoinGroupParams& p, const std::string& new_member_id,
                        JoinCallback cb);
  void AddMemberAndRebalance(Group& g, const JoinGroupParams& p, const std::string& member_id,
                             JoinCallback cb);
  void UpdateMemberAndRebalance(Group& g, Member& m, const JoinGroupParams& p, JoinCallback cb);
  void MaybePrepareRebalance(Group& g);
  void PrepareRebalance(Group& g);
  void TryCompleteJoin(Group& g);
  void CompleteJoin(Group& g);
  void RemoveMember(Group& g, const std::string& member_id);
  void RemoveMemberAndUpdateGroup(Group& g, const std::string& member_id);
  // Answers the member's waiting JoinGroup/SyncGroup, if any, with `error`.
  void FailPendingRequests(Member& m, ErrorCode error);
  void PropagateSyncError(Group& g, ErrorCode error);

  bool SupportsProtocols(const Group& g, const std::string& type,
                         const std::vector<std::pair<std::string, std::string>>& protocols) const;
  std::string SelectProtocol(const Group& g) const;
  bool IsSubscribedToTopic(const Group& g, const std::string& topic) const;
  bool IsStaticMemberFenced(const Group& g, const std::string& member_id,
                            const std::optional<std::string>& instance_id) const;
  JoinGroupResult CurrentGenerationResult(const Group& g, const Member& m, bool with_members) const;

  void ScheduleHeartbeat(Group& g, Member& m);
  void SchedulePendingExpiry(Group& g, const std::string& member_id, int32_t session_timeout_ms);
  void OnHeartbeatTimer(const std::string& group_id, const std::string& member_id);
  void ScheduleJoinTimer(Group& g, int32_t delay_ms);
  void OnJoinTimer(const std::string& group_id, uint64_t round);

  void ScheduleOffsetsCleanup();
  void StoreGroup(Group& g);
  void Apply(const GroupRecord& record);

  using OffsetWrites =
      std::vector<std::pair<std::pair<std::string, int32_t>, std::optional<CommittedOffset>>>;
  // OffsetCommit's and TxnOffsetCommit's checks of the group and member; on kNone *group
  // is the (possibly new) group.
  ErrorCode ValidateOffsetCommit(const std::string& group_id, int32_t generation_id,
                                 const std::string& member_id,
                                 const std::optional<std::string>& instance_id, int16_t api_version,
                                 bool transactional, Group** group);
  // The offsets to write, stamped with the commit time; one error per offset.
  OffsetWrites StampOffsets(const std::vector<TopicPartitionOffset>& offsets,
                            std::vector<ErrorCode>* errors) const;
  void ApplyTxnMarker(int32_t offsets_partition, int64_t producer_id, bool commit);

  asio::io_context* io_;
  GroupCoordinatorConfig config_;
  GroupStore store_;
  std::map<std::string, std::unique_ptr<Group>> groups_;
  // Offsets of open transactions: producer id -> group -> partition -> offset.
  std::map<int64_t,
           std::map<std::string, std::map<std::pair<std::string, int32_t>, CommittedOffset>>>
      pending_txn_offsets_;
  std::unique_ptr<asio::steady_timer> cleanup_timer_;
};

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_GROUP_COORDINATOR_H_
