#include "storage/partition_log.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <set>
#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "protocol/record_batch.h"

namespace runnel::storage {
namespace {

using protocol::BatchHeader;

constexpr const char* kSegmentSuffixes[] = {".log", ".index", ".timeindex"};

absl::Status RemoveSegmentFiles(const std::filesystem::path& dir, int64_t base_offset) {
  absl::Status status;
  for (const char* suffix : kSegmentSuffixes) {
    std::filesystem::path p = dir / Segment::FileName(base_offset, suffix);
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) status.Update(ErrnoError("unlink", p, errno));
  }
  return status;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PartitionLog>> PartitionLog::Open(std::filesystem::path dir,
                                                                 LogConfig config) {
  std::unique_ptr<PartitionLog> log(new PartitionLog(std::move(dir), config));
  if (absl::Status s = log->Load(); !s.ok()) return s;
  return log;
}

PartitionLog::~PartitionLog() = default;

absl::Status PartitionLog::Load() {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return ErrnoError("mkdir", dir_, ec.value());

  std::set<int64_t> logs;
  std::set<int64_t> indexes;
  absl::StatusOr<std::vector<std::filesystem::path>> entries = ListDir(dir_);
  if (!entries.ok()) return entries.status();
  for (const std::filesystem::path& entry : *entries) {
    std::string name = entry.filename().string();
    if (std::optional<int64_t> base = Segment::ParseFileName(name, ".log")) {
      logs.insert(*base);
    } else if (std::optional<int64_t> base = Segment::ParseFileName(name, ".index")) {
      indexes.insert(*base);
    } else if (std::optional<int64_t> base = Segment::ParseFileName(name, ".timeindex")) {
      indexes.insert(*base);
    }
  }
  for (int64_t base : indexes) {
    if (!logs.contains(base)) {
      if (absl::Status s = RemoveSegmentFiles(dir_, base); !s.ok()) return s;
    }
  }

  for (auto it = logs.begin(); it != logs.end(); ++it) {
    uint64_t truncated = 0;
    bool drop_rest = !segments_.empty() && *it < segments_.back()->next_offset();
    if (!drop_rest) {
      absl::StatusOr<std::unique_ptr<Segment>> segment =
          Segment::Recover(dir_, *it, config_, &truncated);
      if (!segment.ok()) return segment.status();
      segments_.push_back(*std::move(segment));
      drop_rest = truncated > 0;
      if (drop_rest) ++it;
    }
    if (drop_rest) {
      // The offsets of later segments would not follow on from the cut: drop them.
      for (; it != logs.end(); ++it) {
        if (absl::Status s = RemoveSegmentFiles(dir_, *it); !s.ok()) return s;
      }
      dir_dirty_ = true;
      break;
    }
  }
  if (segments_.empty()) {
    absl::StatusOr<std::unique_ptr<Segment>> segment = Segment::Create(dir_, 0, config_);
    if (!segment.ok()) return segment.status();
    segments_.push_back(*std::move(segment));
    dir_dirty_ = true;
  }
  log_start_offset_ = segments_.front()->base_offset();
  return absl::OkStatus();
}

absl::Status PartitionLog::CheckOpen() const {
  if (closed_) return absl::FailedPreconditionError(absl::StrCat(dir_.string(), " is closed"));
  return absl::OkStatus();
}

int64_t PartitionLog::log_end_offset() const {
  return closed_ ? closed_end_offset_ : segments_.back()->next_offset();
}

uint64_t PartitionLog::size_bytes() const {
  uint64_t total = 0;
  for (const auto& segment : segments_) total += segment->size();
  return total;
}

absl::Status PartitionLog::Roll() {
  // Rolling an empty segment would recreate the same files.
  if (active().empty()) return absl::OkStatus();
  if (absl::Status s = active().OnBecomeInactive(); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<Segment>> segment =
      Segment::Create(dir_, log_end_offset(), config_);
  if (!segment.ok()) return segment.status();
  segments_.push_back(*std::move(segment));
  dir_dirty_ = true;
  return absl::OkStatus();
}

absl::StatusOr<AppendInfo> PartitionLog::Append(char* batches, size_t size) {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  std::vector<BatchHeader> headers;
  uint64_t offsets = 0;
  for (size_t pos = 0; pos < size;) {
    absl::StatusOr<BatchHeader> h =
        protocol::ParseBatchHeader(std::string_view(batches + pos, size - pos));
    if (!h.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("batch at byte ", pos, " of the append: ", h.status().message()));
    }
    if (h->total_size() > size - pos || h->last_offset_delta < 0) {
      return absl::InvalidArgumentError(absl::StrCat("malformed batch at byte ", pos));
    }
    offsets += static_cast<uint64_t>(h->last_offset_delta) + 1;
    pos += h->total_size();
    headers.push_back(*h);
  }
  if (headers.empty()) return absl::InvalidArgumentError("empty append");
  if (size > SegmentLimit(config_)) {
    return absl::ResourceExhaustedError(
        absl::StrCat("append of ", size, " bytes exceeds segment.bytes ", config_.segment_bytes));
  }
  if (offsets > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError("append spans more than 2^31 offsets");
  }

  const int64_t first = log_end_offset();
  const int64_t last = first + static_cast<int64_t>(offsets) - 1;
  if (active().ShouldRoll(size, last)) {
    if (absl::Status s = Roll(); !s.ok()) return s;
  }
  int64_t next = first;
  size_t pos = 0;
  for (BatchHeader& h : headers) {
    protocol::SetBaseOffset(batches + pos, next);
    h.base_offset = next;
    next = h.last_offset() + 1;
    pos += h.total_size();
  }
  const int64_t max_before = active().max_timestamp();
  absl::Status s = active().Append(batches, size, headers);
  if (active().max_timestamp() != max_before) max_timestamp_cache_.reset();
  if (!s.ok()) return s;
  return AppendInfo{first, last};
}

absl::StatusOr<ReadInfo> PartitionLog::Read(int64_t offset, uint64_t max_bytes,
                                            bool min_one_batch) {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  const int64_t end = log_end_offset();
  if (offset < log_start_offset_ || offset > end) {
    return absl::OutOfRangeError(absl::StrCat("offset ", offset, " is outside [", log_start_offset_,
                                              ", ", end, "] of ", dir_.string()));
  }
  ReadInfo info;
  if (offset == end) return info;
  auto it = std::upper_bound(
      segments_.begin(), segments_.end(), offset,
      [](int64_t o, const std::unique_ptr<Segment>& s) { return o < s->base_offset(); });
  // A segment may end before `offset` (its last offsets were compacted away, later);
  // the data then starts in a following one.
  for (--it; it != segments_.end(); ++it) {
    absl::StatusOr<std::optional<FileRange>> range = (*it)->Read(offset, max_bytes, min_one_batch);
    if (!range.ok()) return range.status();
    if (!range->has_value()) continue;
    if ((*range)->length > 0) {
      info.bytes = (*range)->length;
      info.ranges.push_back(**std::move(range));
    }
    break;
  }
  return info;
}

absl::StatusOr<std::optional<std::pair<int64_t, int64_t>>> PartitionLog::OffsetForTimestamp(
    int64_t ts) {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  for (const auto& segment : segments_) {
    if (segment->max_timestamp() < ts) continue;
    absl::StatusOr<std::optional<std::pair<int64_t, int64_t>>> found =
        segment->FindOffsetByTimestamp(ts, log_start_offset_);
    if (!found.ok() || found->has_value()) return found;
  }
  return std::nullopt;
}

std::pair<int64_t, int64_t> PartitionLog::MaxTimestampAndOffset() const {
  if (max_timestamp_cache_) return *max_timestamp_cache_;
  const Segment* best = nullptr;
  for (const auto& segment : segments_) {
    // Strictly greater: the first segment reaching the maximum wins, as in Kafka.
    if (segment->max_timestamp() > (best ? best->max_timestamp() : -1)) best = segment.get();
  }
  if (best == nullptr) return {-1, -1};
  absl::StatusOr<int64_t> offset = best->OffsetOfMaxTimestampRecord();
  if (!offset.ok()) return {best->max_timestamp(), best->offset_of_max_timestamp()};
  max_timestamp_cache_ = std::make_pair(best->max_timestamp(), *offset);
  return *max_timestamp_cache_;
}

void PartitionLog::SetConfig(LogConfig config) {
  config_ = config;
  for (auto& segment : segments_) segment->SetConfig(config);
}

absl::Status PartitionLog::Flush() {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  for (auto& segment : segments_) {
    if (absl::Status s = segment->Flush(); !s.ok()) return s;
  }
  if (dir_dirty_) {
    if (absl::Status s = SyncDir(dir_); !s.ok()) return s;
    dir_dirty_ = false;
  }
  return absl::OkStatus();
}

absl::Status PartitionLog::Close() {
  if (closed_) return absl::OkStatus();
  absl::Status status = active().OnBecomeInactive();
  status.Update(Flush());
  closed_end_offset_ = log_end_offset();
  closed_ = true;
  segments_.clear();
  max_timestamp_cache_.reset();
  return status;
}

}  // namespace runnel::storage
