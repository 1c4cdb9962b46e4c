#include "storage/time_index.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "protocol/wire.h"

namespace runnel::storage {

absl::StatusOr<std::unique_ptr<TimeIndex>> TimeIndex::Create(const std::filesystem::path& path,
                                                             int64_t base_offset,
                                                             int32_t max_index_bytes) {
  absl::StatusOr<IndexFile> file =
      IndexFile::Create(path, kEntrySize, MaxEntriesFor(max_index_bytes) * kEntrySize);
  if (!file.ok()) return file.status();
  return std::unique_ptr<TimeIndex>(new TimeIndex(*std::move(file), base_offset, max_index_bytes));
}

absl::StatusOr<std::unique_ptr<TimeIndex>> TimeIndex::Open(const std::filesystem::path& path,
                                                           int64_t base_offset,
                                                           int32_t max_index_bytes) {
  absl::StatusOr<IndexFile> file = IndexFile::Open(path, kEntrySize);
  if (!file.ok()) return file.status();
  return std::unique_ptr<TimeIndex>(new TimeIndex(*std::move(file), base_offset, max_index_bytes));
}

TimeIndex::TimeIndex(IndexFile file, int64_t base_offset, int32_t max_index_bytes)
    : file_(std::move(file)), base_offset_(base_offset) {
  set_max_index_bytes(max_index_bytes);
}

size_t TimeIndex::MaxEntriesFor(int32_t bytes) {
  // At least two slots: one for appends and the one kept for the roll entry.
  return std::max<size_t>(2, static_cast<size_t>(std::max(bytes, 0)) / kEntrySize);
}

void TimeIndex::set_max_index_bytes(int32_t bytes) { max_entries_ = MaxEntriesFor(bytes); }

TimeIndex::Entry TimeIndex::entry(size_t i) const {
  const char* p = file_.slot(i);
  return {static_cast<int64_t>(protocol::GetBigEndian(p, 8)),
          base_offset_ + static_cast<int32_t>(protocol::GetBigEndian(p + 8, 4))};
}

TimeIndex::Entry TimeIndex::last_entry() const {
  return size() == 0 ? Entry{-1, base_offset_} : entry(size() - 1);
}

absl::Status TimeIndex::SanityCheck() const {
  auto corrupt = [&](auto&&... why) {
    return absl::DataLossError(absl::StrCat("corrupt time index ", path().string(), ": ", why...));
  };
  if (file_.length() % kEntrySize != 0) {
    return corrupt("length ", file_.length(), " is not a multiple of ", kEntrySize);
  }
  for (size_t i = 0; i < size(); ++i) {
    Entry e = entry(i);
    if (e.offset < base_offset_) {
      return corrupt("entry ", i, " has offset ", e.offset, " below the base ", base_offset_);
    }
    if (i > 0) {
      Entry prev = entry(i - 1);
      if (e.timestamp <= prev.timestamp || e.offset < prev.offset) {
        return corrupt("entry ", i, " (", e.timestamp, ", ", e.offset, ") is not after (",
                       prev.timestamp, ", ", prev.offset, ")");
      }
    }
  }
  return absl::OkStatus();
}

absl::Status TimeIndex::MaybeAppend(int64_t timestamp, int64_t offset, bool skip_full_check) {
  const Entry last = last_entry();
  if (timestamp <= last.timestamp || (!skip_full_check && full())) return absl::OkStatus();
  int64_t relative = offset - base_offset_;
  if (relative < 0 || relative > std::numeric_limits<int32_t>::max() ||
      (size() > 0 && offset < last.offset)) {
    return absl::InternalError(
        absl::StrCat("time index offset ", offset, " out of order in ", path().string()));
  }
  if (file_.entries() >= file_.capacity()) {
    // Trimmed (rolled, or loaded from disk) and appended to again: preallocate anew.
    size_t slots = std::max(max_entries_, file_.entries() + 1);
    if (absl::Status s = file_.Resize(slots * kEntrySize); !s.ok()) return s;
  }
  char* p = file_.next_slot();
  protocol::PutBigEndian(p, static_cast<uint64_t>(timestamp), 8);
  protocol::PutBigEndian(p + 8, static_cast<uint32_t>(relative), 4);
  file_.Commit();
  return absl::OkStatus();
}

TimeIndex::Entry TimeIndex::Lookup(int64_t target) const {
  size_t lo = 0;
  size_t hi = size();
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (entry(mid).timestamp <= target) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == 0) return {-1, base_offset_};
  return entry(lo - 1);
}

}  // namespace runnel::storage
