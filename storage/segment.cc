#include "storage/segment.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "protocol/wire.h"

namespace runnel::storage {
namespace {

using protocol::BatchHeader;
using protocol::kBatchHeaderSize;
using protocol::kBatchLogOverhead;

constexpr int64_t kMaxRelative = std::numeric_limits<int32_t>::max();
constexpr size_t kDigits = 20;

std::filesystem::path PathFor(const std::filesystem::path& dir, int64_t base_offset,
                              std::string_view suffix) {
  return dir / Segment::FileName(base_offset, suffix);
}

int64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Whether the whole batch `batch`, whose header is h, has a matching CRC-32C.
bool CrcMatches(const std::string& batch, const BatchHeader& h) {
  return protocol::Crc32c(batch.data() + protocol::kAttributesOffset,
                          batch.size() - protocol::kAttributesOffset) == h.crc;
}

}  // namespace

std::string Segment::FileName(int64_t base_offset, std::string_view suffix) {
  std::string digits = std::to_string(base_offset);
  return absl::StrCat(std::string(kDigits - std::min(kDigits, digits.size()), '0'), digits,
                      absl::string_view(suffix.data(), suffix.size()));
}

std::optional<int64_t> Segment::ParseFileName(std::string_view name, std::string_view suffix) {
  if (name.size() != kDigits + suffix.size() || name.substr(kDigits) != suffix) {
    return std::nullopt;
  }
  std::string_view digits = name.substr(0, kDigits);
  int64_t v;
  if (!std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(absl::string_view(digits.data(), digits.size()), &v)) {
    return std::nullopt;
  }
  return v;
}

Segment::Segment(int64_t base_offset, const LogConfig& config, std::string log_path,
                 std::shared_ptr<File> log, std::unique_ptr<OffsetIndex> offset_index,
                 std::unique_ptr<TimeIndex> time_index)
    : base_offset_(base_offset),
      config_(config),
      log_path_(std::move(log_path)),
      log_(std::move(log)),
      offset_index_(std::move(offset_index)),
      time_index_(std::move(time_index)),
      next_offset_(base_offset),
      created_ms_(WallClockMs()) {}

absl::StatusOr<std::unique_ptr<Segment>> Segment::Open(const std::filesystem::path& dir,
                                                       int64_t base_offset, const LogConfig& config,
                                                       bool create) {
  if (base_offset < 0) return absl::InvalidArgumentError("negative segment base offset");
  int flags = create ? O_RDWR | O_CREAT | O_TRUNC : O_RDWR;
  std::filesystem::path log_path = PathFor(dir, base_offset, ".log");
  absl::StatusOr<std::shared_ptr<File>> log = File::Open(log_path, flags);
  if (!log.ok()) return log.status();
  // Recover rebuilds the indexes, so both paths start from fresh preallocated files.
  absl::StatusOr<std::unique_ptr<OffsetIndex>> offset_index = OffsetIndex::Create(
      PathFor(dir, base_offset, ".index"), base_offset, config.segment_index_bytes);
  if (!offset_index.ok()) return offset_index.status();
  absl::StatusOr<std::unique_ptr<TimeIndex>> time_index = TimeIndex::Create(
      PathFor(dir, base_offset, ".timeindex"), base_offset, config.segment_index_bytes);
  if (!time_index.ok()) return time_index.status();
  return std::unique_ptr<Segment>(new Segment(base_offset, config, log_path.string(),
                                              *std::move(log), *std::move(offset_index),
                                              *std::move(time_index)));
}

absl::StatusOr<std::unique_ptr<Segment>> Segment::Create(const std::filesystem::path& dir,
                                                         int64_t base_offset,
                                                         const LogConfig& config) {
  return Open(dir, base_offset, config, /*create=*/true);
}

absl::StatusOr<std::unique_ptr<Segment>> Segment::Recover(const std::filesystem::path& dir,
                                                          int64_t base_offset,
                                                          const LogConfig& config,
                                                          uint64_t* truncated_bytes) {
  absl::StatusOr<std::unique_ptr<Segment>> segment =
      Open(dir, base_offset, config, /*create=*/false);
  if (!segment.ok()) return segment.status();
  if (absl::Status s = (*segment)->Rebuild(truncated_bytes); !s.ok()) return s;
  return segment;
}

absl::StatusOr<std::unique_ptr<Segment>> Segment::Load(const std::filesystem::path& dir,
                                                       int64_t base_offset, const LogConfig& config,
                                                       LoadInfo* info) {
  LoadInfo ignored;
  if (info == nullptr) info = &ignored;
  *info = LoadInfo{};
  if (base_offset < 0) return absl::InvalidArgumentError("negative segment base offset");
  std::string corrupt;
  {
    std::filesystem::path log_path = PathFor(dir, base_offset, ".log");
    absl::StatusOr<std::shared_ptr<File>> log = File::Open(log_path, O_RDWR);
    if (!log.ok()) return log.status();
    absl::StatusOr<std::unique_ptr<OffsetIndex>> offset_index = OffsetIndex::Open(
        PathFor(dir, base_offset, ".index"), base_offset, config.segment_index_bytes);
    absl::StatusOr<std::unique_ptr<TimeIndex>> time_index = TimeIndex::Open(
        PathFor(dir, base_offset, ".timeindex"), base_offset, config.segment_index_bytes);
    if (absl::IsNotFound(offset_index.status())) {
      corrupt = std::string(offset_index.status().message());
    } else if (!offset_index.ok()) {
      return offset_index.status();
    } else if (absl::IsNotFound(time_index.status())) {
      corrupt = std::string(time_index.status().message());
    } else if (!time_index.ok()) {
      return time_index.status();
    } else {
      std::unique_ptr<Segment> segment(new Segment(base_offset, config, log_path.string(),
                                                   *std::move(log), *std::move(offset_index),
                                                   *std::move(time_index)));
      if (absl::Status s = segment->LoadTail(&corrupt); !s.ok()) return s;
      if (corrupt.empty()) return segment;
    }
  }  // unmaps and closes everything the fast path opened
  absl::StatusOr<std::unique_ptr<Segment>> segment =
      Recover(dir, base_offset, config, &info->truncated_bytes);
  if (!segment.ok()) return segment.status();
  info->recovered = true;
  info->reason = std::move(corrupt);
  return segment;
}

absl::Status Segment::LoadTail(std::string* corrupt) {
  absl::StatusOr<uint64_t> file_size = log_->Size();
  if (!file_size.ok()) return file_size.status();
  if (*file_size > static_cast<uint64_t>(kMaxRelative)) {
    *corrupt = absl::StrCat(log_path_, " is larger than 2 GiB");
    return absl::OkStatus();
  }
  for (absl::Status check : {offset_index_->SanityCheck(*file_size), time_index_->SanityCheck()}) {
    if (!check.ok()) {
      *corrupt = std::string(check.message());
      return absl::OkStatus();
    }
  }

  // Kafka's LogSegment reads the next offset from the last offset index entry on; the
  // max timestamp so far is the time index's last entry (the roll/close entry).
  const bool indexed = offset_index_->size() > 0;
  const OffsetIndex::Entry last_indexed = offset_index_->last_entry();
  const TimeIndex::Entry last_time = time_index_->last_entry();
  max_timestamp_ = time_index_->size() > 0 ? last_time.timestamp : -1;
  offset_of_max_timestamp_ = time_index_->size() > 0 ? last_time.offset : -1;
  position_of_max_timestamp_ = kUnknownPosition;

  uint64_t pos = indexed ? last_indexed.position : 0;
  int64_t expected = base_offset_;
  std::string batch;
  auto invalid = [&](absl::string_view why) {
    *corrupt = absl::StrCat("invalid batch at byte ", pos, " of ", log_path_, ": ", why);
    return absl::OkStatus();
  };
  while (pos < *file_size) {
    if (*file_size - pos < kBatchHeaderSize) return invalid("short header");
    batch.resize(kBatchHeaderSize);
    if (absl::Status s = log_->ReadFullyAt(pos, batch.data(), batch.size()); !s.ok()) return s;
    absl::StatusOr<BatchHeader> h = protocol::ParseBatchHeader(batch);
    if (!h.ok()) return invalid(h.status().message());
    uint64_t total = h->total_size();
    if (total > *file_size - pos) return invalid("runs past the end of the file");
    if (h->last_offset_delta < 0 || h->base_offset < expected ||
        h->last_offset() - base_offset_ > kMaxRelative) {
      return invalid("offsets out of order");
    }
    if (indexed && pos == last_indexed.position && h->last_offset() != last_indexed.offset) {
      return invalid(absl::StrCat("last offset ", h->last_offset(), " is not the indexed ",
                                  last_indexed.offset));
    }
    batch.resize(total);
    if (absl::Status s = log_->ReadFullyAt(pos + kBatchHeaderSize, batch.data() + kBatchHeaderSize,
                                           total - kBatchHeaderSize);
        !s.ok()) {
      return s;
    }
    if (!CrcMatches(batch, *h)) return invalid("CRC mismatch");
    if (h->max_timestamp > max_timestamp_) {
      max_timestamp_ = h->max_timestamp;
      offset_of_max_timestamp_ = h->last_offset();
      position_of_max_timestamp_ = pos;
    }
    if (pos == 0) first_batch_timestamp_ = h->max_timestamp;
    expected = h->last_offset() + 1;
    pos += total;
  }
  if (indexed && expected == base_offset_) {
    return invalid("no batch at the last offset index entry");
  }
  if (time_index_->size() > 0 && last_time.offset >= expected) {
    *corrupt = absl::StrCat("time index offset ", last_time.offset, " is past the log's end ",
                            expected, " in ", time_index_->path().string());
    return absl::OkStatus();
  }
  size_ = pos;
  next_offset_ = expected;
  bytes_since_last_index_entry_ = pos - (indexed ? last_indexed.position : 0);
  return absl::OkStatus();
}

absl::Status Segment::Rebuild(uint64_t* truncated_bytes) {
  absl::StatusOr<uint64_t> file_size = log_->Size();
  if (!file_size.ok()) return file_size.status();

  uint64_t pos = 0;
  uint64_t last_indexed_position = 0;
  int64_t expected = base_offset_;
  std::string batch;
  absl::Status index_status;
  // Stops at the first byte that does not begin a valid batch; everything from there on
  // is a torn or corrupt tail.
  while (*file_size - pos >= kBatchHeaderSize) {
    batch.resize(kBatchHeaderSize);
    if (absl::Status s = log_->ReadFullyAt(pos, batch.data(), batch.size()); !s.ok()) return s;
    absl::StatusOr<BatchHeader> h = protocol::ParseBatchHeader(batch);
    if (!h.ok()) break;
    uint64_t total = h->total_size();
    if (total > *file_size - pos || pos + total > static_cast<uint64_t>(kMaxRelative)) break;
    if (h->last_offset_delta < 0 || h->base_offset < expected ||
        h->last_offset() - base_offset_ > kMaxRelative) {
      break;
    }
    batch.resize(total);
    if (absl::Status s = log_->ReadFullyAt(pos + kBatchHeaderSize, batch.data() + kBatchHeaderSize,
                                           total - kBatchHeaderSize);
        !s.ok()) {
      return s;
    }
    if (!CrcMatches(batch, *h)) break;

    if (pos == 0) first_batch_timestamp_ = h->max_timestamp;
    if (h->max_timestamp > max_timestamp_) {
      max_timestamp_ = h->max_timestamp;
      offset_of_max_timestamp_ = h->last_offset();
      position_of_max_timestamp_ = pos;
    }
    if (pos - last_indexed_position > static_cast<uint64_t>(config_.index_interval_bytes) &&
        !offset_index_->full()) {
      index_status.Update(offset_index_->Append(h->last_offset(), pos));
      index_status.Update(time_index_->MaybeAppend(max_timestamp_, offset_of_max_timestamp_));
      last_indexed_position = pos;
    }
    expected = h->last_offset() + 1;
    pos += total;
  }
  if (!index_status.ok()) return index_status;

  *truncated_bytes = *file_size - pos;
  if (*truncated_bytes > 0) {
    if (absl::Status s = log_->Truncate(pos); !s.ok()) return s;
  }
  size_ = pos;
  next_offset_ = expected;
  bytes_since_last_index_entry_ = pos - last_indexed_position;
  dirty_ = true;  // the truncation and the rebuilt indexes are not yet durable
  log_dirty_ = true;
  // As after a roll or close: the time index ends with the segment's max timestamp, and
  // both indexes are trimmed (Kafka's recover does the same).
  return OnBecomeInactive();
}

bool Segment::ShouldRoll(uint64_t bytes, int64_t last_offset) const {
  return (size_ > 0 && size_ + bytes > SegmentLimit(config_)) || offset_index_->full() ||
         time_index_->full() || last_offset - base_offset_ > kMaxRelative;
}

absl::Status Segment::Append(const char* data, size_t size,
                             const std::vector<BatchHeader>& batches) {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  uint64_t total = 0;
  for (const BatchHeader& h : batches) total += h.total_size();
  if (total != size || batches.empty() || batches.front().base_offset < next_offset_ ||
      batches.back().last_offset() - base_offset_ > kMaxRelative ||
      size_ + size > static_cast<uint64_t>(kMaxRelative)) {
    return absl::InvalidArgumentError(
        absl::StrCat("append of ", size, " bytes does not fit ", log_path_));
  }
  if (absl::Status s = log_->WriteAt(size_, data, size); !s.ok()) {
    (void)log_->Truncate(size_);  // drop a partial write so the tail stays whole batches
    return s;
  }
  dirty_ = true;
  log_dirty_ = true;
  indexes_final_ = false;
  if (size_ == 0) first_batch_timestamp_ = batches.front().max_timestamp;

  absl::Status index_status;
  uint64_t pos = size_;
  for (const BatchHeader& h : batches) {
    if (h.max_timestamp > max_timestamp_) {
      max_timestamp_ = h.max_timestamp;
      offset_of_max_timestamp_ = h.last_offset();
      position_of_max_timestamp_ = pos;
    }
    if (bytes_since_last_index_entry_ > static_cast<uint64_t>(config_.index_interval_bytes) &&
        !offset_index_->full()) {
      index_status.Update(offset_index_->Append(h.last_offset(), pos));
      index_status.Update(time_index_->MaybeAppend(max_timestamp_, offset_of_max_timestamp_));
      bytes_since_last_index_entry_ = 0;
    }
    bytes_since_last_index_entry_ += h.total_size();
    pos += h.total_size();
  }
  size_ += size;
  next_offset_ = batches.back().last_offset() + 1;
  return index_status;
}

absl::Status Segment::CheckOpen() const {
  if (log_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(log_path_, " is closed"));
  }
  return absl::OkStatus();
}

