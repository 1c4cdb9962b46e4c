// TimeIndex: the sparse timestamp -> offset map of one segment, Kafka's `.timeindex`.
//
// On disk: a flat array of 12-byte big-endian entries, no header,
//   int64 timestamp | int32 relative_offset (offset - segment base offset)
// kept in a memory-mapped IndexFile (see offset_index.h) exactly as the OffsetIndex:
// preallocated to segment.index.bytes rounded down to a multiple of 12 on creation,
// trimmed to size() entries when the segment rolls or closes, entry count = file length
// / 12 when opened, no entries in memory, no descriptor held.
// An entry (T, O) says that the largest timestamp of any batch up to and including offset
// O is T, so a record with timestamp > T comes after O. Kafka's O is the last offset of
// the batch that carried T.
// Invariants: timestamps strictly increase and offsets never decrease; an entry is added
// only when its timestamp exceeds the last one (so a log without timestamps has an empty
// time index). The last slot is kept for the entry written when the segment is rolled
// or closed (Kafka's skipFullCheck), which records the segment's maximum timestamp, so
// the last entry of a cleanly closed segment's time index is its max timestamp.
// Thread-compatible.
#ifndef RUNNEL_STORAGE_TIME_INDEX_H_
#define RUNNEL_STORAGE_TIME_INDEX_H_

#include <cstdint>
#include <filesystem>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/offset_index.h"

namespace runnel::storage {

class TimeIndex {
 public:
  static constexpr size_t kEntrySize = 12;

  struct Entry {
    int64_t timestamp = -1;
    int64_t offset = 0;  // absolute
    bool operator==(const Entry&) const = default;
  };

  // Creates or empties the file and preallocates it to max_entries() entries.
  static absl::StatusOr<std::unique_ptr<TimeIndex>> Create(const std::filesystem::path& path,
                                                           int64_t base_offset,
                                                           int32_t max_index_bytes);
  // Maps an existing file as it is, size() = file length / 12; run SanityCheck() before
  // trusting it. NotFound if it does not exist.
  static absl::StatusOr<std::unique_ptr<TimeIndex>> Open(const std::filesystem::path& path,
                                                         int64_t base_offset,
                                                         int32_t max_index_bytes);

  // Kafka's checks and more: the length is a multiple of 12, offsets are >= the base and
  // never decrease, timestamps strictly increase. DataLoss if not. (The caller checks the
  // last offset against the log.)
  absl::Status SanityCheck() const;

  // Appends (timestamp, offset) if timestamp is greater than the last entry's and the
  // index is not full (unless skip_full_check); otherwise does nothing. Grows a trimmed
  // file back to max_entries() (or by one slot past it, for the roll entry).
  absl::Status MaybeAppend(int64_t timestamp, int64_t offset, bool skip_full_check = false);

  // The entry with the greatest timestamp <= target, else {-1, base_offset}.
  Entry Lookup(int64_t target) const;
  // The last entry, else {-1, base_offset}.
  Entry last_entry() const;

  bool full() const { return file_.entries() + 1 >= max_entries_; }
  void set_max_index_bytes(int32_t bytes);
  size_t max_entries() const { return max_entries_; }
  size_t size() const { return file_.entries(); }
  Entry entry(size_t i) const;
  // The file's current length: preallocated while active, size() * 12 once trimmed.
  uint64_t file_bytes() const { return file_.length(); }
  std::filesystem::path path() const { return file_.path(); }

  // Truncates the file to size() entries (Kafka's trimToValidSize).
  absl::Status Trim() { return file_.Trim(); }
  absl::Status Sync() { return file_.Sync(); }
  // Unmaps; the index is then empty.
  void Close() { file_.Close(); }

 private:
  TimeIndex(IndexFile file, int64_t base_offset, int32_t max_index_bytes);
  static size_t MaxEntriesFor(int32_t bytes);

  IndexFile file_;
  int64_t base_offset_;
  size_t max_entries_ = 2;
};

}  // namespace runnel::storage

#endif  // RUNNEL_STORAGE_TIME_INDEX_H_
