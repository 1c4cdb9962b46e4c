// LogManager: the topics of one log directory and the PartitionLog of each partition.
//
// Layout of the log dir:
//   topics.metadata           every topic: name, id, partition count, configs (below)
//   <topic>-<partition>/      a PartitionLog, plus Kafka's partition.metadata
//   <topic>-<partition>.<32 hex digits>-delete/   a partition being deleted
//   recovery-point-offset-checkpoint, log-start-offset-checkpoint,
//   cleaner-offset-checkpoint (first dirty offset per compacted log)   (checkpoint_file.h)
//   .kafka_cleanshutdown      present only while the broker is cleanly stopped
//
// topics.metadata (big-endian; replaced atomically: write topics.metadata.tmp, fsync,
// rename, fsync the directory):
//   magic "RNTM" | int32 version (0) | int32 topic count |
//   per topic, sorted by name:
//     int16 name length, name | 16 bytes topic id | int32 partition count |
//     int32 config count | per config: int16 key length, key, int32 value length, value
//   uint32 CRC-32C of every byte before it
// A file that fails its checks makes Open fail with DataLoss rather than lose topics.
//
// Invariants: topic names are unique and valid Kafka names (so they are safe path
// components), ids are unique, random v4 UUIDs. The metadata file is written before the
// directories change: creating a topic or partitions writes it first and then makes the
// directories (Open recreates any that are missing); deleting writes it first, then
// renames each partition directory to its "-delete" name and removes it. Open removes
// "-delete" directories and any partition directory whose partition.metadata names an
// unknown topic id or a partition number the topic does not have: leftovers of a
// deletion or creation interrupted by a crash.
// Opening after a clean stop is deferred: Open reads only topics.metadata, and each
// partition's log is opened on first use (Partition, ForEachPartition) or by
// OpenDeferredPartitions, which the broker runs in the background (and which first
// removes leftovers, which only a failed operation can leave before a clean stop); the
// checkpoint files are read on first need too. So a broker with many partitions answers
// at once. After an unclean stop every log is recovered before Open returns. Logs never
// opened keep their checkpointed values, and their files are as the clean stop left them.
// Recovery: Close() flushes every log, writes both checkpoints and then the clean-
// shutdown marker ({"version":0,"brokerEpoch":-1}, as Kafka's CleanShutdownFileHandler).
// Open reads the marker and renames it away (a .tmp name, removed with the other
// leftovers), so a crash from then on is seen as unclean; each log is then opened without
// scanning what its checkpointed recovery point says is durable.
// The log dir goes offline on the first I/O error a caller reports (SetOffline): the
// broker then answers KAFKA_STORAGE_ERROR for its partitions and no marker is written.
// Thread-compatible. Pointers returned stay valid until the topic is deleted or the
// manager destroyed.
#ifndef RUNNEL_STORAGE_LOG_MANAGER_H_
#define RUNNEL_STORAGE_LOG_MANAGER_H_

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/checkpoint_file.h"
#include "storage/log_config.h"
#include "storage/partition_log.h"
#include "storage/partition_metadata.h"

namespace runnel::storage {

struct TopicMetadata {
  std::string name;
  std::array<uint8_t, 16> id;
  int32_t partitions;
  std::map<std::string, std::string> configs;
};

class LogManager {
 public:
  using ConfigResolver = std::function<LogConfig(const std::map<std::string, std::string>&)>;

  // resolve_config turns a topic's config map into its LogConfig (the broker applies
  // defaults). Creates log_dir if needed and opens every partition of every topic.
  static absl::StatusOr<std::unique_ptr<LogManager>> Open(std::filesystem::path log_dir,
                                                          ConfigResolver resolve_config);
  ~LogManager();
  LogManager(const LogManager&) = delete;
  LogManager& operator=(const LogManager&) = delete;

  // AlreadyExists if present; InvalidArgument for a name Kafka would refuse
  // ([a-zA-Z0-9._-], 1-249 characters, not "." or "..") or partitions < 1.
  // Generates a random v4 topic id.
  absl::StatusOr<const TopicMetadata*> CreateTopic(const std::string& name, int32_t partitions,
                                                   std::map<std::string, std::string> configs);
  // NotFound if absent. FileRanges read from the topic stay valid; its PartitionLog
  // pointers do not.
  absl::Status DeleteTopic(const std::string& name);
  // NotFound if absent; InvalidArgument unless new_total is greater than the count.
  absl::Status AddPartitions(const std::string& name, int32_t new_total);
  // Replaces the topic's configs and applies them to its partitions. NotFound if absent.
  absl::Status SetTopicConfigs(const std::string& name, std::map<std::string, std::string> configs);
  // Resolves every topic's configs again (after the defaults behind resolve_config
  // changed) and applies them to the open logs.
  void ReapplyConfigs();

