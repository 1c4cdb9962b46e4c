#include "storage/producer_state.h"

#include <fcntl.h>

#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "protocol/wire.h"
#include "storage/file.h"
#include "storage/segment.h"

namespace runnel::storage {
namespace {

using protocol::BatchHeader;

constexpr absl::string_view kErrorPayloadUrl = "runnel.storage/producer-error";
constexpr size_t kSnapshotHeaderSize = 2 + 4 + 4;  // version, CRC, entry count
constexpr size_t kSnapshotCrcOffset = 2;
constexpr size_t kSnapshotEntriesOffset = 6;  // Kafka's PRODUCER_ENTRIES_OFFSET: the CRC start
constexpr size_t kSnapshotEntrySize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;

absl::Status ProducerStatus(ProducerError error, std::string message) {
  absl::Status status = absl::FailedPreconditionError(std::move(message));
  status.SetPayload(kErrorPayloadUrl, absl::Cord(std::to_string(static_cast<int>(error))));
  return status;
}

int32_t LastSequenceOf(const BatchHeader& h) {
  return h.base_sequence == kNoSequence ? kNoSequence
                                        : IncrementSequence(h.base_sequence, h.last_offset_delta);
}

bool InSequence(int32_t last_seq, int32_t next_seq) {
  return int64_t{next_seq} == int64_t{last_seq} + 1 ||
         (next_seq == 0 && last_seq == std::numeric_limits<int32_t>::max());
}

void Put(std::string* out, uint64_t value, size_t n) {
  char buf[8];
  protocol::PutBigEndian(buf, value, n);
  out->append(buf, n);
}

}  // namespace

int32_t IncrementSequence(int32_t sequence, int32_t increment) {
  constexpr int32_t kMax = std::numeric_limits<int32_t>::max();
  if (sequence > kMax - increment) return increment - (kMax - sequence) - 1;
  return sequence + increment;
}

int32_t DecrementSequence(int32_t sequence, int32_t decrement) {
  constexpr int32_t kMax = std::numeric_limits<int32_t>::max();
  if (sequence < decrement) return kMax - (decrement - sequence) + 1;
  return sequence - decrement;
}

void ProducerEntry::AddBatch(int16_t batch_epoch, const ProducerBatch& batch) {
  if (epoch != batch_epoch) {
    batches.clear();
    epoch = batch_epoch;
  }
  if (batches.size() == kProducerBatchesToRetain) batches.pop_front();
  batches.push_back(batch);
  last_timestamp = batch.timestamp;
}

std::optional<ProducerError> ProducerErrorOf(const absl::Status& status) {
  auto payload = status.GetPayload(kErrorPayloadUrl);  // absl::optional (not std::) here
  if (!payload) return std::nullopt;
  std::string value(*payload);
  for (ProducerError e :
       {ProducerError::kOutOfOrderSequence, ProducerError::kInvalidProducerEpoch,
        ProducerError::kInvalidTxnState, ProducerError::kTransactionCoordinatorFenced}) {
    if (value == std::to_string(static_cast<int>(e))) return e;
  }
  return std::nullopt;
}

std::string EncodeProducerSnapshot(const ProducerMap& producers) {
  std::string out;
  out.reserve(kSnapshotHeaderSize + producers.size() * kSnapshotEntrySize);
  Put(&out, static_cast<uint16_t>(kProducerSnapshotVersion), 2);
  Put(&out, 0, 4);  // the CRC, filled in below
  Put(&out, static_cast<uint32_t>(producers.size()), 4);
  for (const auto& [id, e] : producers) {
    Put(&out, static_cast<uint64_t>(id), 8);
    Put(&out, static_cast<uint16_t>(e.epoch), 2);
    Put(&out, static_cast<uint32_t>(e.last_seq()), 4);
    Put(&out, static_cast<uint64_t>(e.last_data_offset()), 8);
    Put(&out, static_cast<uint32_t>(e.last_offset_delta()), 4);
    Put(&out, static_cast<uint64_t>(e.last_timestamp), 8);
    Put(&out, static_cast<uint32_t>(e.coordinator_epoch), 4);
    Put(&out, static_cast<uint64_t>(e.current_txn_first_offset), 8);
  }
  uint32_t crc =
      protocol::Crc32c(out.data() + kSnapshotEntriesOffset, out.size() - kSnapshotEntriesOffset);
  protocol::PutBigEndian(out.data() + kSnapshotCrcOffset, crc, 4);
  return out;
}

absl::StatusOr<ProducerMap> DecodeProducerSnapshot(std::string_view bytes) {
  if (bytes.size() < kSnapshotHeaderSize) {
    return absl::DataLossError(absl::StrCat("Snapshot failed schema validation: ", bytes.size(),
                                            " bytes are too few for its header"));
  }
  auto get = [&](size_t pos, size_t n) { return protocol::GetBigEndian(bytes.data() + pos, n); };
  int16_t version = static_cast<int16_t>(get(0, 2));
  if (version != kProducerSnapshotVersion) {
    return absl::DataLossError(
        absl::StrCat("Snapshot contained an unknown file version ", version));
  }
  uint32_t stored = static_cast<uint32_t>(get(kSnapshotCrcOffset, 4));
  uint32_t computed = protocol::Crc32c(bytes.data() + kSnapshotEntriesOffset,
                                       bytes.size() - kSnapshotEntriesOffset);
  if (stored != computed) {
    return absl::DataLossError(
        absl::StrCat("Snapshot is corrupt (CRC is no longer valid). Stored crc: ", stored,
                     ". Computed crc: ", computed));
  }
  int32_t count = static_cast<int32_t>(get(kSnapshotEntriesOffset, 4));
  if (count < 0 ||
      bytes.size() != kSnapshotHeaderSize + static_cast<size_t>(count) * kSnapshotEntrySize) {
    return absl::DataLossError(absl::StrCat("Snapshot failed schema validation: ", count,
                                            " entries do not fill ", bytes.size(), " bytes"));
  }
  ProducerMap producers;
  for (size_t pos = kSnapshotHeaderSize; pos < bytes.size(); pos += kSnapshotEntrySize) {
    int64_t id = static_cast<int64_t>(get(pos, 8));
    ProducerEntry e;
    e.epoch = static_cast<int16_t>(get(pos + 8, 2));
    int32_t last_seq = static_cast<int32_t>(get(pos + 10, 4));
    int64_t last_offset = static_cast<int64_t>(get(pos + 14, 8));
    int32_t offset_delta = static_cast<int32_t>(get(pos + 22, 4));
    e.last_timestamp = static_cast<int64_t>(get(pos + 26, 8));
    e.coordinator_epoch = static_cast<int32_t>(get(pos + 34, 4));
    int64_t txn_first = static_cast<int64_t>(get(pos + 38, 8));
    e.current_txn_first_offset = txn_first >= 0 ? txn_first : -1;
    if (last_offset >= 0)
      e.batches.push_back({last_seq, last_offset, offset_delta, e.last_timestamp});
    producers[id] = std::move(e);
  }
  return producers;
}

const ProducerEntry* ProducerStateManager::Find(int64_t producer_id) const {
  auto it = producers_.find(producer_id);
  return it == producers_.end() ? nullptr : &it->second;
}

ProducerEntry& ProducerStateManager::Update::Updated(int64_t producer_id) {
  auto [it, inserted] = updated_.try_emplace(producer_id);
  ProducerEntry& updated = it->second;
  if (inserted) {
    if (const ProducerEntry* current = manager_->Find(producer_id)) {
      updated.epoch = current->epoch;
      updated.coordinator_epoch = current->coordinator_epoch;
      updated.last_timestamp = current->last_timestamp;
      updated.current_txn_first_offset = current->current_txn_first_offset;
    }
  }
  return updated;
}

absl::Status ProducerStateManager::Update::AddBatch(const BatchHeader& h, AppendOrigin origin) {
  static const ProducerEntry kUnknown;
  const int64_t id = h.producer_id;
  const ProducerEntry* found = manager_->Find(id);
  const ProducerEntry& current = found != nullptr ? *found : kUnknown;
  ProducerEntry& updated = Updated(id);
  const std::string partition = manager_->dir_->filename().string();
  const int64_t first_offset = h.base_offset;
  const int32_t first_seq = h.base_sequence;

  if (origin != AppendOrigin::kReplay && h.producer_epoch < updated.epoch) {
    return ProducerStatus(
        ProducerError::kInvalidProducerEpoch,
        absl::StrCat("Epoch of producer ", id, " at offset ", first_offset, " in ", partition,
                     " is ", h.producer_epoch, ", which is smaller than the last seen epoch ",
                     updated.epoch));
  }
  if (origin == AppendOrigin::kClient) {
    if (h.producer_epoch != updated.epoch) {
      if (first_seq != 0 && updated.epoch != kNoProducerEpoch) {
        return ProducerStatus(
            ProducerError::kOutOfOrderSequence,
            absl::StrCat("Invalid sequence number for new epoch of producer ", id, " at offset ",
                         first_offset, " in partition ", partition, ": ", h.producer_epoch,
                         " (request epoch), ", first_seq, " (seq. number), ", updated.epoch,
                         " (current producer epoch)"));
      }
    } else {
      int32_t current_last_seq = !updated.batches.empty()            ? updated.last_seq()
                                 : h.producer_epoch == current.epoch ? current.last_seq()
                                                                     : kNoSequence;
      // A producer this log has no epoch for (never seen, expired, or its records all
      // deleted) may continue from any sequence.
      if (!(current.epoch == kNoProducerEpoch || InSequence(current_last_seq, first_seq))) {
        return ProducerStatus(ProducerError::kOutOfOrderSequence,
                              absl::StrCat("Out of order sequence number for producer ", id,
                                           " at offset ", first_offset, " in partition ", partition,
                                           ": ", first_seq, " (incoming seq. number), ",
                                           current_last_seq, " (current end sequence number)"));
      }
    }
  }
  updated.AddBatch(h.producer_epoch,
                   {LastSequenceOf(h), h.last_offset(),
                    static_cast<int32_t>(h.last_offset() - first_offset), h.max_timestamp});
  if (updated.current_txn_first_offset >= 0 && !h.is_transactional()) {
    if (origin != AppendOrigin::kReplay) {
      return ProducerStatus(ProducerError::kInvalidTxnState,
                            absl::StrCat("Expected transactional write from producer ", id,
                                         " at offset ", first_offset, " in partition ", partition));
    }
  } else if (updated.current_txn_first_offset < 0 && h.is_transactional()) {
    updated.current_txn_first_offset = first_offset;
    started_.emplace_back(first_offset, id);
  }
  return absl::OkStatus();
}

absl::Status ProducerStateManager::Update::AddMarker(const BatchHeader& h,
                                                     const protocol::EndTxnMarker& marker,
                                                     AppendOrigin origin) {
  const int64_t id = h.producer_id;
  ProducerEntry& updated = Updated(id);
  if (origin != AppendOrigin::kReplay) {
    const std::string partition = manager_->dir_->filename().string();
    if (h.producer_epoch < updated.epoch) {
      return ProducerStatus(
          ProducerError::kInvalidProducerEpoch,
          absl::StrCat("Epoch of producer ", id, " at offset ", h.base_offset, " in ", partition,
                       " is ", h.producer_epoch, ", which is smaller than the last seen epoch ",
                       updated.epoch));
    }
    if (marker.coordinator_epoch < updated.coordinator_epoch) {
      return ProducerStatus(
          ProducerError::kTransactionCoordinatorFenced,
          absl::StrCat("Invalid coordinator epoch for producerId ", id, " at offset ",
                       h.base_offset, " in partition ", partition, ": ", marker.coordinator_epoch,
                       " (zombie), ", updated.coordinator_epoch, " (current)"));
    }
  }
  if (updated.current_txn_first_offset >= 0) {
    completed_.push_back({id, updated.current_txn_first_offset, h.base_offset,
                          marker.type == protocol::ControlRecordType::kAbort});
  }
  // Kafka's ProducerStateEntry.update(epoch, coordinatorEpoch, timestamp).
  if (updated.epoch != h.producer_epoch) {
    updated.batches.clear();
    updated.epoch = h.producer_epoch;
  }
  updated.coordinator_epoch = marker.coordinator_epoch;
  updated.current_txn_first_offset = -1;
  updated.last_timestamp = h.max_timestamp;
  return absl::OkStatus();
}

int64_t ProducerStateManager::LastStableOffset(const CompletedTxn& txn) const {
  for (const auto& [first_offset, producer_id] : ongoing_txns_) {
    if (producer_id != txn.producer_id) return first_offset;
  }
  return txn.last_offset + 1;
}

void ProducerStateManager::RebuildOngoingTxns() {
  ongoing_txns_.clear();
  for (const auto& [id, entry] : producers_) {
    if (entry.current_txn_first_offset >= 0) ongoing_txns_[entry.current_txn_first_offset] = id;
  }
}

std::vector<TxnCompletion> ProducerStateManager::Apply(Update update) {
  for (auto& [id, updated] : update.updated_) {
    auto it = producers_.find(id);
    if (it == producers_.end()) {
      producers_.emplace(id, std::move(updated));
      continue;
    }
    // Kafka's ProducerStateEntry.update.
    ProducerEntry& current = it->second;
    if (current.epoch != updated.epoch) {
      current.batches.clear();
      current.epoch = updated.epoch;
    }
    for (const ProducerBatch& b : updated.batches) {
      if (current.batches.size() == kProducerBatchesToRetain) current.batches.pop_front();
      current.batches.push_back(b);
    }
    current.coordinator_epoch = updated.coordinator_epoch;
    current.current_txn_first_offset = updated.current_txn_first_offset;
    current.last_timestamp = updated.last_timestamp;
  }
  for (const auto& [first_offset, id] : update.started_) ongoing_txns_[first_offset] = id;
  std::vector<TxnCompletion> completions;
  completions.reserve(update.completed_.size());
  for (const CompletedTxn& txn : update.completed_) {
    completions.push_back({txn, LastStableOffset(txn)});
    ongoing_txns_.erase(txn.first_offset);
  }
  return completions;
}

std::optional<ProducerBatch> ProducerStateManager::FindDuplicate(const BatchHeader& h) const {
  const ProducerEntry* entry = Find(h.producer_id);
  if (entry == nullptr || entry->epoch != h.producer_epoch) return std::nullopt;
  const int32_t last_seq = LastSequenceOf(h);
  for (const ProducerBatch& b : entry->batches) {
    if (b.first_seq() == h.base_sequence && b.last_seq == last_seq) return b;
  }
  return std::nullopt;
}

bool ProducerStateManager::Expired(const ProducerEntry& entry, int64_t now_ms) const {
  return entry.current_txn_first_offset < 0 && now_ms - entry.last_timestamp >= expiration_ms_;
}

size_t ProducerStateManager::RemoveExpiredProducers(int64_t now_ms) {
  return std::erase_if(producers_, [&](const auto& p) { return Expired(p.second, now_ms); });
}

std::filesystem::path ProducerStateManager::SnapshotPath(int64_t offset) const {
  return *dir_ / Segment::FileName(offset, kProducerSnapshotSuffix);
}

absl::Status ProducerStateManager::TakeSnapshot(bool sync) {
  // Nothing new since the latest snapshot: not worth another.
  if (map_end_offset_ <= last_snapshot_offset_) return absl::OkStatus();
  const int64_t offset = map_end_offset_;
  if (absl::Status s =
          WriteFileAtomically(SnapshotPath(offset), EncodeProducerSnapshot(producers_), sync);
      !s.ok()) {
    return s;
  }
  snapshots_.insert(offset);
  if (!sync) unsynced_snapshots_.push_back(offset);
  last_snapshot_offset_ = offset;
  return absl::OkStatus();
}

absl::StatusOr<bool> ProducerStateManager::SyncSnapshots() {
  bool any = false;
  for (int64_t offset : unsynced_snapshots_) {
    if (!snapshots_.contains(offset)) continue;  // deleted since
    absl::StatusOr<std::shared_ptr<File>> file = File::Open(SnapshotPath(offset), O_RDONLY);
    if (!file.ok()) return file.status();
    if (absl::Status s = (*file)->Sync(); !s.ok()) return s;
    any = true;
  }
  unsynced_snapshots_.clear();
  return any;
}

absl::Status ProducerStateManager::TruncateAndReload(int64_t log_start, int64_t log_end,
                                                     int64_t now_ms) {
  for (int64_t offset : std::vector<int64_t>(snapshots_.begin(), snapshots_.end())) {
    if (offset > log_end || offset <= log_start) {
      if (absl::Status s = DeleteSnapshot(offset); !s.ok()) return s;
    }
  }
  if (log_end == map_end_offset_) {
    OnLogStartOffsetIncremented(log_start);
    return absl::OkStatus();
  }
  producers_.clear();
  ongoing_txns_.clear();
  while (!snapshots_.empty()) {
    const int64_t offset = *snapshots_.rbegin();
    absl::StatusOr<std::string> bytes = ReadFileToString(SnapshotPath(offset));
    if (!bytes.ok() && !absl::IsNotFound(bytes.status())) return bytes.status();
    absl::StatusOr<ProducerMap> loaded =
        bytes.ok() ? DecodeProducerSnapshot(*bytes) : absl::StatusOr<ProducerMap>(bytes.status());
    if (loaded.ok()) {
      for (auto& [id, entry] : *loaded) {
        if (!Expired(entry, now_ms)) producers_.emplace(id, std::move(entry));
      }
      RebuildOngoingTxns();
      map_end_offset_ = last_snapshot_offset_ = offset;
      return absl::OkStatus();
    }
    // A torn or corrupt snapshot: the one before it (or a longer replay) will do.
    if (absl::Status s = DeleteSnapshot(offset); !s.ok()) return s;
  }
  map_end_offset_ = last_snapshot_offset_ = log_start;
  return absl::OkStatus();
}

std::optional<TxnCompletion> ProducerStateManager::ReplayBatch(
    const BatchHeader& h, const protocol::EndTxnMarker* marker) {
  std::optional<TxnCompletion> completion;
  // A control batch that is no marker (or emptied by compaction) changes nothing.
  if (h.producer_id > kNoProducerId && (!h.is_control() || marker != nullptr)) {
    Update update = BeginUpdate();
    // Replays are not checked.
    if (h.is_control()) {
      update.AddMarker(h, *marker, AppendOrigin::kReplay).IgnoreError();
    } else {
      update.AddBatch(h, AppendOrigin::kReplay).IgnoreError();
    }
    std::vector<TxnCompletion> completions = Apply(std::move(update));
    if (!completions.empty()) completion = completions.front();
  }
  map_end_offset_ = h.last_offset() + 1;
  return completion;
}

void ProducerStateManager::OnLogStartOffsetIncremented(int64_t log_start) {
  if (map_end_offset_ < log_start) map_end_offset_ = log_start;
  last_snapshot_offset_ = snapshots_.empty() ? log_start : *snapshots_.rbegin();
}

absl::Status ProducerStateManager::DeleteSnapshot(int64_t offset) {
  if (snapshots_.erase(offset) == 0) return absl::OkStatus();
  std::erase(unsynced_snapshots_, offset);
  absl::Status s = RemoveFile(SnapshotPath(offset));
  return absl::IsNotFound(s) ? absl::OkStatus() : s;
}

absl::Status ProducerStateManager::DeleteSnapshotsBefore(int64_t offset) {
  while (!snapshots_.empty() && *snapshots_.begin() < offset) {
    if (absl::Status s = DeleteSnapshot(*snapshots_.begin()); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace runnel::storage
