// StorageTasks: the storage engine's work on the broker's event loop besides requests,
// scheduled as Kafka's LogManager schedules it:
//   retention            every log.retention.check.interval.ms: each log's
//                        DeleteExpiredSegments (retention.ms, retention.bytes, log start)
//   flush.ms             every log.flush.scheduler.interval.ms (at most 1 s apart when
//                        some topic sets flush.ms): each log's MaybeFlush
//   compaction           every log.cleaner.backoff.ms (if log.cleaner.enable): each
//                        compacted log, __consumer_offsets included (log_cleaner.h)
//   checkpoints          recovery-point-offset-checkpoint every
//                        log.flush.offset.checkpoint.interval.ms, log-start-offset-checkpoint
//                        every log.flush.start.offset.checkpoint.interval.ms
//   producer expiration  every producer.id.expiration.check.interval.ms: each log forgets
//                        the producers idle for producer.id.expiration.ms
// and the group commit behind log.fsync.before.ack: FlushThen() queues partitions and a
// callback; once the requests already queued on the loop have run, each named log is
// fsynced once and every queued callback learns the outcome. An I/O error takes the log
// dir offline (Broker::ReportStorageError).
// Single-threaded: runs on the broker's io_context; fsync blocks the loop while it runs.
#ifndef RUNNEL_BROKER_STORAGE_TASKS_H_
#define RUNNEL_BROKER_STORAGE_TASKS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "asio.hpp"
#include "storage/partition_log.h"

namespace runnel::broker {

class Broker;

class StorageTasks {
 public:
  StorageTasks(Broker* broker, asio::io_context* io) : broker_(broker), io_(io) {}

  // Arms the periodic tasks.
  void Start();
  // Cancels them; callbacks still queued in FlushThen run with a Cancelled status.
  void Stop();

  using Partition = std::pair<std::string, int32_t>;
  void FlushThen(const std::vector<Partition>& partitions,
                 std::function<void(const absl::Status&)> done);

  // One pass of each periodic task, for tests and the timers.
  void CheckRetention(int64_t now_ms);
  void CheckFlushes(int64_t now_ms);
  void CleanLogs(int64_t now_ms);
  void ExpireProducers(int64_t now_ms);

 private:
  struct Periodic {
    Periodic(asio::io_context& io, int64_t interval, std::function<void()> f)
        : timer(io), interval_ms(interval), fn(std::move(f)) {}
    asio::steady_timer timer;
    int64_t interval_ms;
    std::function<void()> fn;
  };
  // Runs fn every interval_ms (not at all for storage::kNoLimit).
  void Every(int64_t interval_ms, std::function<void()> fn);
  void Arm(Periodic* task);
  // Runs fn on each topic log until one fails; a failure takes the log dir offline.
  void ForEachLogUntilError(const std::function<absl::Status(storage::PartitionLog&)>& fn);
  void FlushQueued();

  Broker* broker_;
  asio::io_context* io_;
  std::vector<std::unique_ptr<Periodic>> timers_;
  std::set<Partition> flush_queue_;
  std::vector<std::function<void(const absl::Status&)>> flush_waiters_;
  bool flush_posted_ = false;
  // Cleaner checkpoints of the internal topics' logs (__consumer_offsets,
  // __transaction_state), kept in memory: after a restart they are cleaned once more, which
  // changes nothing.
  std::map<std::string, int64_t> internal_topics_cleaned_;
  bool stopped_ = false;
};

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_STORAGE_TASKS_H_
