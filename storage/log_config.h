// LogConfig: the per-topic settings the storage layer obeys. The broker turns a topic's
// config strings (segment.bytes, retention.ms, cleanup.policy, ...) into one, applying its
// own log.* defaults; the defaults here are Kafka's. Times are milliseconds; a limit of
// kNoLimit (Kafka's Long.MAX_VALUE, or -1 for retention) means "never".
#ifndef RUNNEL_STORAGE_LOG_CONFIG_H_
#define RUNNEL_STORAGE_LOG_CONFIG_H_

#include <algorithm>
#include <cstdint>
#include <limits>

namespace runnel::storage {

inline constexpr int64_t kNoLimit = std::numeric_limits<int64_t>::max();

struct LogConfig {
  // A segment rolls when an append would take it past this size. Capped at INT32_MAX
  // because index entries hold int32 file positions.
  int64_t segment_bytes = 1073741824;
  // Bytes appended between two entries of the sparse indexes.
  int32_t index_interval_bytes = 4096;
  // Bound on each index file; a segment rolls when either index is full.
  int32_t segment_index_bytes = 10485760;
  // segment.ms: a non-empty active segment rolls on append once its first batch is this
  // old (by the batch's MaxTimestamp, else the segment's creation time).
  int64_t segment_ms = 604800000;

  // cleanup.policy: "delete", "compact" or both.
  bool delete_policy = true;
  bool compact_policy = false;
  // retention.ms / retention.bytes (delete policy): whole inactive segments go once their
  // largest timestamp is older, or while the log without them stays at least this big.
  int64_t retention_ms = 604800000;
  int64_t retention_bytes = kNoLimit;
  // Compaction (compact policy).
  int64_t delete_retention_ms = 86400000;    // delete.retention.ms: tombstones kept this long
  double min_cleanable_dirty_ratio = 0.5;    // min.cleanable.dirty.ratio
  int64_t min_compaction_lag_ms = 0;         // min.compaction.lag.ms
  int64_t max_compaction_lag_ms = kNoLimit;  // max.compaction.lag.ms

  // flush.messages / flush.ms: fsync after this many appended messages, or once the
  // oldest unflushed append is this old. By default never: the page cache, as Kafka.
  int64_t flush_messages = kNoLimit;
  int64_t flush_ms = kNoLimit;

  // producer.id.expiration.ms: a producer whose last batch is this old is forgotten
  // (producer_state.h). A broker key, the same for every log; no topic config.
  int64_t producer_id_expiration_ms = 86400000;
};

// segment.bytes as enforced: at least 1, at most INT32_MAX.
inline uint64_t SegmentLimit(const LogConfig& config) {
  return static_cast<uint64_t>(
      std::clamp<int64_t>(config.segment_bytes, 1, std::numeric_limits<int32_t>::max()));
}

}  // namespace runnel::storage

#endif  // RUNNEL_STORAGE_LOG_CONFIG_H_
