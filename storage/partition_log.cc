#include "storage/partition_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <limits>
#include <set>
#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "protocol/record_batch.h"

namespace runnel::storage {
namespace {

using protocol::BatchHeader;

constexpr const char* kSegmentSuffixes[] = {".log", ".index", ".timeindex", ".txnindex"};
// The cleaned segment's transaction index, renamed to ".txnindex" with its ".log.swap".
constexpr std::string_view kTxnIndexSwapSuffix = ".txnindex.swap";

absl::Status RemoveSegmentFiles(const std::filesystem::path& dir, int64_t base_offset) {
  absl::Status status;
  for (const char* suffix : kSegmentSuffixes) {
    std::filesystem::path p = dir / Segment::FileName(base_offset, suffix);
    if (absl::Status s = RemoveFile(p); !absl::IsNotFound(s)) status.Update(s);
  }
  return status;
}

// The offset after the last batch of a .log file (`base` if it has none).
absl::StatusOr<int64_t> NextOffsetOfLogFile(const std::filesystem::path& path, int64_t base) {
  absl::StatusOr<std::shared_ptr<File>> file = File::Open(path, O_RDONLY);
  if (!file.ok()) return file.status();
  absl::StatusOr<uint64_t> size = (*file)->Size();
  if (!size.ok()) return size.status();
  int64_t next = base;
  char buf[protocol::kBatchHeaderSize];
  for (uint64_t pos = 0; pos + sizeof(buf) <= *size;) {
    if (absl::Status s = (*file)->ReadFullyAt(pos, buf, sizeof(buf)); !s.ok()) return s;
    absl::StatusOr<BatchHeader> h = protocol::ParseBatchHeader(std::string_view(buf, sizeof(buf)));
    if (!h.ok()) break;
    next = h->last_offset() + 1;
    pos += h->total_size();
  }
  return next;
}

int64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

absl::StatusOr<std::unique_ptr<PartitionLog>> PartitionLog::Open(std::filesystem::path dir,
                                                                 LogConfig config,
                                                                 LogCheckpoint checkpoint) {
  std::unique_ptr<PartitionLog> log(new PartitionLog(std::move(dir), config));
  if (absl::Status s = log->Load(checkpoint); !s.ok()) return s;
  return log;
}

PartitionLog::~PartitionLog() = default;

absl::Status PartitionLog::Load(const LogCheckpoint& checkpoint) {
  if (absl::Status s = CreateDirectories(dir_); !s.ok()) return s;
  if (absl::Status s = FinishInterruptedCleaning(); !s.ok()) return s;

  std::set<int64_t> logs;
  std::set<int64_t> indexes;
  std::set<int64_t> txn_indexes;
  std::set<int64_t> snapshots;
  absl::StatusOr<std::vector<std::string>> names = ListDir(dir_);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    if (std::optional<int64_t> base = Segment::ParseFileName(name, ".log")) {
      logs.insert(*base);
    } else if (std::optional<int64_t> base = Segment::ParseFileName(name, ".index")) {
      indexes.insert(*base);
    } else if (std::optional<int64_t> base = Segment::ParseFileName(name, ".timeindex")) {
      indexes.insert(*base);
    } else if (std::optional<int64_t> base = Segment::ParseFileName(name, kTxnIndexSuffix)) {
      indexes.insert(*base);
      txn_indexes.insert(*base);
    } else if (std::optional<int64_t> offset =
                   Segment::ParseFileName(name, kProducerSnapshotSuffix)) {
      snapshots.insert(*offset);
    }
  }
  producer_state_.set_snapshot_files(std::move(snapshots));
  for (int64_t base : indexes) {
    if (!logs.contains(base)) {
      if (absl::Status s = RemoveSegmentFiles(dir_, base); !s.ok()) return s;
    }
  }

