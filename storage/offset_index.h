// OffsetIndex: the sparse offset -> file position map of one segment, Kafka's `.index`;
// and IndexFile, the memory-mapped file of fixed-size entries under it and TimeIndex.
//
// On disk: a flat array of 8-byte big-endian entries, no header,
//   int32 relative_offset (offset - segment base offset) | int32 position (in the .log)
// As in Kafka, a new index file is preallocated (sparse, by ftruncate) to
// segment.index.bytes rounded down to a multiple of the entry size, and entries are
// written into a MAP_SHARED mapping of it; the unused tail reads as zeros. Trim()
// truncates the file to exactly the entries written (a segment does so when it rolls or
// closes), so a trimmed index holds exactly size() entries and Open() takes the entry
// count from the file length, as Kafka's readers do. An untrimmed file therefore means
// an unclean stop: its zero tail fails SanityCheck() (offsets and positions must strictly
// increase), and the segment is rebuilt from its .log.
// Invariants: offsets and positions strictly increase. An entry names the LAST offset of
// a batch and the position where that batch starts, as Kafka's do, so the greatest entry
// <= a target offset is a batch boundary at or before the batch holding the target.
// Nothing per entry lives in memory: lookups binary-search the mapping. No descriptor is
// kept open: the file is reopened by path to resize or fsync it.
// Thread-compatible.
#ifndef RUNNEL_STORAGE_OFFSET_INDEX_H_
#define RUNNEL_STORAGE_OFFSET_INDEX_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace runnel::storage {

// A file of `entry_size`-byte slots, mapped read-write and shared; the first entries()
// slots are valid. The mapping may be longer than the valid entries (preallocation) and
// is absent when the file is empty. Holds no file descriptor between calls.
class IndexFile {
 public:
  // Creates or empties `path` and preallocates it to `capacity_bytes` (a multiple of the
  // entry size); no valid entries.
  static absl::StatusOr<IndexFile> Create(const std::filesystem::path& path, size_t entry_size,
                                          uint64_t capacity_bytes);
  // Maps an existing file as it is: entries() = length / entry_size (rounded down).
  // NotFound if it does not exist.
  static absl::StatusOr<IndexFile> Open(const std::filesystem::path& path, size_t entry_size);

  IndexFile(IndexFile&& other) noexcept;
  IndexFile& operator=(IndexFile&& other) noexcept;
  IndexFile(const IndexFile&) = delete;
  IndexFile& operator=(const IndexFile&) = delete;
  ~IndexFile();

  const char* slot(size_t i) const { return data_ + i * entry_size_; }
  // Slot `entries()`, which must be below capacity(); Commit() makes it valid.
  char* next_slot() { return data_ + entries_ * entry_size_; }
  void Commit() {
    ++entries_;
    data_dirty_ = true;
  }

  size_t entries() const { return entries_; }
  size_t capacity() const { return static_cast<size_t>(length_ / entry_size_); }
  uint64_t length() const { return length_; }  // of the file, and of the mapping
  std::filesystem::path path() const { return path_; }

  // Changes the file length (and mapping) to `bytes`; entries past it are dropped.
  absl::Status Resize(uint64_t bytes);
  // Resize(entries() * entry size): the file then holds exactly the valid entries.
  absl::Status Trim();
  // Makes the valid entries and the file length durable: msync(MS_SYNC) of the entries,
  // or fsync(2) of the reopened file after a resize. No-op when nothing changed.
  absl::Status Sync();
  // Unmaps the file; the object is then empty (no entries, length 0).
  void Close();

 private:
  IndexFile(const std::filesystem::path& path, size_t entry_size)
      : path_(path.string()), entry_size_(entry_size) {}
  absl::Status Map(int fd, uint64_t length);
  void Unmap();

  std::string path_;  // not a std::filesystem::path, which costs ~4 times the memory
  size_t entry_size_;
  char* data_ = nullptr;
  uint64_t length_ = 0;
  size_t entries_ = 0;
  bool data_dirty_ = false;      // entries written since the last Sync
  bool metadata_dirty_ = false;  // file created or resized since the last Sync
};

class OffsetIndex {
 public:
  static constexpr size_t kEntrySize = 8;

  struct Entry {
    int64_t offset = 0;  // absolute
    uint64_t position = 0;
    bool operator==(const Entry&) const = default;
  };

  // Creates or empties the file and preallocates it to max_entries() entries.
  static absl::StatusOr<std::unique_ptr<OffsetIndex>> Create(const std::filesystem::path& path,
                                                             int64_t base_offset,
                                                             int32_t max_index_bytes);
  // Maps an existing file as it is, size() = file length / 8; run SanityCheck() before
  // trusting it. NotFound if it does not exist.
  static absl::StatusOr<std::unique_ptr<OffsetIndex>> Open(const std::filesystem::path& path,
                                                           int64_t base_offset,
                                                           int32_t max_index_bytes);

  // Kafka's checks and more, for an index opened over a .log of `log_size` bytes: the
  // length is a multiple of 8, offsets are >= the base and strictly increase, positions
  // strictly increase, and the last position lies inside the log. DataLoss if not.
  absl::Status SanityCheck(uint64_t log_size) const;

  // Offsets must fit int32 relative to the base and exceed the last entry's; positions
  // must exceed it too. FailedPrecondition when full(). Grows the file back to
  // max_entries() if it was trimmed (or opened) without room.
  absl::Status Append(int64_t offset, uint64_t position);

  // The greatest entry with offset <= target, else {base_offset, 0}.
  Entry Lookup(int64_t target) const;
  // The greatest entry position <= position, else 0: a batch boundary at or before it.
  uint64_t FloorPosition(uint64_t position) const;
  // The last entry, else {base_offset, 0}.
  Entry last_entry() const;

  bool full() const { return file_.entries() >= max_entries_; }
  void set_max_index_bytes(int32_t bytes);
  size_t max_entries() const { return max_entries_; }
  size_t size() const { return file_.entries(); }
  Entry entry(size_t i) const;
  // The file's current length: preallocated while active, size() * 8 once trimmed.
  uint64_t file_bytes() const { return file_.length(); }
  std::filesystem::path path() const { return file_.path(); }

  // Truncates the file to size() entries (Kafka's trimToValidSize).
  absl::Status Trim() { return file_.Trim(); }
  absl::Status Sync() { return file_.Sync(); }
  // Unmaps; the index is then empty.
  void Close() { file_.Close(); }

 private:
  OffsetIndex(IndexFile file, int64_t base_offset, int32_t max_index_bytes);
  static size_t MaxEntriesFor(int32_t bytes);

  IndexFile file_;
  int64_t base_offset_;
  size_t max_entries_ = 1;
};

}  // namespace runnel::storage

#endif  // RUNNEL_STORAGE_OFFSET_INDEX_H_
