// LogCleaner: when and what to compact, as Kafka's LogCleanerManager and Cleaner.clean
// decide it, around the record-level work of compactor.h.
//
// For a log with cleanup.policy=compact, each pass:
//   first dirty offset   the cleaner's checkpoint for the log, raised to its start offset
//   first uncleanable    the active segment's base, lowered to the log's last stable
//                        offset and to the first segment with a record younger than
//                        min.compaction.lag.ms (it may fall inside a segment)
//   dirty ratio          bytes of the segments with offsets in [first dirty, first
//                        uncleanable) over bytes of all segments with offsets below first
//                        uncleanable
// The log is cleaned when the ratio reaches min.cleanable.dirty.ratio, or when its oldest
// dirty segment is older than max.compaction.lag.ms. A clean builds the key -> latest
// offset map over the dirty range (bounded by log.cleaner.dedupe.buffer.size; a full map
// ends the range early), then rewrites every segment with offsets below the map's end, in
// groups of consecutive segments that together fit segment.bytes, each group into one new
// segment (PartitionLog::ReplaceSegments). The map's end becomes the new checkpoint. The
// active segment is never touched; offsets are kept, with gaps; records past the map's end
// (in the last segment rewritten) are all kept.
// Transactions, as Kafka's cleaner: nothing at or past the last stable offset is covered
// by the map, so an open transaction's records are never removed; the aborted
// transactions of the log's transaction indexes (PartitionLog::AbortedTransactions) make
// their records go whatever their keys, and decide which markers stay (compactor.h); each
// cleaned segment's transaction index holds the aborted transactions whose ABORT markers
// it kept. The last batch of each producer the log knows stays (maybe emptied), so that
// its sequence numbers and epoch survive a reload of the producer state from the log.
// Runs on the caller's thread; the log must not be used concurrently.
#ifndef RUNNEL_STORAGE_LOG_CLEANER_H_
#define RUNNEL_STORAGE_LOG_CLEANER_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "storage/partition_log.h"

namespace runnel::storage {

struct CleanerPass {
  bool cleaned = false;
  double dirty_ratio = 0;
  int64_t first_dirty_offset = 0;  // the checkpoint after the pass
  int64_t segments_before = 0;
  int64_t segments_after = 0;
  int64_t records_removed = 0;
  uint64_t bytes_before = 0;
  uint64_t bytes_after = 0;
};

// Cleans `log` if it is due. `first_dirty` is the cleaner checkpoint for the log (0 if
// none); the returned pass carries the new one.
absl::StatusOr<CleanerPass> MaybeCleanLog(PartitionLog& log, int64_t first_dirty, int64_t now_ms,
                                          size_t dedupe_buffer_bytes);

}  // namespace runnel::storage

#endif  // RUNNEL_STORAGE_LOG_CLEANER_H_