absl::StatusOr<BatchHeader> Segment::ReadHeader(uint64_t position) const {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  char buf[kBatchHeaderSize];
  if (absl::Status s = log_->ReadFullyAt(position, buf, sizeof(buf)); !s.ok()) return s;
  absl::StatusOr<BatchHeader> h = protocol::ParseBatchHeader(std::string_view(buf, sizeof(buf)));
  if (!h.ok() || h->total_size() > size_ - position) {
    return absl::DataLossError(absl::StrCat("bad batch header at ", position, " in ", log_path_));
  }
  return h;
}

absl::StatusOr<std::string> Segment::ReadBatch(uint64_t position, size_t size) const {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  std::string batch(size, '\0');
  if (absl::Status s = log_->ReadFullyAt(position, batch.data(), size); !s.ok()) return s;
  return batch;
}

absl::StatusOr<std::optional<Segment::BatchLocation>> Segment::FindBatch(int64_t offset) const {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  uint64_t pos = offset_index_->Lookup(offset).position;
  while (pos < size_) {
    absl::StatusOr<BatchHeader> h = ReadHeader(pos);
    if (!h.ok()) return h.status();
    if (h->last_offset() >= offset) return BatchLocation{pos, *h};
    pos += h->total_size();
  }
  return std::nullopt;
}

