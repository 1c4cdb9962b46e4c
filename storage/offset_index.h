// OffsetIndex: the sparse offset -> file position map of one segment, Kafka's `.index`.
//
// On disk: a flat array of 8-byte big-endian entries, no header,
//   int32 relative_offset (offset - segment base offset) | int32 position (in the .log)
// The file holds exactly size() entries (Kafka preallocates and trims on close; its
// readers take the entry count from the file length, so both shapes load in Kafka).
// Invariants: offsets and positions strictly increase. An entry names the LAST offset of
// a batch and the position where that batch starts, as Kafka's do, so the greatest entry
// <= a target offset is a batch boundary at or before the batch holding the target.
// The entries live in memory; the file is written through on every append and rewritten
// whole by Reset() when the segment is rebuilt on open. It is never read back (yet).
// Thread-compatible.
#ifndef RUNNEL_STORAGE_OFFSET_INDEX_H_
#define RUNNEL_STORAGE_OFFSET_INDEX_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/file.h"

namespace runnel::storage {

class OffsetIndex {
 public:
  static constexpr size_t kEntrySize = 8;

  struct Entry {
    int64_t offset = 0;  // absolute
    uint64_t position = 0;
    bool operator==(const Entry&) const = default;
  };

  // Opens or creates the file and empties it; the caller then appends or Reset()s.
  static absl::StatusOr<std::unique_ptr<OffsetIndex>> Create(const std::filesystem::path& path,
                                                             int64_t base_offset,
                                                             int32_t max_index_bytes);

  // Offsets must fit int32 relative to the base and exceed the last entry's.
  absl::Status Append(int64_t offset, uint64_t position);
  // Replaces every entry, in memory and on disk.
  absl::Status Reset(const std::vector<Entry>& entries);

  // The greatest entry with offset <= target, else {base_offset, 0}.
  Entry Lookup(int64_t target) const;
  // The greatest entry position <= position, else 0: a batch boundary at or before it.
  uint64_t FloorPosition(uint64_t position) const;

  bool full() const { return entries_.size() >= max_entries_; }
  void set_max_index_bytes(int32_t bytes);
  size_t max_entries() const { return max_entries_; }
  size_t size() const { return entries_.size(); }
  Entry entry(size_t i) const;
  const std::filesystem::path& path() const { return file_->path(); }

  absl::Status Sync() { return file_->Sync(); }

 private:
  struct Packed {
    int32_t relative_offset;
    uint32_t position;
  };

  OffsetIndex(std::shared_ptr<File> file, int64_t base_offset, int32_t max_index_bytes);
  absl::Status Check(const Entry* last, int64_t offset, uint64_t position) const;

  std::shared_ptr<File> file_;
  int64_t base_offset_;
  size_t max_entries_;
  std::vector<Packed> entries_;
};

}  // namespace runnel::storage

#endif  // RUNNEL_STORAGE_OFFSET_INDEX_H_
