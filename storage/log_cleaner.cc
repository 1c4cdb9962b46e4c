#include "storage/log_cleaner.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "storage/compactor.h"
#include "storage/segment.h"

namespace runnel::storage {

absl::StatusOr<CleanerPass> MaybeCleanLog(PartitionLog& log, int64_t first_dirty, int64_t now_ms,
                                          size_t dedupe_buffer_bytes) {
  const LogConfig& config = log.config();
  CleanerPass pass;
  pass.first_dirty_offset = std::max(first_dirty, log.log_start_offset());
  if (!config.compact_policy) return pass;
  std::vector<CompactionSource> segments = log.InactiveSegments();
  if (segments.empty()) return pass;

  // Kafka's firstUncleanableDirtyOffset: the active segment's base, the last stable offset
  // (so every transaction below is decided and the transaction index knows the aborted
  // ones), the first segment within min.compaction.lag.ms; whichever comes first.
  int64_t uncleanable =
      std::min(log.segment(log.segment_count() - 1).base_offset(), log.last_stable_offset());
  for (const CompactionSource& segment : segments) {
    if (config.min_compaction_lag_ms > 0 &&
        now_ms - segment.largest_timestamp < config.min_compaction_lag_ms) {
      uncleanable = std::min(uncleanable, segment.base_offset);
      break;
    }
  }
  // The segments with offsets below it (the last may go on past it).
  size_t cleanable = 0;
  while (cleanable < segments.size() && segments[cleanable].base_offset < uncleanable) {
    ++cleanable;
  }
  if (pass.first_dirty_offset >= uncleanable || cleanable == 0) return pass;

  uint64_t clean_bytes = 0, dirty_bytes = 0;
  bool overdue = false;
  for (size_t i = 0; i < cleanable; ++i) {
    uint64_t size = log.segment(i).size();
    if (segments[i].next_offset <= pass.first_dirty_offset) {
      clean_bytes += size;
    } else {
      dirty_bytes += size;
      overdue |= config.max_compaction_lag_ms != kNoLimit &&
                 now_ms - segments[i].largest_timestamp > config.max_compaction_lag_ms;
    }
  }
  pass.dirty_ratio =
      clean_bytes + dirty_bytes == 0 ? 0 : double(dirty_bytes) / double(clean_bytes + dirty_bytes);
  if (dirty_bytes == 0 || (pass.dirty_ratio < config.min_cleanable_dirty_ratio && !overdue)) {
    return pass;
  }

  std::vector<CompactionSource> dirty;
  for (size_t i = 0; i < cleanable; ++i) {
    if (segments[i].next_offset > pass.first_dirty_offset) dirty.push_back(segments[i]);
  }
  OffsetMap map(dedupe_buffer_bytes);
  absl::StatusOr<OffsetMapBuildResult> built =
      BuildOffsetMap(dirty, pass.first_dirty_offset, uncleanable,
                     log.AbortedTransactions(pass.first_dirty_offset, uncleanable), &map);
  if (!built.ok()) return built.status();
  const int64_t end = built->end_offset;

  // Groups of consecutive segments below the map's end that fit one segment.
  std::vector<std::vector<CompactionSource>> groups;
  uint64_t group_bytes = 0;
  for (size_t i = 0; i < cleanable && segments[i].base_offset < end; ++i) {
    uint64_t size = log.segment(i).size();
    bool fits = !groups.empty() && group_bytes + size <= SegmentLimit(config) &&
                segments[i].next_offset - groups.back().front().base_offset <
                    std::numeric_limits<int32_t>::max();
    if (!fits) {
      groups.emplace_back();
      group_bytes = 0;
    }
    groups.back().push_back(segments[i]);
    group_bytes += size;
  }

  if (groups.empty()) return pass;  // not reached: end is past the first dirty offset

  pass.segments_before = static_cast<int64_t>(log.segment_count());
  pass.bytes_before = log.size_bytes();
  // The aborted transactions of every segment to clean, as Kafka collects them segment by
  // segment: one tracker for the round, since a transaction may span groups.
  CleanerTransactions txns;
  txns.AddAbortedTransactions(log.AbortedTransactions(groups.front().front().base_offset,
                                                      groups.back().back().next_offset));
  CleanOptions options;
  options.now_ms = now_ms;
  options.delete_retention_ms = config.delete_retention_ms;
  options.upper_bound_offset = uncleanable;
  // Kafka's lastRecordsOfActiveProducers: their last batches stay, so that a reload of the
  // producer state from the log still knows their sequence numbers and epochs.
  for (const auto& [producer_id, entry] : log.producer_state().producers()) {
    ProducerLastRecord& last = options.active_producers[producer_id];
    if (entry.last_data_offset() >= 0) last.last_data_offset = entry.last_data_offset();
    last.producer_epoch = entry.epoch;
  }
  for (const std::vector<CompactionSource>& group : groups) {
    const int64_t base = group.front().base_offset;
    std::filesystem::path cleaned = log.dir() / Segment::FileName(base, ".log.cleaned");
    absl::StatusOr<CleanResult> result = Clean(group, map, options, &txns, cleaned);
    if (!result.ok()) return result.status();
    // The cleaned segment's transaction index: the aborted transactions whose markers the
    // clean kept.
    if (absl::Status s =
            log.ReplaceSegments(base, group.size(), cleaned, result->retained_aborted_transactions);
        !s.ok()) {
      return s;
    }
    pass.records_removed += result->records_read - result->records_written;
  }
  pass.cleaned = true;
  pass.first_dirty_offset = end;
  pass.segments_after = static_cast<int64_t>(log.segment_count());
  pass.bytes_after = log.size_bytes();
  return pass;
}

}  // namespace runnel::storage
