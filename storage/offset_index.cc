#include "storage/offset_index.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "protocol/wire.h"
#include "storage/file.h"

namespace runnel::storage {

// The descriptors below are only held while mapping, resizing or syncing: the mapping
// keeps the file's pages, and File::Open (file.h) keeps the in-memory file system's
// files reachable by path.

// IndexFile.

absl::StatusOr<IndexFile> IndexFile::Create(const std::filesystem::path& path, size_t entry_size,
                                            uint64_t capacity_bytes) {
  absl::StatusOr<std::shared_ptr<File>> fd = File::Open(path, O_RDWR | O_CREAT | O_TRUNC);
  if (!fd.ok()) return fd.status();
  IndexFile file(path, entry_size);
  capacity_bytes -= capacity_bytes % entry_size;
  if (absl::Status s = (*fd)->Truncate(capacity_bytes); !s.ok()) return s;
  if (absl::Status s = file.Map((*fd)->fd(), capacity_bytes); !s.ok()) return s;
  file.metadata_dirty_ = true;
  return file;
}

absl::StatusOr<IndexFile> IndexFile::Open(const std::filesystem::path& path, size_t entry_size) {
  absl::StatusOr<std::shared_ptr<File>> fd = File::Open(path, O_RDWR);
  if (!fd.ok()) return fd.status();
  absl::StatusOr<uint64_t> size = (*fd)->Size();
  if (!size.ok()) return size.status();
  IndexFile file(path, entry_size);
  if (absl::Status s = file.Map((*fd)->fd(), *size); !s.ok()) return s;
  file.entries_ = file.capacity();
  return file;
}

IndexFile::IndexFile(IndexFile&& other) noexcept
    : path_(std::move(other.path_)),
      entry_size_(other.entry_size_),
      data_(std::exchange(other.data_, nullptr)),
      length_(std::exchange(other.length_, 0)),
      entries_(std::exchange(other.entries_, 0)),
      data_dirty_(other.data_dirty_),
      metadata_dirty_(other.metadata_dirty_) {}

IndexFile& IndexFile::operator=(IndexFile&& other) noexcept {
  if (this != &other) {
    Unmap();
    path_ = std::move(other.path_);
    entry_size_ = other.entry_size_;
    data_ = std::exchange(other.data_, nullptr);
    length_ = std::exchange(other.length_, 0);
    entries_ = std::exchange(other.entries_, 0);
    data_dirty_ = other.data_dirty_;
    metadata_dirty_ = other.metadata_dirty_;
  }
  return *this;
}

IndexFile::~IndexFile() { Unmap(); }

absl::Status IndexFile::Map(int fd, uint64_t length) {
  if (length == 0) {  // mmap(2) refuses empty mappings
    data_ = nullptr;
    length_ = 0;
    return absl::OkStatus();
  }
  void* p = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return ErrnoError("mmap", path_, errno);
  data_ = static_cast<char*>(p);
  length_ = length;
  return absl::OkStatus();
}

void IndexFile::Unmap() {
  if (data_ != nullptr) ::munmap(data_, length_);
  data_ = nullptr;
  length_ = 0;
}

void IndexFile::Close() {
  Unmap();
  entries_ = 0;
}

absl::Status IndexFile::Resize(uint64_t bytes) {
  bytes -= bytes % entry_size_;
  if (bytes == length_) return absl::OkStatus();
  absl::StatusOr<std::shared_ptr<File>> fd = File::Open(path_, O_RDWR);
  if (!fd.ok()) return fd.status();
  // Dirty pages of the old mapping are in the page cache already: unmapping loses
  // nothing, and the file's length changes only once no mapping extends past it.
  Unmap();
  metadata_dirty_ = true;
  if (absl::Status error = (*fd)->Truncate(bytes); !error.ok()) {
    // Map what is there again so that the entries stay readable.
    if (absl::StatusOr<uint64_t> size = (*fd)->Size(); size.ok()) (void)Map((*fd)->fd(), *size);
    entries_ = std::min(entries_, capacity());
    return error;
  }
  if (absl::Status s = Map((*fd)->fd(), bytes); !s.ok()) {
    entries_ = 0;
    return s;
  }
  entries_ = std::min(entries_, capacity());
  return absl::OkStatus();
}

absl::Status IndexFile::Trim() { return Resize(static_cast<uint64_t>(entries_) * entry_size_); }

absl::Status IndexFile::Sync() {
  if (metadata_dirty_) {
    // The length changed: fsync a descriptor, which also writes the mapped pages.
    absl::StatusOr<std::shared_ptr<File>> fd = File::Open(path_, O_RDONLY);
    if (!fd.ok()) return fd.status();
    if (absl::Status s = (*fd)->Sync(); !s.ok()) return s;
  } else if (data_dirty_ && entries_ > 0) {
    if (::msync(data_, entries_ * entry_size_, MS_SYNC) != 0) {
      return ErrnoError("msync", path_, errno);
    }
  }
  metadata_dirty_ = false;
  data_dirty_ = false;
  return absl::OkStatus();
}

// OffsetIndex.

absl::StatusOr<std::unique_ptr<OffsetIndex>> OffsetIndex::Create(const std::filesystem::path& path,
                                                                 int64_t base_offset,
                                                                 int32_t max_index_bytes) {
  absl::StatusOr<IndexFile> file =
      IndexFile::Create(path, kEntrySize, MaxEntriesFor(max_index_bytes) * kEntrySize);
  if (!file.ok()) return file.status();
  return std::unique_ptr<OffsetIndex>(
      new OffsetIndex(*std::move(file), base_offset, max_index_bytes));
}

absl::StatusOr<std::unique_ptr<OffsetIndex>> OffsetIndex::Open(const std::filesystem::path& path,
                                                               int64_t base_offset,
                                                               int32_t max_index_bytes) {
  absl::StatusOr<IndexFile> file = IndexFile::Open(path, kEntrySize);
  if (!file.ok()) return file.status();
  return std::unique_ptr<OffsetIndex>(
      new OffsetIndex(*std::move(file), base_offset, max_index_bytes));
}

OffsetIndex::OffsetIndex(IndexFile file, int64_t base_offset, int32_t max_index_bytes)
    : file_(std::move(file)), base_offset_(base_offset) {
  set_max_index_bytes(max_index_bytes);
}

size_t OffsetIndex::MaxEntriesFor(int32_t bytes) {
  // At least one entry, so that a tiny setting cannot make every segment "full".
  return std::max<size_t>(1, static_cast<size_t>(std::max(bytes, 0)) / kEntrySize);
}

void OffsetIndex::set_max_index_bytes(int32_t bytes) { max_entries_ = MaxEntriesFor(bytes); }

OffsetIndex::Entry OffsetIndex::entry(size_t i) const {
  const char* p = file_.slot(i);
  return {base_offset_ + static_cast<int32_t>(protocol::GetBigEndian(p, 4)),
          protocol::GetBigEndian(p + 4, 4)};
}

OffsetIndex::Entry OffsetIndex::last_entry() const {
  return size() == 0 ? Entry{base_offset_, 0} : entry(size() - 1);
}

absl::Status OffsetIndex::SanityCheck(uint64_t log_size) const {
  auto corrupt = [&](auto&&... why) {
    return absl::DataLossError(
        absl::StrCat("corrupt offset index ", path().string(), ": ", why...));
  };
  if (file_.length() % kEntrySize != 0) {
    return corrupt("length ", file_.length(), " is not a multiple of ", kEntrySize);
  }
  // Every entry, not only the last as Kafka: a lookup's binary search needs them all in
  // order, and a zero tail left by an unclean stop shows up as a step back.
  for (size_t i = 0; i < size(); ++i) {
    Entry e = entry(i);
    if (e.offset < base_offset_) {
      return corrupt("entry ", i, " has offset ", e.offset, " below the base ", base_offset_);
    }
    if (i > 0) {
      Entry prev = entry(i - 1);
      if (e.offset <= prev.offset || e.position <= prev.position) {
        return corrupt("entry ", i, " (", e.offset, ", ", e.position, ") is not after (",
                       prev.offset, ", ", prev.position, ")");
      }
    }
  }
  if (size() > 0 && last_entry().position >= log_size) {
    return corrupt("last position ", last_entry().position, " is not inside the ", log_size,
                   "-byte log");
  }
  return absl::OkStatus();
}

absl::Status OffsetIndex::Append(int64_t offset, uint64_t position) {
  int64_t relative = offset - base_offset_;
  if (relative < 0 || relative > std::numeric_limits<int32_t>::max() ||
      position > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
    return absl::InternalError(absl::StrCat("index entry (", offset, ", ", position,
                                            ") out of range in ", path().string()));
  }
  if (size() > 0) {
    Entry last = last_entry();
    if (offset <= last.offset || position <= last.position) {
      return absl::InternalError(absl::StrCat("index entry (", offset, ", ", position,
                                              ") not after (", last.offset, ", ", last.position,
                                              ") in ", path().string()));
    }
  }
  if (full()) {
    return absl::FailedPreconditionError(
        absl::StrCat("append to a full index (", size(), " entries) ", path().string()));
  }
  if (file_.entries() >= file_.capacity()) {
    // Trimmed (rolled, or loaded from disk) and appended to again: preallocate anew.
    if (absl::Status s = file_.Resize(max_entries_ * kEntrySize); !s.ok()) return s;
  }
  char* p = file_.next_slot();
  protocol::PutBigEndian(p, static_cast<uint32_t>(relative), 4);
  protocol::PutBigEndian(p + 4, static_cast<uint32_t>(position), 4);
  file_.Commit();
  return absl::OkStatus();
}

OffsetIndex::Entry OffsetIndex::Lookup(int64_t target) const {
  // The first slot whose offset is > target, by binary search over the mapping.
  size_t lo = 0;
  size_t hi = size();
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (entry(mid).offset <= target) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == 0) return {base_offset_, 0};
  return entry(lo - 1);
}

uint64_t OffsetIndex::FloorPosition(uint64_t position) const {
  size_t lo = 0;
  size_t hi = size();
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (entry(mid).position <= position) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == 0) return 0;
  return entry(lo - 1).position;
}

}  // namespace runnel::storage