  const TopicMetadata* FindTopic(const std::string& name) const;
  const TopicMetadata* FindTopicById(const std::array<uint8_t, 16>& id) const;
  std::vector<const TopicMetadata*> Topics() const;  // sorted by name
  // nullptr if absent, or if opening it (deferred) failed, which takes the dir offline.
  PartitionLog* Partition(const std::string& topic, int32_t partition);
  // Every partition log, with its topic name and partition number (opening the deferred
  // ones first).
  void ForEachPartition(const std::function<void(const std::string&, int32_t, PartitionLog&)>& fn);
  // Opens up to `max` logs whose opening was deferred, after removing leftovers the first
  // time; true while some remain.
  bool OpenDeferredPartitions(size_t max);

  // Writes recovery-point-offset-checkpoint from every log's recovery point.
  absl::Status WriteRecoveryPointCheckpoint();
  // Writes log-start-offset-checkpoint: the logs whose start is above their first segment.
  absl::Status WriteLogStartOffsetCheckpoint();
  // The log cleaner's first dirty offset for a partition (0 if never cleaned), and its
  // update, written to cleaner-offset-checkpoint at once.
  int64_t CleanerOffset(const std::string& topic, int32_t partition) const;
  absl::Status SetCleanerOffset(const std::string& topic, int32_t partition, int64_t offset);

  // Whether the last stop was clean (the marker was present at Open).
  bool opened_after_clean_shutdown() const { return clean_shutdown_; }

  // Takes the log dir offline after an I/O error; `cause` is kept for logging.
  void SetOffline(absl::Status cause);
  bool offline() const { return !offline_cause_.ok(); }
  const absl::Status& offline_cause() const { return offline_cause_; }

  // Flushes and closes every partition, writes the checkpoints and, if everything went
  // well and the dir is online, the clean-shutdown marker. The manager must not be used
  // afterwards.
  absl::Status Close();

  const std::filesystem::path& log_dir() const { return log_dir_; }

 private:
  struct Topic {
    TopicMetadata metadata;
    std::vector<std::unique_ptr<PartitionLog>> partitions;  // null: opening deferred
  };

  LogManager(std::filesystem::path log_dir, ConfigResolver resolve_config)
      : log_dir_(std::move(log_dir)), resolve_config_(std::move(resolve_config)) {}
  absl::Status Load();
  absl::Status RemoveLeftovers();
  absl::Status Persist(const std::vector<const TopicMetadata*>& topics);
  // Persists the current topics with `change` applied to the named entry (or added).
  absl::Status PersistWith(const TopicMetadata& changed, bool remove);
  std::filesystem::path PartitionDir(const std::string& topic, int32_t partition) const;
  absl::Status OpenPartitions(Topic& topic, int32_t from, int32_t to, bool fresh);
  // Opens one existing partition; fills topic.partitions[p].
  absl::Status OpenPartition(Topic& topic, int32_t p, const LogConfig& config,
                             const LogCheckpoint& checkpoint);
  // Opens a deferred partition; on failure takes the dir offline and returns nullptr.
  PartitionLog* OpenDeferred(Topic& topic, int32_t p);
  // The opened logs only (for checkpoints and Close, which must not open anything).
  void ForEachOpenPartition(
      const std::function<void(const std::string&, int32_t, PartitionLog&)>& fn) const;
  // The entries of `read_at_open` whose partition exists and was never opened.
  PartitionOffsets OfUnopenedPartitions(const PartitionOffsets& read_at_open) const;
  // The three checkpoint files, read on the first call (parsing them is linear in the
  // number of partitions, too slow for start-up after a clean stop).
  struct Checkpoints {
    PartitionOffsets recovery_points;    // as read, for logs never opened
    PartitionOffsets log_start_offsets;  // as read, for logs never opened
    PartitionOffsets cleaner_offsets;
  };
  Checkpoints& checkpoints() const;
  // The checkpointed state of a partition being opened.
  LogCheckpoint CheckpointOf(const std::string& topic, int32_t partition) const;
  absl::Status RemovePartitionDir(const std::filesystem::path& dir, const TopicId& id);
  absl::StatusOr<TopicId> NewTopicId() const;

  std::filesystem::path log_dir_;
  ConfigResolver resolve_config_;
  std::map<std::string, std::unique_ptr<Topic>> topics_;
  std::map<TopicId, Topic*> by_id_;
  bool clean_shutdown_ = false;
  bool leftovers_pending_ = false;                    // RemoveLeftovers deferred after a clean stop
  mutable std::unique_ptr<Checkpoints> checkpoints_;  // null: not read yet
  absl::Status offline_cause_;
};

}  // namespace runnel::storage

#endif  // RUNNEL_STORAGE_LOG_MANAGER_H_
