// TimeIndex: the sparse timestamp -> offset map of one segment, Kafka's `.timeindex`.
//
// On disk: a flat array of 12-byte big-endian entries, no header,
//   int64 timestamp | int32 relative_offset (offset - segment base offset)
// holding exactly size() entries. An entry (T, O) says that the largest timestamp of any
// batch up to and including offset O is T, so a record with timestamp > T comes after O.
// Kafka's O is the last offset of the batch that carried T.
// Invariants: timestamps strictly increase and offsets never decrease; an entry is added
// only when its timestamp exceeds the last one (so a log without timestamps has an empty
// time index). The last slot is kept for the entry written when the segment is rolled
// or closed (Kafka's skipFullCheck), which records the segment's maximum timestamp.
// In memory and written through, like OffsetIndex. Thread-compatible.
#ifndef RUNNEL_STORAGE_TIME_INDEX_H_
#define RUNNEL_STORAGE_TIME_INDEX_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/file.h"

namespace runnel::storage {

class TimeIndex {
 public:
  static constexpr size_t kEntrySize = 12;

  struct Entry {
    int64_t timestamp = -1;
    int64_t offset = 0;  // absolute
    bool operator==(const Entry&) const = default;
  };

  // Opens or creates the file and empties it.
  static absl::StatusOr<std::unique_ptr<TimeIndex>> Create(const std::filesystem::path& path,
                                                           int64_t base_offset,
                                                           int32_t max_index_bytes);

  // Appends (timestamp, offset) if timestamp is greater than the last entry's and the
  // index is not full (unless skip_full_check); otherwise does nothing.
  absl::Status MaybeAppend(int64_t timestamp, int64_t offset, bool skip_full_check = false);
  // Replaces every entry, in memory and on disk.
  absl::Status Reset(const std::vector<Entry>& entries);

  // The entry with the greatest timestamp <= target, else {-1, base_offset}.
  Entry Lookup(int64_t target) const;
  // The last entry, else {-1, base_offset}.
  Entry last_entry() const;

  bool full() const { return entries_.size() + 1 >= max_entries_; }
  void set_max_index_bytes(int32_t bytes);
  size_t max_entries() const { return max_entries_; }
  size_t size() const { return entries_.size(); }
  Entry entry(size_t i) const;
  const std::filesystem::path& path() const { return file_->path(); }

  absl::Status Sync() { return file_->Sync(); }

 private:
  TimeIndex(std::shared_ptr<File> file, int64_t base_offset, int32_t max_index_bytes);
  absl::Status CheckOffset(int64_t offset) const;

  std::shared_ptr<File> file_;
  int64_t base_offset_;
  size_t max_entries_;
  std::vector<Entry> entries_;
};

}  // namespace runnel::storage

#endif  // RUNNEL_STORAGE_TIME_INDEX_H_
