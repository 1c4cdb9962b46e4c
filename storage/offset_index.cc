#include "storage/offset_index.h"

#include <fcntl.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"

namespace runnel::storage {
namespace {

void PutInt32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (24 - 8 * i));
}

}  // namespace

absl::StatusOr<std::unique_ptr<OffsetIndex>> OffsetIndex::Create(const std::filesystem::path& path,
                                                                 int64_t base_offset,
                                                                 int32_t max_index_bytes) {
  absl::StatusOr<std::shared_ptr<File>> file = File::Open(path, O_RDWR | O_CREAT | O_TRUNC);
  if (!file.ok()) return file.status();
  return std::unique_ptr<OffsetIndex>(
      new OffsetIndex(*std::move(file), base_offset, max_index_bytes));
}

OffsetIndex::OffsetIndex(std::shared_ptr<File> file, int64_t base_offset, int32_t max_index_bytes)
    : file_(std::move(file)), base_offset_(base_offset) {
  set_max_index_bytes(max_index_bytes);
}

void OffsetIndex::set_max_index_bytes(int32_t bytes) {
  // At least one entry, so that a tiny setting cannot make every segment "full".
  max_entries_ = std::max<size_t>(1, static_cast<size_t>(std::max(bytes, 0)) / kEntrySize);
}

OffsetIndex::Entry OffsetIndex::entry(size_t i) const {
  return {base_offset_ + entries_[i].relative_offset, entries_[i].position};
}

absl::Status OffsetIndex::Check(const Entry* last, int64_t offset, uint64_t position) const {
  int64_t relative = offset - base_offset_;
  if (relative < 0 || relative > std::numeric_limits<int32_t>::max() ||
      position > std::numeric_limits<int32_t>::max()) {
    return absl::InternalError(absl::StrCat("index entry (", offset, ", ", position,
                                            ") out of range in ", path().string()));
  }
  if (last != nullptr && (offset <= last->offset || position <= last->position)) {
    return absl::InternalError(absl::StrCat("index entry (", offset, ", ", position,
                                            ") not after (", last->offset, ", ", last->position,
                                            ") in ", path().string()));
  }
  return absl::OkStatus();
}

absl::Status OffsetIndex::Append(int64_t offset, uint64_t position) {
  std::optional<Entry> last;
  if (!entries_.empty()) last = entry(entries_.size() - 1);
  if (absl::Status s = Check(last ? &*last : nullptr, offset, position); !s.ok()) return s;
  char buf[kEntrySize];
  PutInt32(buf, static_cast<uint32_t>(offset - base_offset_));
  PutInt32(buf + 4, static_cast<uint32_t>(position));
  if (absl::Status s = file_->WriteAt(entries_.size() * kEntrySize, buf, kEntrySize); !s.ok()) {
    return s;
  }
  entries_.push_back(
      {static_cast<int32_t>(offset - base_offset_), static_cast<uint32_t>(position)});
  return absl::OkStatus();
}

absl::Status OffsetIndex::Reset(const std::vector<Entry>& entries) {
  std::string buf(entries.size() * kEntrySize, '\0');
  std::vector<Packed> packed;
  packed.reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    absl::Status s = Check(i == 0 ? nullptr : &entries[i - 1], e.offset, e.position);
    if (!s.ok()) return s;
    PutInt32(&buf[i * kEntrySize], static_cast<uint32_t>(e.offset - base_offset_));
    PutInt32(&buf[i * kEntrySize + 4], static_cast<uint32_t>(e.position));
    packed.push_back(
        {static_cast<int32_t>(e.offset - base_offset_), static_cast<uint32_t>(e.position)});
  }
  if (absl::Status s = file_->Truncate(0); !s.ok()) return s;
  if (absl::Status s = file_->WriteAt(0, buf.data(), buf.size()); !s.ok()) return s;
  entries_ = std::move(packed);
  return absl::OkStatus();
}

OffsetIndex::Entry OffsetIndex::Lookup(int64_t target) const {
  int64_t relative = target - base_offset_;
  auto it = std::upper_bound(entries_.begin(), entries_.end(), relative,
                             [](int64_t r, const Packed& e) { return r < e.relative_offset; });
  if (it == entries_.begin()) return {base_offset_, 0};
  return entry(static_cast<size_t>(it - entries_.begin() - 1));
}

uint64_t OffsetIndex::FloorPosition(uint64_t position) const {
  auto it = std::upper_bound(entries_.begin(), entries_.end(), position,
                             [](uint64_t p, const Packed& e) { return p < e.position; });
  if (it == entries_.begin()) return 0;
  return (it - 1)->position;
}

}  // namespace runnel::storage
