// LogConfig: the per-topic settings the storage layer obeys. The broker turns a topic's
// config strings (segment.bytes, index.interval.bytes, segment.index.bytes) into one,
// applying its own defaults; the defaults here are Kafka's.
#ifndef RUNNEL_STORAGE_LOG_CONFIG_H_
#define RUNNEL_STORAGE_LOG_CONFIG_H_

#include <algorithm>
#include <cstdint>
#include <limits>

namespace runnel::storage {

struct LogConfig {
  // A segment rolls when an append would take it past this size. Capped at INT32_MAX
  // because index entries hold int32 file positions.
  int64_t segment_bytes = 1073741824;
  // Bytes appended between two entries of the sparse indexes.
  int32_t index_interval_bytes = 4096;
  // Bound on each index file; a segment rolls when either index is full.
  int32_t segment_index_bytes = 10485760;
};

// segment.bytes as enforced: at least 1, at most INT32_MAX.
inline uint64_t SegmentLimit(const LogConfig& config) {
  return static_cast<uint64_t>(
      std::clamp<int64_t>(config.segment_bytes, 1, std::numeric_limits<int32_t>::max()));
}

}  // namespace runnel::storage

#endif  // RUNNEL_STORAGE_LOG_CONFIG_H_
