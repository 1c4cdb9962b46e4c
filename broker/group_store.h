// GroupStore: the durable side of the group coordinator, Kafka's internal topic
// __consumer_offsets. Its partitions are an InternalTopic (internal_topic.h: PartitionLogs
// in Kafka's layout <log.dir>/__consumer_offsets-<p>/, owned here, not by the LogManager),
// so the topic cannot be produced to or deleted by clients; Metadata describes it
// (is_internal) only when asked for it by name or id. A group lives
// in partition abs(javaStringHashCode(group_id)) % offsets.topic.num.partitions.
//
// Records use Kafka's key/value formats (group-coordinator/src/main/resources/common/
// message/*.json), one record per batch, uncompressed:
//   OffsetCommitKey   (key version 1): int16 1, string group, string topic, int32 partition
//   OffsetCommitValue (version 3):     int64 offset, int32 leader epoch, string metadata,
//                                      int64 commit timestamp
//   GroupMetadataKey  (key version 2): int16 2, string group
//   GroupMetadataValue (version 3):    string protocol type, int32 generation, nullable
//     string protocol, nullable string leader, int64 state timestamp, members array of
//     {string member id, nullable string instance id, string client id, string client host,
//      int32 rebalance timeout, int32 session timeout, bytes subscription, bytes assignment}
// A null value (tombstone) deletes the offset or group. Offsets committed in a transaction
// are a transactional batch of the producer, followed later by the transaction's commit or
// abort marker (a control batch, protocol/control_record.h). Strings are int16-length-prefixed
// (the non-flexible versions). Append() returns only after the bytes are in the log, so
// an acknowledged write survives a broker process restart (as with Kafka, nothing is
// fsynced until the log is flushed or closed).
//
// Invariant: Load() replays every partition in offset order; the last record for a key
// wins. Single-threaded (the broker's io_context).
#ifndef RUNNEL_BROKER_GROUP_STORE_H_
#define RUNNEL_BROKER_GROUP_STORE_H_

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "broker/internal_topic.h"
#include "storage/partition_log.h"

namespace runnel::broker {

inline constexpr char kConsumerOffsetsTopic[] = "__consumer_offsets";
// The topic id Metadata reports for __consumer_offsets. Kafka assigns it randomly when
// the topic is created; here the topic lives outside the topic table, so it gets a fixed
// non-zero id (all-zero means "no id"), stable across restarts: the first 16 bytes of its
// name, "__consumer_offse".
inline constexpr std::array<uint8_t, 16> kConsumerOffsetsTopicId = {
    0x5f, 0x5f, 0x63, 0x6f, 0x6e, 0x73, 0x75, 0x6d, 0x65, 0x72, 0x5f, 0x6f, 0x66, 0x66, 0x73, 0x65};

struct CommittedOffset {
  int64_t offset = -1;
  int32_t leader_epoch = -1;
  std::string metadata;
  int64_t commit_timestamp = 0;
};

struct StoredMember {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string client_host;
  int32_t rebalance_timeout_ms = 0;
  int32_t session_timeout_ms = 0;
  std::string subscription;
  std::string assignment;
};

struct StoredGroup {
  std::string protocol_type;
  int32_t generation = 0;
  std::optional<std::string> protocol;
  std::optional<std::string> leader;
  int64_t state_timestamp = -1;
  std::vector<StoredMember> members;
};

// One record of the log as replayed: an offset commit, group metadata, or (txn_marker
// set, nothing else but producer_id and store_partition) a transaction marker.
struct GroupRecord {
  std::string group;
  int64_t producer_id = -1;        // the producer whose transaction wrote it, or -1
  int32_t store_partition = -1;    // the __consumer_offsets partition it was read from
  std::optional<bool> txn_marker;  // a marker: true commits, false aborts
  // Offset commit (topic non-empty) or group metadata (topic empty).
  std::string topic;
  int32_t partition = -1;
  std::optional<CommittedOffset> offset;  // nullopt with topic set: tombstone
  std::optional<StoredGroup> metadata;    // nullopt with topic empty: tombstone
};

// Kafka's String.hashCode over the UTF-16 code units of the group id.
int32_t JavaStringHashCode(const std::string& s);

class GroupStore {
 public:
  GroupStore(std::filesystem::path log_dir, int32_t partitions);
  GroupStore(const GroupStore&) = delete;
  GroupStore& operator=(const GroupStore&) = delete;

  // Opens every partition and calls `apply` for each record, oldest first per partition.
  // clean_shutdown: the logs were flushed and closed by Close() and may be opened without
  // a recovery scan (as the LogManager's logs after the clean-shutdown marker).
  absl::Status Load(bool clean_shutdown, const std::function<void(const GroupRecord&)>& apply);

  int32_t PartitionFor(const std::string& group) const;

  // Each appends one batch to the group's partition.
  absl::Status AppendOffsets(
      const std::string& group,
      const std::vector<std::pair<std::pair<std::string, int32_t>, std::optional<CommittedOffset>>>&
          offsets);
  absl::Status AppendGroup(const std::string& group, const std::optional<StoredGroup>& value);
  // TxnOffsetCommit: the offsets as one transactional batch of the producer (appended with
  // the coordinator's origin: only its epoch is checked). ProducerError on a stale epoch.
  absl::Status AppendTxnOffsets(
      const std::string& group, int64_t producer_id, int16_t producer_epoch,
      const std::vector<std::pair<std::pair<std::string, int32_t>, std::optional<CommittedOffset>>>&
          offsets);
  // The transaction coordinator's commit or abort marker for the producer, in `partition`.
  absl::Status AppendTxnMarker(int32_t partition, int64_t producer_id, int16_t producer_epoch,
                               int32_t coordinator_epoch, bool commit);

  absl::Status Close();

  // Every __consumer_offsets partition log that exists (for the log cleaner, metrics).
  void ForEachLog(const std::function<void(int32_t, storage::PartitionLog&)>& fn) const {
    topic_.ForEachLog(fn);
  }

 private:
  // Creates the group's partition on first use.
  absl::Status Append(const std::string& group, std::string batch,
                      storage::AppendOrigin origin = storage::AppendOrigin::kClient);

  int32_t partitions_;
  InternalTopic topic_;
};

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_GROUP_STORE_H_
