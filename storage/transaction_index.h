// TransactionIndex: the aborted transactions whose ABORT markers lie in one segment,
// Kafka's `.txnindex` (TransactionIndex, AbortedTxn). A read_committed fetch asks which
// transactions overlap the range it returns (PartitionLog::AbortedTransactions) so that
// the consumer can drop their records.
//
// On disk: "<20-digit segment base offset>.txnindex" beside the segment, a flat array of
// 34-byte big-endian entries, no header:
//   int16 version (0) | int64 producer id | int64 first offset | int64 last offset |
//   int64 last stable offset
// first offset is the transaction's first batch's base offset in this partition, last
// offset the ABORT marker's offset, and last stable offset the partition's LSO right after
// the marker was written (Kafka's ProducerStateManager.lastStableOffset(completedTxn)).
// The file is created by the first Append (a segment without aborted transactions has
// none, as in Kafka), written with pwrite at the end of the entries, fsynced by Sync; it
// is not memory-mapped, and no descriptor is held between operations (aborts are rare).
// Every entry is also kept in memory, so queries read no file.
//
// Invariants: entries are in increasing last offset order, each last offset >= the
// segment's base offset. Open keeps the entries up to the first one that is torn (a
// partial entry at the end, what a crash during an append leaves), of a version above 0,
// below the base offset or not after the one before, and truncates the file to them.
// Works with both file systems of file.h (the in-memory one included).
// Thread-compatible.
#ifndef RUNNEL_STORAGE_TRANSACTION_INDEX_H_
#define RUNNEL_STORAGE_TRANSACTION_INDEX_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace runnel::storage {

inline constexpr std::string_view kTxnIndexSuffix = ".txnindex";

// An entry of the index (Kafka's AbortedTxn), as described above. The log cleaner
// (compactor.h) consumes and produces the same entries.
struct AbortedTxn {
  int64_t producer_id = -1;
  int64_t first_offset = 0;
  int64_t last_offset = 0;
  int64_t last_stable_offset = 0;
  bool operator==(const AbortedTxn&) const = default;
};

class TransactionIndex {
 public:
  static constexpr size_t kEntrySize = 34;
  static constexpr int16_t kVersion = 0;

  // The entry format above. Decode reads whole entries from the start of `bytes`, stopping
  // at the first that is partial or fails the checks above (for a segment based at
  // `base_offset`); *valid_bytes (may be null) is set to the bytes of those kept.
  static std::string Encode(const std::vector<AbortedTxn>& entries);
  static std::vector<AbortedTxn> Decode(std::string_view bytes, int64_t base_offset,
                                        size_t* valid_bytes = nullptr);

  // Loads `path` (a missing file is an empty index whose file Append creates), dropping
  // and truncating away what does not pass the checks above.
  static absl::StatusOr<std::unique_ptr<TransactionIndex>> Open(const std::filesystem::path& path,
                                                                int64_t base_offset);

  // Appends one entry (creating the file if needed). InvalidArgument unless its last offset
  // is after the last entry's and at or above the base offset. On an I/O error the index
  // is unchanged in memory (and the file cut back to it, when possible).
  absl::Status Append(const AbortedTxn& txn);
  // Keeps only the entries whose last offset is below `offset` (Kafka's truncateTo).
  absl::Status TruncateTo(int64_t offset);
  // fsyncs the file if it changed since the last Sync.
  absl::Status Sync();
  // Unlinks the file (fine if it is gone) and forgets the entries.
  absl::Status Delete();

  // Kafka's collectAbortedTxns: appends to *out every entry with last offset >=
  // fetch_offset and first offset < upper_bound_offset, in order. Returns true when the
  // search is complete (an entry's last stable offset reached upper_bound_offset, so no
  // later entry, here or in a later segment, can start below it).
  bool Collect(int64_t fetch_offset, int64_t upper_bound_offset,
               std::vector<AbortedTxn>* out) const;

  const std::vector<AbortedTxn>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }
  int64_t base_offset() const { return base_offset_; }
  const std::filesystem::path& path() const { return path_; }
  // Whether the file exists (Open found it, or Append created it).
  bool has_file() const { return has_file_; }

 private:
  TransactionIndex(std::filesystem::path path, int64_t base_offset)
      : path_(std::move(path)), base_offset_(base_offset) {}

  std::filesystem::path path_;
  int64_t base_offset_;
  std::vector<AbortedTxn> entries_;
  bool has_file_ = false;
  bool dirty_ = false;  // written or truncated since the last Sync
};

}  // namespace runnel::storage

#endif  // RUNNEL_STORAGE_TRANSACTION_INDEX_H_
