#include "storage/transaction_index.h"

#include <fcntl.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "protocol/wire.h"
#include "storage/file.h"

namespace runnel::storage {
namespace {

void Put(char* p, uint64_t value, size_t n) { protocol::PutBigEndian(p, value, n); }

}  // namespace

std::string TransactionIndex::Encode(const std::vector<AbortedTxn>& entries) {
  std::string out(entries.size() * kEntrySize, '\0');
  char* p = out.data();
  for (const AbortedTxn& e : entries) {
    Put(p, static_cast<uint16_t>(kVersion), 2);
    Put(p + 2, static_cast<uint64_t>(e.producer_id), 8);
    Put(p + 10, static_cast<uint64_t>(e.first_offset), 8);
    Put(p + 18, static_cast<uint64_t>(e.last_offset), 8);
    Put(p + 26, static_cast<uint64_t>(e.last_stable_offset), 8);
    p += kEntrySize;
  }
  return out;
}

std::vector<AbortedTxn> TransactionIndex::Decode(std::string_view bytes, int64_t base_offset,
                                                 size_t* valid_bytes) {
  std::vector<AbortedTxn> entries;
  size_t pos = 0;
  for (; bytes.size() - pos >= kEntrySize; pos += kEntrySize) {
    const char* p = bytes.data() + pos;
    auto get = [p](size_t at, size_t n) { return protocol::GetBigEndian(p + at, n); };
    const int16_t version = static_cast<int16_t>(get(0, 2));
    AbortedTxn e;
    e.producer_id = static_cast<int64_t>(get(2, 8));
    e.first_offset = static_cast<int64_t>(get(10, 8));
    e.last_offset = static_cast<int64_t>(get(18, 8));
    e.last_stable_offset = static_cast<int64_t>(get(26, 8));
    if (version < 0 || version > kVersion || e.last_offset < base_offset ||
        (!entries.empty() && e.last_offset <= entries.back().last_offset)) {
      break;
    }
    entries.push_back(e);
  }
  if (valid_bytes != nullptr) *valid_bytes = pos;
  return entries;
}

absl::StatusOr<std::unique_ptr<TransactionIndex>> TransactionIndex::Open(
    const std::filesystem::path& path, int64_t base_offset) {
  std::unique_ptr<TransactionIndex> index(new TransactionIndex(path, base_offset));
  absl::StatusOr<std::string> bytes = ReadFileToString(path);
  if (absl::IsNotFound(bytes.status())) return index;
  if (!bytes.ok()) return bytes.status();
  index->has_file_ = true;
  size_t valid = 0;
  index->entries_ = Decode(*bytes, base_offset, &valid);
  if (valid != bytes->size()) {
    absl::StatusOr<std::shared_ptr<File>> file = File::Open(path, O_RDWR);
    if (!file.ok()) return file.status();
    if (absl::Status s = (*file)->Truncate(valid); !s.ok()) return s;
    index->dirty_ = true;
  }
  return index;
}

absl::Status TransactionIndex::Append(const AbortedTxn& txn) {
  if (txn.last_offset < base_offset_ ||
      (!entries_.empty() && txn.last_offset <= entries_.back().last_offset)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "aborted transaction ending at ", txn.last_offset, " does not follow ",
        entries_.empty() ? base_offset_ - 1 : entries_.back().last_offset, " in ", path_.string()));
  }
  absl::StatusOr<std::shared_ptr<File>> file = File::Open(path_, O_RDWR | O_CREAT);
  if (!file.ok()) return file.status();
  has_file_ = true;
  dirty_ = true;
  const uint64_t end = entries_.size() * kEntrySize;
  const std::string bytes = Encode({txn});
  if (absl::Status s = (*file)->WriteAt(end, bytes.data(), bytes.size()); !s.ok()) {
    (void)(*file)->Truncate(end);  // no partial entry left behind, if it can be helped
    return s;
  }
  entries_.push_back(txn);
  return absl::OkStatus();
}

absl::Status TransactionIndex::TruncateTo(int64_t offset) {
  auto keep = std::partition_point(entries_.begin(), entries_.end(), [offset](const AbortedTxn& e) {
    return e.last_offset < offset;
  });
  if (keep == entries_.end()) return absl::OkStatus();
  const size_t kept = static_cast<size_t>(keep - entries_.begin());
  if (has_file_) {
    absl::StatusOr<std::shared_ptr<File>> file = File::Open(path_, O_RDWR);
    if (!file.ok()) return file.status();
    if (absl::Status s = (*file)->Truncate(kept * kEntrySize); !s.ok()) return s;
    dirty_ = true;
  }
  entries_.erase(keep, entries_.end());
  return absl::OkStatus();
}

absl::Status TransactionIndex::Sync() {
  if (!dirty_ || !has_file_) return absl::OkStatus();
  absl::StatusOr<std::shared_ptr<File>> file = File::Open(path_, O_RDONLY);
  if (!file.ok()) return file.status();
  if (absl::Status s = (*file)->Sync(); !s.ok()) return s;
  dirty_ = false;
  return absl::OkStatus();
}

absl::Status TransactionIndex::Delete() {
  entries_.clear();
  dirty_ = false;
  has_file_ = false;
  absl::Status s = RemoveFile(path_);
  return absl::IsNotFound(s) ? absl::OkStatus() : s;
}

bool TransactionIndex::Collect(int64_t fetch_offset, int64_t upper_bound_offset,
                               std::vector<AbortedTxn>* out) const {
  // Entries ending before fetch_offset cannot overlap the range. Stopping at an entry
  // whose last stable offset reaches the bound loses nothing: every later transaction was
  // open at that marker (so starts at or after that LSO) or began after it.
  auto it = std::partition_point(
      entries_.begin(), entries_.end(),
      [fetch_offset](const AbortedTxn& e) { return e.last_offset < fetch_offset; });
  for (; it != entries_.end(); ++it) {
    if (it->first_offset < upper_bound_offset) out->push_back(*it);
    if (it->last_stable_offset >= upper_bound_offset) return true;
  }
  return false;
}

}  // namespace runnel::storage