absl::Status Segment::ForEachBatchFrom(
    int64_t offset, const std::function<absl::Status(const BatchHeader&)>& fn) const {
  absl::StatusOr<std::optional<BatchLocation>> first = FindBatch(offset);
  if (!first.ok()) return first.status();
  if (!first->has_value()) return absl::OkStatus();
  for (uint64_t pos = (*first)->position; pos < size_;) {
    absl::StatusOr<BatchHeader> h = ReadHeader(pos);
    if (!h.ok()) return h.status();
    if (absl::Status s = fn(*h); !s.ok()) return s;
    pos += h->total_size();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<FileRange>> Segment::Read(int64_t offset, uint64_t max_bytes,
                                                       bool min_one_batch,
                                                       int64_t* next_offset) const {
  absl::StatusOr<std::optional<BatchLocation>> first = FindBatch(offset);
  if (!first.ok()) return first.status();
  if (!first->has_value()) return std::nullopt;

  const uint64_t start = (*first)->position;
  const uint64_t first_size = (*first)->header.total_size();
  FileRange range{log_->fd(), start, 0, log_};
  // The base offset of the batch at `pos` (a batch boundary), or next_offset_ at the end.
  auto base_at = [this](uint64_t pos) -> absl::StatusOr<int64_t> {
    if (pos >= size_) return next_offset_;
    char buf[8];
    if (absl::Status s = log_->ReadFullyAt(pos, buf, sizeof(buf)); !s.ok()) return s;
    return static_cast<int64_t>(protocol::GetBigEndian(buf, sizeof(buf)));
  };
  if (first_size > max_bytes) {
    int64_t next = (*first)->header.base_offset;
    if (min_one_batch) {
      range.length = first_size;
      if (next_offset != nullptr) {
        absl::StatusOr<int64_t> after = base_at(start + first_size);
        if (!after.ok()) return after.status();
        next = *after;
      }
    }
    if (next_offset != nullptr) *next_offset = next;
    return range;
  }
  uint64_t end;
  int64_t next = next_offset_;  // of the batch at `end`
  if (max_bytes >= size_ - start) {
    end = size_;
  } else {
    // Every index position is a batch boundary, so start from the last one that fits
    // and read only the few headers after it.
    const uint64_t limit = start + max_bytes;
    end = std::max(start + first_size, offset_index_->FloorPosition(limit));
    while (end < size_) {
      char buf[kBatchLogOverhead];
      if (absl::Status s = log_->ReadFullyAt(end, buf, sizeof(buf)); !s.ok()) return s;
      uint32_t length = 0;
      for (int i = 8; i < 12; ++i) length = (length << 8) | static_cast<uint8_t>(buf[i]);
      uint64_t total = kBatchLogOverhead + length;
      if (length > static_cast<uint32_t>(kMaxRelative) || total < kBatchHeaderSize ||
          total > size_ - end) {
        return absl::DataLossError(absl::StrCat("bad batch length at ", end, " in ", log_path_));
      }
      if (end + total > limit) {
        next = static_cast<int64_t>(protocol::GetBigEndian(buf, 8));
        break;
      }
      end += total;
    }
  }
  if (next_offset != nullptr) *next_offset = next;
  range.length = end - start;
  return range;
}

absl::StatusOr<std::optional<std::pair<int64_t, int64_t>>> Segment::FindOffsetByTimestamp(
    int64_t ts, int64_t start_offset) const {
  const TimeIndex::Entry floor = time_index_->Lookup(ts);
  uint64_t pos = offset_index_->Lookup(std::max(floor.offset, start_offset)).position;
  std::string scratch;
  while (pos < size_) {
    absl::StatusOr<BatchHeader> h = ReadHeader(pos);
    if (!h.ok()) return h.status();
    if (h->max_timestamp >= ts && h->last_offset() >= start_offset) {
      absl::StatusOr<std::string> batch = ReadBatch(pos, h->total_size());
      if (!batch.ok()) return batch.status();
      absl::StatusOr<std::vector<protocol::Record>> records =
          protocol::ReadRecords(*batch, &scratch);
      if (!records.ok()) return records.status();
      for (const protocol::Record& r : *records) {
        int64_t record_ts = h->log_append_time() ? h->max_timestamp : r.timestamp;
        if (record_ts >= ts && r.offset >= start_offset) {
          return std::make_pair(r.offset, record_ts);
        }
      }
    }
    pos += h->total_size();
  }
  return std::nullopt;
}

absl::StatusOr<int64_t> Segment::OffsetOfMaxTimestampRecord() const {
  if (max_timestamp_ < 0) return offset_of_max_timestamp_;
  uint64_t position = position_of_max_timestamp_;
  if (position == kUnknownPosition) {  // loaded: the time index gave only the offset
    absl::StatusOr<std::optional<BatchLocation>> found = FindBatch(offset_of_max_timestamp_);
    if (!found.ok()) return found.status();
    if (!found->has_value()) return offset_of_max_timestamp_;
    position = (*found)->position;
  }
  absl::StatusOr<BatchHeader> h = ReadHeader(position);
  if (!h.ok()) return h.status();
  if (h->log_append_time()) return h->base_offset;
  absl::StatusOr<std::string> batch = ReadBatch(position, h->total_size());
  if (!batch.ok()) return batch.status();
  std::string scratch;
  absl::StatusOr<std::vector<protocol::Record>> records = protocol::ReadRecords(*batch, &scratch);
  if (!records.ok()) return records.status();
  for (const protocol::Record& r : *records) {
    if (r.timestamp == max_timestamp_) return r.offset;
  }
  return offset_of_max_timestamp_;
}

void Segment::SetConfig(const LogConfig& config) {
  config_ = config;
  offset_index_->set_max_index_bytes(config.segment_index_bytes);
  time_index_->set_max_index_bytes(config.segment_index_bytes);
}

absl::Status Segment::OnBecomeInactive() {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  size_t before = time_index_->size();
  absl::Status status =
      time_index_->MaybeAppend(max_timestamp_, offset_of_max_timestamp_, /*skip_full_check=*/true);
  if (time_index_->size() != before) dirty_ = true;
  // A trim alone is not made durable: an index found longer than its entries (after a
  // crash) fails Load's checks and is rebuilt. Closing idle segments thus costs no fsync.
  status.Update(offset_index_->Trim());
  status.Update(time_index_->Trim());
  indexes_final_ = status.ok();
  return status;
}

absl::Status Segment::Flush() {
  if (!dirty_) return absl::OkStatus();
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  if (log_dirty_) {
    if (absl::Status s = log_->Sync(); !s.ok()) return s;
    log_dirty_ = false;
  }
  if (!indexes_final_) return absl::OkStatus();
  if (absl::Status s = offset_index_->Sync(); !s.ok()) return s;
  if (absl::Status s = time_index_->Sync(); !s.ok()) return s;
  dirty_ = false;
  return absl::OkStatus();
}

absl::Status Segment::Close() {
  if (log_ == nullptr) return absl::OkStatus();
  absl::Status status = OnBecomeInactive();
  status.Update(Flush());
  offset_index_->Close();
  time_index_->Close();
  log_.reset();  // FileRanges handed out keep the File (and its descriptor) alive
  return status;
}

int64_t Segment::rolling_timestamp() const {
  if (!first_batch_timestamp_.has_value() && size_ > 0 && log_ != nullptr) {
    char buf[kBatchHeaderSize];
    if (log_->ReadFullyAt(0, buf, sizeof(buf)).ok()) {
      absl::StatusOr<BatchHeader> h =
          protocol::ParseBatchHeader(std::string_view(buf, sizeof(buf)));
      if (h.ok()) first_batch_timestamp_ = h->max_timestamp;
    }
  }
  if (first_batch_timestamp_.has_value() && *first_batch_timestamp_ >= 0) {
    return *first_batch_timestamp_;
  }
  return created_ms_;
}

int64_t Segment::largest_timestamp() const {
  if (max_timestamp_ >= 0) return max_timestamp_;
  if (log_ != nullptr) {
    struct stat st;
    if (::fstat(log_->fd(), &st) != 0) return 0;
    return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
  }
  absl::StatusOr<FileInfo> info = Stat(log_path_);
  return info.ok() ? info->mtime_ms : 0;
}

absl::Status Segment::Delete() {
  absl::Status status;
  for (const std::filesystem::path& p : {log_path(), offset_index_->path(), time_index_->path()}) {
    if (absl::Status s = RemoveFile(p); !absl::IsNotFound(s)) status.Update(s);
  }
  return status;
}

}  // namespace runnel::storage
