#include "storage/segment.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

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

Segment::Segment(int64_t base_offset, const LogConfig& config, std::shared_ptr<File> log,
                 std::unique_ptr<OffsetIndex> offset_index, std::unique_ptr<TimeIndex> time_index)
    : base_offset_(base_offset),
      config_(config),
      log_(std::move(log)),
      offset_index_(std::move(offset_index)),
      time_index_(std::move(time_index)),
      next_offset_(base_offset) {}

absl::StatusOr<std::unique_ptr<Segment>> Segment::Open(const std::filesystem::path& dir,
                                                       int64_t base_offset, const LogConfig& config,
                                                       bool create) {
  if (base_offset < 0) return absl::InvalidArgumentError("negative segment base offset");
  int flags = create ? O_RDWR | O_CREAT | O_TRUNC : O_RDWR;
  absl::StatusOr<std::shared_ptr<File>> log = File::Open(PathFor(dir, base_offset, ".log"), flags);
  if (!log.ok()) return log.status();
  absl::StatusOr<std::unique_ptr<OffsetIndex>> offset_index = OffsetIndex::Create(
      PathFor(dir, base_offset, ".index"), base_offset, config.segment_index_bytes);
  if (!offset_index.ok()) return offset_index.status();
  absl::StatusOr<std::unique_ptr<TimeIndex>> time_index = TimeIndex::Create(
      PathFor(dir, base_offset, ".timeindex"), base_offset, config.segment_index_bytes);
  if (!time_index.ok()) return time_index.status();
  return std::unique_ptr<Segment>(new Segment(base_offset, config, *std::move(log),
                                              *std::move(offset_index), *std::move(time_index)));
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

absl::Status Segment::Rebuild(uint64_t* truncated_bytes) {
  absl::StatusOr<uint64_t> file_size = log_->Size();
  if (!file_size.ok()) return file_size.status();

  std::vector<OffsetIndex::Entry> offsets;
  std::vector<TimeIndex::Entry> times;
  uint64_t pos = 0;
  uint64_t last_indexed_position = 0;
  int64_t expected = base_offset_;
  std::string batch;
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
    if (protocol::Crc32c(batch.data() + protocol::kAttributesOffset,
                         total - protocol::kAttributesOffset) != h->crc) {
      break;
    }

    if (h->max_timestamp > max_timestamp_) {
      max_timestamp_ = h->max_timestamp;
      offset_of_max_timestamp_ = h->last_offset();
      position_of_max_timestamp_ = pos;
    }
    if (pos - last_indexed_position > static_cast<uint64_t>(config_.index_interval_bytes) &&
        offsets.size() < offset_index_->max_entries()) {
      offsets.push_back({h->last_offset(), pos});
      int64_t last_ts = times.empty() ? -1 : times.back().timestamp;
      if (max_timestamp_ > last_ts && times.size() + 1 < time_index_->max_entries()) {
        times.push_back({max_timestamp_, offset_of_max_timestamp_});
      }
      last_indexed_position = pos;
    }
    expected = h->last_offset() + 1;
    pos += total;
  }

  *truncated_bytes = *file_size - pos;
  if (*truncated_bytes > 0) {
    if (absl::Status s = log_->Truncate(pos); !s.ok()) return s;
  }
  // As after a roll or close, the time index ends with the segment's max timestamp.
  if (max_timestamp_ > (times.empty() ? -1 : times.back().timestamp)) {
    times.push_back({max_timestamp_, offset_of_max_timestamp_});
  }
  if (absl::Status s = offset_index_->Reset(offsets); !s.ok()) return s;
  if (absl::Status s = time_index_->Reset(times); !s.ok()) return s;
  size_ = pos;
  next_offset_ = expected;
  bytes_since_last_index_entry_ = pos - last_indexed_position;
  dirty_ = true;  // the truncation and the rewritten indexes are not yet durable
  return absl::OkStatus();
}

bool Segment::ShouldRoll(uint64_t bytes, int64_t last_offset) const {
  return (size_ > 0 && size_ + bytes > SegmentLimit(config_)) || offset_index_->full() ||
         time_index_->full() || last_offset - base_offset_ > kMaxRelative;
}

