#include "broker/storage_tasks.h"

#include <algorithm>
#include <chrono>

#include "broker/broker.h"
#include "broker/log.h"
#include "broker/topic_config.h"
#include "storage/log_cleaner.h"

namespace runnel::broker {
namespace {

int64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Timer periods beyond this are "never" (and would overflow steady_clock arithmetic).
constexpr int64_t kMaxPeriodMs = int64_t{365} * 24 * 3600 * 1000;

}  // namespace

void StorageTasks::Start() {
  const BrokerConfig& config = broker_->config();
  Every(config.log_retention_check_interval_ms, [this] { CheckRetention(WallClockMs()); });
  // Kafka checks flush.ms every log.flush.scheduler.interval.ms (default: never); a topic
  // that sets flush.ms is checked at least every second here.
  int64_t flush_check = config.log_flush_scheduler_interval_ms;
  bool any_flush_ms = config.log_defaults.flush_ms != storage::kNoLimit;
  for (const storage::TopicMetadata* t : broker_->logs().Topics()) {
    any_flush_ms |= ResolveLogConfig(config, t->configs).flush_ms != storage::kNoLimit;
  }
  if (any_flush_ms) flush_check = std::min<int64_t>(flush_check, 1000);
  Every(flush_check, [this] { CheckFlushes(WallClockMs()); });
  if (config.log_cleaner_enable) {
    Every(config.log_cleaner_backoff_ms, [this] { CleanLogs(WallClockMs()); });
  }
  Every(config.producer_id_expiration_check_interval_ms,
        [this] { ExpireProducers(WallClockMs()); });
  Every(config.log_flush_offset_checkpoint_interval_ms, [this] {
    if (absl::Status s = broker_->logs().WriteRecoveryPointCheckpoint(); !s.ok()) {
      broker_->ReportStorageError(s);
    }
  });
  Every(config.log_flush_start_offset_checkpoint_interval_ms, [this] {
    if (absl::Status s = broker_->logs().WriteLogStartOffsetCheckpoint(); !s.ok()) {
      broker_->ReportStorageError(s);
    }
  });
}

void StorageTasks::Stop() {
  stopped_ = true;
  for (auto& task : timers_) task->timer.cancel();
  FlushQueued();
}

void StorageTasks::Every(int64_t interval_ms, std::function<void()> fn) {
  if (interval_ms <= 0 || interval_ms >= kMaxPeriodMs) return;
  timers_.push_back(std::make_unique<Periodic>(*io_, interval_ms, std::move(fn)));
  Arm(timers_.back().get());
}

void StorageTasks::Arm(Periodic* task) {
  task->timer.expires_after(std::chrono::milliseconds(task->interval_ms));
  task->timer.async_wait([this, task](const asio::error_code& ec) {
    if (ec || stopped_) return;
    task->fn();
    Arm(task);
  });
}

void StorageTasks::ForEachLogUntilError(
    const std::function<absl::Status(storage::PartitionLog&)>& fn) {
  storage::LogManager& logs = broker_->logs();
  if (logs.offline()) return;
  absl::Status status;
  logs.ForEachPartition([&](const std::string&, int32_t, storage::PartitionLog& log) {
    if (status.ok()) status = fn(log);
  });
  if (!status.ok()) broker_->ReportStorageError(status);
}

void StorageTasks::CheckRetention(int64_t now_ms) {
  ForEachLogUntilError(
      [now_ms](storage::PartitionLog& log) { return log.DeleteExpiredSegments(now_ms).status(); });
}

void StorageTasks::CheckFlushes(int64_t now_ms) {
  ForEachLogUntilError([now_ms](storage::PartitionLog& log) { return log.MaybeFlush(now_ms); });
}

void StorageTasks::ExpireProducers(int64_t now_ms) {
  ForEachLogUntilError([now_ms](storage::PartitionLog& log) {
    log.RemoveExpiredProducers(now_ms);
    return absl::OkStatus();
  });
}

void StorageTasks::CleanLogs(int64_t now_ms) {
  storage::LogManager& logs = broker_->logs();
  if (logs.offline()) return;
  const size_t dedupe = static_cast<size_t>(broker_->config().log_cleaner_dedupe_buffer_size);
  absl::Status status;
  auto report = [](const std::string& name, const storage::CleanerPass& pass) {
    LogInfo("Cleaned log ", name, ": ", pass.segments_before, " segments (", pass.bytes_before,
            " bytes) into ", pass.segments_after, " (", pass.bytes_after, " bytes), ",
            pass.records_removed, " records removed; dirty ratio was ", pass.dirty_ratio);
  };
  logs.ForEachPartition([&](const std::string& topic, int32_t p, storage::PartitionLog& log) {
    if (!status.ok() || !log.config().compact_policy) return;
    absl::StatusOr<storage::CleanerPass> pass =
        storage::MaybeCleanLog(log, logs.CleanerOffset(topic, p), now_ms, dedupe);
    if (!pass.ok()) {
      status = pass.status();
    } else if (pass->cleaned) {
      report(topic + "-" + std::to_string(p), *pass);
      status = logs.SetCleanerOffset(topic, p, pass->first_dirty_offset);
    }
  });
  // The internal topics' logs (compacted, outside the LogManager): their cleaner
  // checkpoints are kept in memory, by log directory.
  broker_->ForEachInternalLog([&](const std::string&, int32_t, storage::PartitionLog& log) {
    if (!status.ok()) return;
    int64_t& first_dirty = internal_topics_cleaned_[log.dir().string()];
    absl::StatusOr<storage::CleanerPass> pass =
        storage::MaybeCleanLog(log, first_dirty, now_ms, dedupe);
    if (!pass.ok()) {
      status = pass.status();
    } else if (pass->cleaned) {
      report(log.dir().filename().string(), *pass);
      first_dirty = pass->first_dirty_offset;
    }
  });
  if (!status.ok()) broker_->ReportStorageError(status);
}

void StorageTasks::FlushThen(const std::vector<Partition>& partitions,
                             std::function<void(const absl::Status&)> done) {
  flush_queue_.insert(partitions.begin(), partitions.end());
  flush_waiters_.push_back(std::move(done));
  if (flush_posted_) return;
  flush_posted_ = true;
  // Requests already read run first, so that one fsync covers all of them.
  asio::post(*io_, [this] { FlushQueued(); });
}

void StorageTasks::FlushQueued() {
  flush_posted_ = false;
  std::set<Partition> partitions = std::move(flush_queue_);
  std::vector<std::function<void(const absl::Status&)>> waiters = std::move(flush_waiters_);
  flush_queue_.clear();
  flush_waiters_.clear();
  storage::LogManager& logs = broker_->logs();
  absl::Status status = stopped_ ? absl::CancelledError("shutting down") : absl::OkStatus();
  if (status.ok() && logs.offline()) status = logs.offline_cause();
  for (const Partition& p : partitions) {
    if (!status.ok()) break;
    // The topic may have been deleted meanwhile: nothing is left to make durable.
    if (storage::PartitionLog* log = logs.Partition(p.first, p.second)) status = log->Flush();
    if (!status.ok()) broker_->ReportStorageError(status);
  }
  for (auto& done : waiters) done(status);
}

}  // namespace runnel::broker
