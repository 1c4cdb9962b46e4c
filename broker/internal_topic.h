// InternalTopic: the partitions of one of the broker's internal topics (__consumer_offsets,
// __transaction_state), PartitionLogs in Kafka's layout <log.dir>/<topic>-<p>/ owned here,
// not by the LogManager, so clients can neither produce to nor delete them.
//
// Invariants: a partition's directory is created on its first append (or first Log()
// call), as Kafka's coordinators create a partition once a key maps to it; Load() opens
// exactly the partitions whose directories exist and replays each in offset order,
// partition 0 first, handing every batch's header with its records (those at or above
// the log start offset), control batches included. The on-disk format is the
// PartitionLog's; what the records mean is the caller's.
// Single-threaded (the broker's io_context).
#ifndef RUNNEL_BROKER_INTERNAL_TOPIC_H_
#define RUNNEL_BROKER_INTERNAL_TOPIC_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "protocol/record_batch.h"
#include "storage/log_config.h"
#include "storage/partition_log.h"

namespace runnel::broker {

class InternalTopic {
 public:
  // Called by Load() for each batch, oldest first per partition.
  using ReplayFn = std::function<void(int32_t partition, const protocol::BatchHeader& header,
                                      const std::vector<protocol::Record>& records)>;

  InternalTopic(std::filesystem::path log_dir, std::string topic, int32_t partitions,
                storage::LogConfig config)
      : log_dir_(std::move(log_dir)),
        topic_(std::move(topic)),
        partitions_(partitions),
        config_(config),
        logs_(static_cast<size_t>(partitions)) {}
  InternalTopic(const InternalTopic&) = delete;
  InternalTopic& operator=(const InternalTopic&) = delete;

  const std::string& topic() const { return topic_; }
  int32_t partitions() const { return partitions_; }

  // Opens every existing partition and replays it through `apply`.
  // clean_shutdown: the logs were flushed and closed by Close() and may be opened without
  // a recovery scan (as the LogManager's logs after the clean-shutdown marker).
  absl::Status Load(bool clean_shutdown, const ReplayFn& apply);

  // Appends `batch` (one or more whole batches) to `partition`, creating it if needed.
  absl::StatusOr<storage::AppendInfo> Append(
      int32_t partition, std::string batch,
      storage::AppendOrigin origin = storage::AppendOrigin::kClient);

  // The partition's log, created on first use (e.g. to append transaction markers).
  // InvalidArgument for a partition outside [0, partitions()).
  absl::StatusOr<storage::PartitionLog*> Log(int32_t partition);

  // Flushes and closes every log and forgets them (a later append reopens its partition).
  absl::Status Close();

  // Every partition log that exists (for the log cleaner, metrics).
  void ForEachLog(const std::function<void(int32_t, storage::PartitionLog&)>& fn) const;

 private:
  std::filesystem::path PartitionDir(int32_t partition) const;

  std::filesystem::path log_dir_;
  std::string topic_;
  int32_t partitions_;
  storage::LogConfig config_;
  std::vector<std::unique_ptr<storage::PartitionLog>> logs_;  // null: not created yet
};

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_INTERNAL_TOPIC_H_