absl::Status Segment::Append(const char* data, size_t size,
                             const std::vector<BatchHeader>& batches) {
  uint64_t total = 0;
  for (const BatchHeader& h : batches) total += h.total_size();
  if (total != size || batches.empty() || batches.front().base_offset < next_offset_ ||
      batches.back().last_offset() - base_offset_ > kMaxRelative ||
      size_ + size > static_cast<uint64_t>(kMaxRelative)) {
    return absl::InvalidArgumentError(
        absl::StrCat("append of ", size, " bytes does not fit ", log_path().string()));
  }
  if (absl::Status s = log_->WriteAt(size_, data, size); !s.ok()) {
    (void)log_->Truncate(size_);  // drop a partial write so the tail stays whole batches
    return s;
  }
  dirty_ = true;

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

absl::StatusOr<BatchHeader> Segment::ReadHeader(uint64_t position) const {
  char buf[kBatchHeaderSize];
  if (absl::Status s = log_->ReadFullyAt(position, buf, sizeof(buf)); !s.ok()) return s;
  absl::StatusOr<BatchHeader> h = protocol::ParseBatchHeader(std::string_view(buf, sizeof(buf)));
  if (!h.ok() || h->total_size() > size_ - position) {
    return absl::DataLossError(
        absl::StrCat("bad batch header at ", position, " in ", log_path().string()));
  }
  return h;
}

absl::StatusOr<std::string> Segment::ReadBatch(uint64_t position, size_t size) const {
  std::string batch(size, '\0');
  if (absl::Status s = log_->ReadFullyAt(position, batch.data(), size); !s.ok()) return s;
  return batch;
}

absl::StatusOr<std::optional<Segment::BatchLocation>> Segment::FindBatch(int64_t offset) const {
  uint64_t pos = offset_index_->Lookup(offset).position;
  while (pos < size_) {
    absl::StatusOr<BatchHeader> h = ReadHeader(pos);
    if (!h.ok()) return h.status();
    if (h->last_offset() >= offset) return BatchLocation{pos, *h};
    pos += h->total_size();
  }
  return std::nullopt;
}

absl::StatusOr<std::optional<FileRange>> Segment::Read(int64_t offset, uint64_t max_bytes,
                                                       bool min_one_batch) const {
  absl::StatusOr<std::optional<BatchLocation>> first = FindBatch(offset);
  if (!first.ok()) return first.status();
  if (!first->has_value()) return std::nullopt;

  const uint64_t start = (*first)->position;
  const uint64_t first_size = (*first)->header.total_size();
  FileRange range{log_->fd(), start, 0, log_};
  if (first_size > max_bytes) {
    if (min_one_batch) range.length = first_size;
    return range;
  }
  uint64_t end;
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
        return absl::DataLossError(
            absl::StrCat("bad batch length at ", end, " in ", log_path().string()));
      }
      if (end + total > limit) break;
      end += total;
    }
  }
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
  absl::StatusOr<BatchHeader> h = ReadHeader(position_of_max_timestamp_);
  if (!h.ok()) return h.status();
  if (h->log_append_time()) return h->base_offset;
  absl::StatusOr<std::string> batch = ReadBatch(position_of_max_timestamp_, h->total_size());
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
  size_t before = time_index_->size();
  absl::Status s =
      time_index_->MaybeAppend(max_timestamp_, offset_of_max_timestamp_, /*skip_full_check=*/true);
  if (time_index_->size() != before) dirty_ = true;
  return s;
}

absl::Status Segment::Flush() {
  if (!dirty_) return absl::OkStatus();
  if (absl::Status s = log_->Sync(); !s.ok()) return s;
  if (absl::Status s = offset_index_->Sync(); !s.ok()) return s;
  if (absl::Status s = time_index_->Sync(); !s.ok()) return s;
  dirty_ = false;
  return absl::OkStatus();
}

absl::Status Segment::Delete() {
  absl::Status status;
  for (const std::filesystem::path* p :
       {&log_->path(), &offset_index_->path(), &time_index_->path()}) {
    if (::unlink(p->c_str()) != 0 && errno != ENOENT)
      status.Update(ErrnoError("unlink", *p, errno));
  }
  return status;
}

}  // namespace runnel::storage
