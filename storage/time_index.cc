#include "storage/time_index.h"

#include <fcntl.h>

#include <algorithm>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"

namespace runnel::storage {
namespace {

void PutEntry(char* p, int64_t timestamp, int32_t relative_offset) {
  for (int i = 0; i < 8; ++i)
    p[i] = static_cast<char>(static_cast<uint64_t>(timestamp) >> (56 - 8 * i));
  for (int i = 0; i < 4; ++i) {
    p[8 + i] = static_cast<char>(static_cast<uint32_t>(relative_offset) >> (24 - 8 * i));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<TimeIndex>> TimeIndex::Create(const std::filesystem::path& path,
                                                             int64_t base_offset,
                                                             int32_t max_index_bytes) {
  absl::StatusOr<std::shared_ptr<File>> file = File::Open(path, O_RDWR | O_CREAT | O_TRUNC);
  if (!file.ok()) return file.status();
  return std::unique_ptr<TimeIndex>(new TimeIndex(*std::move(file), base_offset, max_index_bytes));
}

TimeIndex::TimeIndex(std::shared_ptr<File> file, int64_t base_offset, int32_t max_index_bytes)
    : file_(std::move(file)), base_offset_(base_offset) {
  set_max_index_bytes(max_index_bytes);
}

void TimeIndex::set_max_index_bytes(int32_t bytes) {
  // At least two slots: one for appends and the one kept for the roll entry.
  max_entries_ = std::max<size_t>(2, static_cast<size_t>(std::max(bytes, 0)) / kEntrySize);
}

TimeIndex::Entry TimeIndex::entry(size_t i) const { return entries_[i]; }

TimeIndex::Entry TimeIndex::last_entry() const {
  return entries_.empty() ? Entry{-1, base_offset_} : entries_.back();
}

absl::Status TimeIndex::CheckOffset(int64_t offset) const {
  int64_t relative = offset - base_offset_;
  if (relative < 0 || relative > std::numeric_limits<int32_t>::max() ||
      (!entries_.empty() && offset < entries_.back().offset)) {
    return absl::InternalError(
        absl::StrCat("time index offset ", offset, " out of order in ", path().string()));
  }
  return absl::OkStatus();
}

absl::Status TimeIndex::MaybeAppend(int64_t timestamp, int64_t offset, bool skip_full_check) {
  if (timestamp <= last_entry().timestamp || (!skip_full_check && full())) {
    return absl::OkStatus();
  }
  if (absl::Status s = CheckOffset(offset); !s.ok()) return s;
  char buf[kEntrySize];
  PutEntry(buf, timestamp, static_cast<int32_t>(offset - base_offset_));
  if (absl::Status s = file_->WriteAt(entries_.size() * kEntrySize, buf, kEntrySize); !s.ok()) {
    return s;
  }
  entries_.push_back({timestamp, offset});
  return absl::OkStatus();
}

absl::Status TimeIndex::Reset(const std::vector<Entry>& entries) {
  std::string buf(entries.size() * kEntrySize, '\0');
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    int64_t relative = e.offset - base_offset_;
    if (relative < 0 || relative > std::numeric_limits<int32_t>::max() ||
        (i > 0 && (e.timestamp <= entries[i - 1].timestamp || e.offset < entries[i - 1].offset))) {
      return absl::InternalError(absl::StrCat("time index entry (", e.timestamp, ", ", e.offset,
                                              ") out of order in ", path().string()));
    }
    PutEntry(&buf[i * kEntrySize], e.timestamp, static_cast<int32_t>(relative));
  }
  if (absl::Status s = file_->Truncate(0); !s.ok()) return s;
  if (absl::Status s = file_->WriteAt(0, buf.data(), buf.size()); !s.ok()) return s;
  entries_ = entries;
  return absl::OkStatus();
}

TimeIndex::Entry TimeIndex::Lookup(int64_t target) const {
  auto it = std::upper_bound(entries_.begin(), entries_.end(), target,
                             [](int64_t t, const Entry& e) { return t < e.timestamp; });
  if (it == entries_.begin()) return {-1, base_offset_};
  return *(it - 1);
}

}  // namespace runnel::storage