  bool recovered = false;
  for (auto it = logs.begin(); it != logs.end(); ++it) {
    uint64_t truncated = 0;
    bool drop_rest = !segments_.empty() && *it < segments_.back()->next_offset();
    if (!drop_rest) {
      // Kafka recovers from the segment holding the recovery point on; a segment whose
      // successor starts at or below it was fsynced whole.
      auto next = std::next(it);
      bool durable =
          checkpoint.clean_shutdown || (next != logs.end() && *next <= checkpoint.recovery_point);
      absl::StatusOr<std::unique_ptr<Segment>> segment;
      if (durable) {
        Segment::LoadInfo info;
        segment = Segment::Load(dir_, *it, config_, &info);
        truncated = info.truncated_bytes;
        recovered |= info.recovered;
      } else {
        segment = Segment::Recover(dir_, *it, config_, &truncated);
        recovered = true;
      }
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
    // Nothing to make durable yet: a crash before the first flush loses an empty log,
    // which the next Open recreates. The first flush with data syncs the directory and
    // its entry in the parent, so creating partitions costs no fsyncs.
    created_unsynced_ = true;
  }
  // The checkpointed start survives only if the log still reaches it.
  log_start_offset_ =
      std::clamp(checkpoint.log_start_offset, segments_.front()->base_offset(), log_end_offset());
  // The transaction indexes of the segments kept, without entries past their segment's end
  // (a marker lost with a torn tail); the replay below adds those missing.
  for (const auto& segment : segments_) {
    if (!txn_indexes.contains(segment->base_offset())) continue;
    absl::StatusOr<std::unique_ptr<TransactionIndex>> index = TransactionIndex::Open(
        dir_ / Segment::FileName(segment->base_offset(), kTxnIndexSuffix), segment->base_offset());
    if (!index.ok()) return index.status();
    if (absl::Status s = (*index)->TruncateTo(segment->next_offset()); !s.ok()) return s;
    txn_indexes_.emplace(segment->base_offset(), *std::move(index));
  }
  if (absl::Status s = LoadProducerState(checkpoint.clean_shutdown); !s.ok()) return s;
  // What recovery kept is made durable at once, so the recovery point is the log end.
  if (recovered || dir_dirty_) {
    if (absl::Status s = Flush(); !s.ok()) return s;
  }
  recovery_point_ = log_end_offset();
  last_flush_ms_ = WallClockMs();
  active_created_ms_ = WallClockMs();
  if (!active().empty()) {
    absl::StatusOr<std::optional<Segment::BatchLocation>> first =
        active().FindBatch(active().base_offset());
    if (!first.ok()) return first.status();
    active_first_timestamp_ = first->has_value() ? (*first)->header.max_timestamp : -1;
  }
  return absl::OkStatus();
}

absl::Status PartitionLog::LoadProducerState(bool clean_shutdown) {
  ProducerStateManager& state = producer_state_;
  const int64_t end = log_end_offset();
  if (state.snapshot_offsets().empty() && clean_shutdown) {
    // Kafka's rebuildProducerState for a clean stop without snapshots: no producer state,
    // and empty snapshots so that a later recovery need not scan the whole log.
    std::vector<int64_t> offsets;
    if (segments_.size() >= 2) offsets.push_back(segments_[segments_.size() - 2]->base_offset());
    offsets.push_back(active().base_offset());
    offsets.push_back(end);
    for (int64_t offset : offsets) {
      state.set_map_end_offset(offset);
      if (absl::Status s = state.TakeSnapshot(/*sync=*/false); !s.ok()) return s;
    }
    if (!state.snapshot_offsets().empty()) dir_dirty_ = true;
    return absl::OkStatus();
  }
  if (absl::Status s = state.TruncateAndReload(log_start_offset_, end, WallClockMs()); !s.ok()) {
    return s;
  }
  if (end <= state.map_end_offset()) return absl::OkStatus();
  // Replays the batches after the snapshot, from the segment holding its offset on. An
  // ABORT marker that completes a transaction and is past the last indexed one was not
  // indexed before the stop: its entry goes to its segment's index now.
  const int64_t from = std::max(state.map_end_offset(), log_start_offset_);
  int64_t last_indexed = LastIndexedAbortOffset();
  for (const auto& segment : segments_) {
    if (segment->next_offset() <= from) continue;
    const int64_t start = std::max(from, segment->base_offset());
    absl::StatusOr<std::optional<Segment::BatchLocation>> first = segment->FindBatch(start);
    if (!first.ok()) return first.status();
    if (!first->has_value()) continue;
    uint64_t position = (*first)->position;  // of the batch the callback gets
    std::shared_ptr<File> file;              // the .log, opened for the first marker
    std::string bytes;
    absl::Status s = segment->ForEachBatchFrom(start, [&](const BatchHeader& h) -> absl::Status {
      const uint64_t at = position;
      position += h.total_size();
      std::optional<protocol::EndTxnMarker> marker;
      if (h.is_control() && h.producer_id > kNoProducerId) {
        if (file == nullptr) {
          absl::StatusOr<std::shared_ptr<File>> opened = File::Open(segment->log_path(), O_RDONLY);
          if (!opened.ok()) return opened.status();
          file = *std::move(opened);
        }
        bytes.resize(h.total_size());
        if (absl::Status r = file->ReadFullyAt(at, bytes.data(), bytes.size()); !r.ok()) return r;
        marker = protocol::ParseEndTxnMarker(bytes);
      }
      std::optional<TxnCompletion> done = state.ReplayBatch(h, marker ? &*marker : nullptr);
      if (done && done->txn.is_aborted && done->txn.last_offset > last_indexed) {
        last_indexed = done->txn.last_offset;
        return AppendAbortedTxn(segment->base_offset(),
                                {done->txn.producer_id, done->txn.first_offset,
                                 done->txn.last_offset, done->last_stable_offset});
      }
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
  }
  state.set_map_end_offset(end);
  if (absl::Status s = state.TakeSnapshot(/*sync=*/false); !s.ok()) return s;
  dir_dirty_ = true;  // the Flush that ends recovery makes the snapshot durable
  return absl::OkStatus();
}

// A ".cleaned" file is an unfinished clean, a ".tmp" file an unfinished atomic write
// (partition.metadata): drop them. A ".log.swap" was complete when renamed: it replaces
// the segments whose offsets it covers.
absl::Status PartitionLog::FinishInterruptedCleaning() {
  absl::StatusOr<std::vector<std::string>> names = ListDir(dir_);
  if (!names.ok()) return names.status();
  std::set<int64_t> logs;
  std::set<int64_t> txn_index_swaps;
  std::vector<std::pair<int64_t, std::filesystem::path>> swaps;
  for (const std::string& name : *names) {
    std::filesystem::path entry = dir_ / name;
    if (name.ends_with(".cleaned") || name.ends_with(".tmp")) {
      if (absl::Status s = RemoveFile(entry); !s.ok()) return s;
      dir_dirty_ = true;
    } else if (std::optional<int64_t> base = Segment::ParseFileName(name, ".log.swap")) {
      swaps.emplace_back(*base, entry);
    } else if (std::optional<int64_t> base = Segment::ParseFileName(name, kTxnIndexSwapSuffix)) {
      txn_index_swaps.insert(*base);
    } else if (std::optional<int64_t> base = Segment::ParseFileName(name, ".log")) {
      logs.insert(*base);
    }
  }
  for (const auto& [base, swap] : swaps) {
    absl::StatusOr<int64_t> next = NextOffsetOfLogFile(swap, base);
    if (!next.ok()) return next.status();
    for (auto it = logs.lower_bound(base); it != logs.end() && *it < std::max(*next, base + 1);) {
      if (absl::Status s = RemoveSegmentFiles(dir_, *it); !s.ok()) return s;
      it = logs.erase(it);
    }
    // The index swap, when still there, is the cleaned segment's index (an empty one: no
    // index); without it, what "<base>.txnindex" is left is the cleaned segment's. Renamed
    // before the .log.swap, as ReplaceSegments does.
    if (txn_index_swaps.erase(base) > 0) {
      const std::filesystem::path txn_swap = dir_ / Segment::FileName(base, kTxnIndexSwapSuffix);
      const std::filesystem::path txn_index = dir_ / Segment::FileName(base, kTxnIndexSuffix);
      absl::StatusOr<FileInfo> info = Stat(txn_swap);
      if (!info.ok()) return info.status();
      if (info->size == 0) {
        if (absl::Status s = RemoveFile(txn_index); !s.ok() && !absl::IsNotFound(s)) return s;
        if (absl::Status s = RemoveFile(txn_swap); !s.ok()) return s;
      } else if (absl::Status s = RenameFile(txn_swap, txn_index); !s.ok()) {
        return s;
      }
    }
    std::filesystem::path log = dir_ / Segment::FileName(base, ".log");
    if (absl::Status s = RenameFile(swap, log); !s.ok()) return s;
    dir_dirty_ = true;
  }
  // Written before a swap that never started: the old segments keep their own indexes.
  for (int64_t base : txn_index_swaps) {
    if (absl::Status s = RemoveFile(dir_ / Segment::FileName(base, kTxnIndexSwapSuffix)); !s.ok()) {
      return s;
    }
    dir_dirty_ = true;
  }
  return absl::OkStatus();
}

std::vector<CompactionSource> PartitionLog::InactiveSegments() const {
  std::vector<CompactionSource> out;
  for (size_t i = 0; i + 1 < segments_.size(); ++i) {
    const Segment& s = *segments_[i];
    out.push_back({s.base_offset(), s.next_offset(), s.log_path(), s.largest_timestamp()});
  }
  return out;
}

absl::Status PartitionLog::ReplaceSegments(int64_t first_base, size_t count,
                                           const std::filesystem::path& cleaned,
                                           const std::vector<AbortedTxn>& aborted_transactions) {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  auto first = std::find_if(segments_.begin(), segments_.end(),
                            [&](const auto& s) { return s->base_offset() == first_base; });
  size_t index = static_cast<size_t>(first - segments_.begin());
  if (first == segments_.end() || count == 0 || index + count >= segments_.size()) {
    return absl::FailedPreconditionError(
        absl::StrCat("no ", count, " inactive segments from ", first_base, " in ", dir_.string()));
  }
  const int64_t end = segments_[index + count]->base_offset();
  int64_t previous = first_base - 1;
  for (const AbortedTxn& t : aborted_transactions) {
    if (t.last_offset <= previous || t.last_offset >= end) {
      return absl::InvalidArgumentError(
          absl::StrCat("aborted transaction ending at ", t.last_offset, " does not follow ",
                       previous, " within [", first_base, ", ", end, ") in ", dir_.string()));
    }
    previous = t.last_offset;
  }
  // The swap discipline, transaction index included (FinishInterruptedCleaning completes
  // it after a crash at any step):
  //  1. "<base>.txnindex.swap", the cleaned segment's index, written even when empty (unless
  //     no replaced segment has an index either): while it exists it is the index of the
  //     swap, and the old ones may be stale;
  //  2. the cleaned file becomes "<base>.log.swap": from here on the swap will complete;
  //  3. the old segments go, with their indexes and producer snapshots;
  //  4. the index swap becomes "<base>.txnindex" (or goes, when empty): done before step 5,
  //     so that a leftover index swap without a .log.swap always means an unstarted swap;
  //  5. the .log.swap becomes "<base>.log".
  bool had_index = false;
  for (size_t i = index; i < index + count; ++i) {
    had_index |= txn_indexes_.contains(segments_[i]->base_offset());
  }
  const bool txn_swap_needed = had_index || !aborted_transactions.empty();
  const std::filesystem::path txn_swap = dir_ / Segment::FileName(first_base, kTxnIndexSwapSuffix);
  if (txn_swap_needed) {
    if (absl::Status s =
            WriteFileAtomically(txn_swap, TransactionIndex::Encode(aborted_transactions));
        !s.ok()) {
      return s;
    }
  } else if (absl::Status s = RemoveFile(txn_swap); !s.ok() && !absl::IsNotFound(s)) {
    return s;  // one left by an earlier failed swap must not be taken for this one's
  }
  std::filesystem::path swap = dir_ / Segment::FileName(first_base, ".log.swap");
  if (absl::Status s = RenameFile(cleaned, swap); !s.ok()) return s;
  if (absl::Status s = SyncDir(dir_); !s.ok()) return s;
  for (size_t i = index; i < index + count; ++i) {
    if (absl::Status s = segments_[i]->Delete(); !s.ok()) return s;
    if (absl::Status s = DeleteTxnIndex(segments_[i]->base_offset()); !s.ok()) return s;
    // The cleaned segment keeps first_base; the snapshots of the others go with them.
    if (segments_[i]->base_offset() != first_base) {
      if (absl::Status s = producer_state_.DeleteSnapshot(segments_[i]->base_offset()); !s.ok()) {
        return s;
      }
    }
  }
  if (!txn_swap_needed) {
    // No index before, none after.
  } else if (aborted_transactions.empty()) {
    if (absl::Status s = RemoveFile(txn_swap); !s.ok()) return s;
  } else {
    const std::filesystem::path path = dir_ / Segment::FileName(first_base, kTxnIndexSuffix);
    if (absl::Status s = RenameFile(txn_swap, path); !s.ok()) return s;
    absl::StatusOr<std::unique_ptr<TransactionIndex>> txn_index =
        TransactionIndex::Open(path, first_base);
    if (!txn_index.ok()) return txn_index.status();
    txn_indexes_[first_base] = *std::move(txn_index);
  }
  std::filesystem::path log = dir_ / Segment::FileName(first_base, ".log");
  if (absl::Status s = RenameFile(swap, log); !s.ok()) return s;
  if (absl::Status s = SyncDir(dir_); !s.ok()) return s;
  uint64_t truncated = 0;
  absl::StatusOr<std::unique_ptr<Segment>> segment =
      Segment::Recover(dir_, first_base, config_, &truncated);
  if (!segment.ok()) return segment.status();
  if (absl::Status s = (*segment)->OnBecomeInactive(); !s.ok()) return s;
  segments_.erase(segments_.begin() + static_cast<ptrdiff_t>(index),
                  segments_.begin() + static_cast<ptrdiff_t>(index + count));
  segments_.insert(segments_.begin() + static_cast<ptrdiff_t>(index), *std::move(segment));
  max_timestamp_cache_.reset();
  return absl::OkStatus();
}

int64_t PartitionLog::first_segment_base() const {
  return closed_ ? closed_first_base_ : segments_.front()->base_offset();
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
  // The producer state as of the new segment's base offset (Kafka snapshots at every
  // roll); fsynced by the next Flush.
  producer_state_.set_map_end_offset(log_end_offset());
  if (absl::Status s = producer_state_.TakeSnapshot(/*sync=*/false); !s.ok()) return s;
  if (absl::Status s = active().OnBecomeInactive(); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<Segment>> segment =
      Segment::Create(dir_, log_end_offset(), config_);
  if (!segment.ok()) return segment.status();
  segments_.push_back(*std::move(segment));
  active_first_timestamp_ = -1;
  active_created_ms_ = WallClockMs();
  dir_dirty_ = true;
  return absl::OkStatus();
}

bool PartitionLog::ShouldRollByAge(int64_t incoming_timestamp, int64_t now_ms) const {
  if (segments_.back()->empty() || config_.segment_ms == kNoLimit) return false;
  int64_t waited = active_first_timestamp_ >= 0 ? incoming_timestamp - active_first_timestamp_
                                                : now_ms - active_created_ms_;
  return waited > config_.segment_ms;
}

absl::StatusOr<AppendInfo> PartitionLog::Append(char* batches, size_t size, AppendOrigin origin) {
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
    if (h->is_control() && origin == AppendOrigin::kClient) {
      return absl::InvalidArgumentError(
          absl::StrCat("Clients are not allowed to write control records in topic partition ",
                       dir_.filename().string()));
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

  // Producer state before anything is written (Kafka's analyzeAndValidateProducerState):
  // a client's duplicate is answered with the original offsets; a refused batch refuses
  // the append. Markers (from the coordinator or a replay) go through the marker checks.
  ProducerStateManager::Update update = producer_state_.BeginUpdate();
  int64_t placed_base = first;
  size_t batch_pos = 0;
  for (const BatchHeader& h : headers) {
    const int64_t base = placed_base;
    placed_base += h.last_offset_delta + 1;
    const size_t at = batch_pos;
    batch_pos += h.total_size();
    if (h.is_control()) {
      std::optional<protocol::EndTxnMarker> marker =
          h.producer_id > kNoProducerId
              ? protocol::ParseEndTxnMarker(std::string_view(batches + at, h.total_size()))
              : std::nullopt;
      if (!marker.has_value()) {
        if (origin == AppendOrigin::kReplay) continue;
        return absl::InvalidArgumentError(absl::StrCat(
            "control batch at byte ", at, " is not an end-transaction marker of a producer"));
      }
      BatchHeader placed = h;
      placed.base_offset = base;
      if (absl::Status s = update.AddMarker(placed, *marker, origin); !s.ok()) return s;
      continue;
    }
    if (h.producer_id <= kNoProducerId) continue;
    BatchHeader placed = h;
    placed.base_offset = base;
    if (origin == AppendOrigin::kClient) {
      if (std::optional<ProducerBatch> duplicate = producer_state_.FindDuplicate(h)) {
        return AppendInfo{duplicate->first_offset(), duplicate->last_offset, duplicate};
      }
    }
    if (absl::Status s = update.AddBatch(placed, origin); !s.ok()) return s;
  }
  int64_t incoming_timestamp = -1;
  for (const BatchHeader& h : headers) {
    incoming_timestamp = std::max(incoming_timestamp, h.max_timestamp);
  }
  if (active().ShouldRoll(size, last) || ShouldRollByAge(incoming_timestamp, WallClockMs())) {
    if (absl::Status s = Roll(); !s.ok()) return s;
  }
  if (active().empty()) active_first_timestamp_ = headers.front().max_timestamp;
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
  std::vector<TxnCompletion> completions = producer_state_.Apply(std::move(update));
  producer_state_.set_map_end_offset(last + 1);
  // Kafka's updateTxnIndex: the markers are in the active segment.
  for (const TxnCompletion& c : completions) {
    if (!c.txn.is_aborted) continue;
    if (absl::Status a = AppendAbortedTxn(
            active().base_offset(),
            {c.txn.producer_id, c.txn.first_offset, c.txn.last_offset, c.last_stable_offset});
        !a.ok()) {
      return a;
    }
  }
  unflushed_messages_ += static_cast<int64_t>(offsets);
  if (config_.flush_messages != kNoLimit && unflushed_messages_ >= config_.flush_messages) {
    if (absl::Status f = Flush(); !f.ok()) return f;
  }
  return AppendInfo{first, last, std::nullopt};
}

absl::StatusOr<AppendInfo> PartitionLog::AppendTxnMarker(int64_t producer_id,
                                                         int16_t producer_epoch,
                                                         const protocol::EndTxnMarker& marker,
                                                         int64_t timestamp_ms) {
  std::string batch =
      protocol::BuildEndTxnMarkerBatch(producer_id, producer_epoch, marker, timestamp_ms);
  return Append(batch.data(), batch.size(), AppendOrigin::kCoordinator);
}

absl::Status PartitionLog::AppendAbortedTxn(int64_t segment_base, const AbortedTxn& txn) {
  auto it = txn_indexes_.find(segment_base);
  if (it == txn_indexes_.end()) {
    absl::StatusOr<std::unique_ptr<TransactionIndex>> index = TransactionIndex::Open(
        dir_ / Segment::FileName(segment_base, kTxnIndexSuffix), segment_base);
    if (!index.ok()) return index.status();
    it = txn_indexes_.emplace(segment_base, *std::move(index)).first;
  }
  const bool created = !it->second->has_file();
  if (absl::Status s = it->second->Append(txn); !s.ok()) return s;
  if (created) dir_dirty_ = true;  // a new file: the next Flush syncs the directory
  return absl::OkStatus();
}

absl::Status PartitionLog::DeleteTxnIndex(int64_t segment_base) {
  auto it = txn_indexes_.find(segment_base);
  if (it == txn_indexes_.end()) return absl::OkStatus();
  absl::Status s = it->second->Delete();
  txn_indexes_.erase(it);
  return s;
}

int64_t PartitionLog::LastIndexedAbortOffset() const {
  for (auto it = txn_indexes_.rbegin(); it != txn_indexes_.rend(); ++it) {
    if (!it->second->empty()) return it->second->entries().back().last_offset;
  }
  return -1;
}

int64_t PartitionLog::last_stable_offset() const {
  std::optional<int64_t> first_unstable = producer_state_.first_unstable_offset();
  // Kafka's maybeIncrementFirstUnstableOffset: never below the log start.
  return first_unstable.has_value() ? std::max(*first_unstable, log_start_offset_)
                                    : log_end_offset();
}

std::vector<AbortedTxn> PartitionLog::AbortedTransactions(int64_t start_offset,
                                                          int64_t upper_bound_offset) const {
  std::vector<AbortedTxn> out;
  // From the index at or below start_offset: the markers of earlier segments end before.
  auto it = txn_indexes_.upper_bound(start_offset);
  if (it != txn_indexes_.begin()) --it;
  for (; it != txn_indexes_.end(); ++it) {
    if (it->second->Collect(start_offset, upper_bound_offset, &out)) break;
  }
  return out;
}

absl::Status PartitionLog::DeleteOldestSegments(size_t count) {
  count = std::min(count, segments_.size() - 1);
  if (count == 0) return absl::OkStatus();
  for (size_t i = 0; i < count; ++i) {
    if (absl::Status s = segments_[i]->Delete(); !s.ok()) return s;
    if (absl::Status s = DeleteTxnIndex(segments_[i]->base_offset()); !s.ok()) return s;
    if (absl::Status s = producer_state_.DeleteSnapshot(segments_[i]->base_offset()); !s.ok()) {
      return s;
    }
  }
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<ptrdiff_t>(count));
  log_start_offset_ = std::max(log_start_offset_, segments_.front()->base_offset());
  producer_state_.OnLogStartOffsetIncremented(log_start_offset_);
  recovery_point_ = std::max(recovery_point_, log_start_offset_);
  max_timestamp_cache_.reset();
  dir_dirty_ = true;
  return absl::OkStatus();
}

absl::StatusOr<int64_t> PartitionLog::DeleteRecordsBefore(int64_t offset) {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  if (offset > log_end_offset()) {
    return absl::OutOfRangeError(absl::StrCat("offset ", offset, " is beyond the log end offset ",
                                              log_end_offset(), " of ", dir_.string()));
  }
  if (offset <= log_start_offset_) return log_start_offset_;
  log_start_offset_ = offset;
  producer_state_.OnLogStartOffsetIncremented(log_start_offset_);
  max_timestamp_cache_.reset();
  size_t below = 0;
  while (below + 1 < segments_.size() && segments_[below + 1]->base_offset() <= offset) ++below;
  if (absl::Status s = DeleteOldestSegments(below); !s.ok()) return s;
  return log_start_offset_;
}

absl::StatusOr<size_t> PartitionLog::DeleteExpiredSegments(int64_t now_ms) {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  const size_t inactive = segments_.size() - 1;
  size_t n = 0;
  while (n < inactive && segments_[n + 1]->base_offset() <= log_start_offset_) ++n;
  if (config_.delete_policy) {
    // Kafka's retention checks, each over consecutive segments from the oldest.
    while (n < inactive && config_.retention_ms != kNoLimit &&
           now_ms - segments_[n]->largest_timestamp() > config_.retention_ms) {
      ++n;
    }
    if (config_.retention_bytes != kNoLimit) {
      uint64_t remaining = 0;
      for (size_t i = n; i < segments_.size(); ++i) remaining += segments_[i]->size();
      const uint64_t limit = static_cast<uint64_t>(config_.retention_bytes);
      while (n < inactive && remaining >= limit + segments_[n]->size()) {
        remaining -= segments_[n]->size();
        ++n;
      }
    }
  }
  if (absl::Status s = DeleteOldestSegments(n); !s.ok()) return s;
  return n;
}

absl::Status PartitionLog::MaybeFlush(int64_t now_ms) {
  if (closed_ || !has_unflushed() || config_.flush_ms == kNoLimit) return absl::OkStatus();
  if (now_ms - last_flush_ms_ < config_.flush_ms) return absl::OkStatus();
  return Flush();
}

absl::StatusOr<ReadInfo> PartitionLog::Read(int64_t offset, uint64_t max_bytes, bool min_one_batch,
                                            int64_t max_offset) {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  const int64_t end = log_end_offset();
  if (offset < log_start_offset_ || offset > end) {
    return absl::OutOfRangeError(absl::StrCat("offset ", offset, " is outside [", log_start_offset_,
                                              ", ", end, "] of ", dir_.string()));
  }
  ReadInfo info;
  info.next_offset = offset;
  if (offset == end) return info;
  auto it = std::upper_bound(
      segments_.begin(), segments_.end(), offset,
      [](int64_t o, const std::unique_ptr<Segment>& s) { return o < s->base_offset(); });
  // A segment may end before `offset` (its last offsets were compacted away, later);
  // the data then starts in a following one.
  for (--it; it != segments_.end(); ++it) {
    const Segment& segment = **it;
    if (segment.base_offset() > offset && segment.base_offset() >= max_offset) break;
    int64_t next = offset;
    absl::StatusOr<std::optional<FileRange>> range =
        segment.Read(offset, max_bytes, min_one_batch, &next);
    if (!range.ok()) return range.status();
    if (!range->has_value()) continue;
    if (max_offset < segment.next_offset()) {
      // Cut the range before the first batch whose base offset is >= max_offset (a batch
      // boundary, so whole batches remain).
      absl::StatusOr<std::optional<Segment::BatchLocation>> bound = segment.FindBatch(max_offset);
      if (!bound.ok()) return bound.status();
      if (bound->has_value()) {
        const BatchHeader& h = (*bound)->header;
        uint64_t limit = (*bound)->position;
        int64_t limit_offset = h.base_offset;
        if (h.base_offset < max_offset) {
          limit += h.total_size();
          limit_offset = h.last_offset() + 1;
        }
        const uint64_t start = (*range)->position;
        if (limit <= start) {
          (*range)->length = 0;
        } else if (start + (*range)->length > limit) {
          (*range)->length = limit - start;
          next = limit_offset;
        }
      }
    }
    if ((*range)->length > 0) {
      info.bytes = (*range)->length;
      info.next_offset = next;
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

size_t PartitionLog::RemoveExpiredProducers(int64_t now_ms) {
  return producer_state_.RemoveExpiredProducers(now_ms);
}

void PartitionLog::SetConfig(LogConfig config) {
  config_ = config;
  producer_state_.set_expiration_ms(config.producer_id_expiration_ms);
  for (auto& segment : segments_) segment->SetConfig(config);
}

absl::Status PartitionLog::Flush() {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  for (auto& segment : segments_) {
    if (absl::Status s = segment->Flush(); !s.ok()) return s;
  }
  for (auto& [base, index] : txn_indexes_) {
    if (absl::Status s = index->Sync(); !s.ok()) return s;
  }
  absl::StatusOr<bool> synced = producer_state_.SyncSnapshots();
  if (!synced.ok()) return synced.status();
  if (*synced) dir_dirty_ = true;
  // Kafka's deleteSnapshotsAfterRecoveryPointCheckpoint with the recovery point at the
  // log end: the snapshots of the last two segments stay, older ones go.
  const int64_t keep_from = segments_.size() >= 2 ? segments_[segments_.size() - 2]->base_offset()
                                                  : active().base_offset();
  if (absl::Status s = producer_state_.DeleteSnapshotsBefore(keep_from); !s.ok()) return s;
  if (created_unsynced_ && log_end_offset() > 0) {
    if (absl::Status s = SyncDir(dir_.parent_path()); !s.ok()) return s;
    created_unsynced_ = false;
    dir_dirty_ = true;
  }
  if (dir_dirty_) {
    if (absl::Status s = SyncDir(dir_); !s.ok()) return s;
    dir_dirty_ = false;
  }
  recovery_point_ = log_end_offset();
  unflushed_messages_ = 0;
  last_flush_ms_ = WallClockMs();
  return absl::OkStatus();
}

absl::Status PartitionLog::Close() {
  if (closed_) return absl::OkStatus();
  absl::Status status = active().OnBecomeInactive();
  // Kafka's close takes a snapshot, so that a clean start replays nothing.
  producer_state_.set_map_end_offset(log_end_offset());
  status.Update(producer_state_.TakeSnapshot(/*sync=*/false));
  status.Update(Flush());
  closed_end_offset_ = log_end_offset();
  closed_first_base_ = first_segment_base();
  closed_ = true;
  segments_.clear();
  max_timestamp_cache_.reset();
  return status;
}

}  // namespace runnel::storage
