#include "storage/compactor.h"

#include <fcntl.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "protocol/compression.h"
#include "protocol/record_batch.h"
#include "protocol/wire.h"
#include "storage/file.h"

namespace runnel::storage {
namespace {

using protocol::BatchHeader;
using protocol::Compression;
using protocol::kBatchHeaderSize;
using protocol::Record;

// Attribute bits (record_batch.h).
constexpr int16_t kCodecMask = 0x7;
constexpr int16_t kLogAppendTimeFlag = 0x8;
constexpr int16_t kTransactionalFlag = 0x10;
constexpr int16_t kControlFlag = 0x20;
constexpr int16_t kDeleteHorizonFlag = 0x40;

// Control record types (Kafka's ControlRecordType): the key is int16 version, int16 type.
constexpr int16_t kControlAbort = 0;
constexpr int16_t kControlCommit = 1;

// Output is written in chunks of about this size.
constexpr size_t kWriteChunk = 1 << 20;

bool HasDeleteHorizon(const BatchHeader& h) { return (h.attributes & kDeleteHorizonFlag) != 0; }

// Two's complement arithmetic: hostile timestamps must not be signed overflow (UB).
int64_t WrapSub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) {
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return r;
}

void WriteNullable(protocol::Writer& w, const std::optional<std::string_view>& s) {
  if (!s) {
    w.Varint(-1);
    return;
  }
  w.Varint(static_cast<int32_t>(s->size()));
  w.Raw(*s);
}

// Kafka's MemoryRecords.buildRetainedRecordsInto: the kept records of `h` as a new batch
// with the same base offset, last offset delta, producer fields, leader epoch, codec and
// flags. delete_horizon >= 0 sets the flag and becomes BaseTimestamp.
absl::StatusOr<std::string> RebuildBatch(const BatchHeader& h,
                                         const std::vector<const Record*>& kept,
                                         int64_t delete_horizon) {
  BatchHeader out = h;
  out.attributes = static_cast<int16_t>(
      h.attributes & (kCodecMask | kLogAppendTimeFlag | kTransactionalFlag | kControlFlag));
  if (delete_horizon >= 0) out.attributes |= kDeleteHorizonFlag;
  out.base_timestamp = delete_horizon >= 0 ? delete_horizon : kept.front()->timestamp;
  if (h.log_append_time()) {
    out.max_timestamp = h.max_timestamp;
  } else {
    out.max_timestamp = -1;
    for (const Record* r : kept) out.max_timestamp = std::max(out.max_timestamp, r->timestamp);
  }
  out.record_count = static_cast<int32_t>(kept.size());

  protocol::Writer w;
  w.buffer().resize(kBatchHeaderSize);
  protocol::Encoded body;
  for (const Record* r : kept) {
    body.bytes.clear();
    protocol::Writer b(&body);
    b.Int8(0);  // record attributes, unused
    b.Varlong(WrapSub(r->timestamp, out.base_timestamp));
    b.Varint(static_cast<int32_t>(WrapSub(r->offset, h.base_offset)));
    WriteNullable(b, r->key);
    WriteNullable(b, r->value);
    b.Varint(static_cast<int32_t>(r->headers.size()));
    for (const protocol::RecordHeader& header : r->headers) {
      b.Varint(static_cast<int32_t>(header.key.size()));
      b.Raw(header.key);
      WriteNullable(b, header.value);
    }
    w.Varint(static_cast<int32_t>(body.bytes.size()));
    w.Raw(body.bytes);
  }
  std::string batch = std::move(w.buffer());
  if (h.compression() != Compression::kNone) {
    absl::StatusOr<std::string> packed =
        protocol::Compress(h.compression(), std::string_view(batch).substr(kBatchHeaderSize));
    if (!packed.ok()) return packed.status();
    batch.resize(kBatchHeaderSize);
    batch += *packed;
  }
  protocol::WriteBatchHeader(out, &batch);
  return batch;
}

// Kafka's DefaultRecordBatch.writeEmptyHeader: no records, codec none, no delete horizon,
// BaseTimestamp -1, everything else as in `h`.
std::string EmptyBatch(const BatchHeader& h) {
  BatchHeader out = h;
  out.attributes =
      static_cast<int16_t>(h.attributes & (kLogAppendTimeFlag | kTransactionalFlag | kControlFlag));
  out.base_timestamp = -1;
  out.record_count = 0;
  std::string batch(kBatchHeaderSize, '\0');
  protocol::WriteBatchHeader(out, &batch);
  return batch;
}

// Reads the batches of one source segment, one at a time, checking each one's framing,
// CRC and offsets.
class BatchReader {
 public:
  static absl::StatusOr<BatchReader> Open(const CompactionSource& source) {
    absl::StatusOr<std::shared_ptr<File>> file = File::Open(source.log_path, O_RDONLY);
    if (!file.ok()) return file.status();
    absl::StatusOr<uint64_t> size = (*file)->Size();
    if (!size.ok()) return size.status();
    return BatchReader(source, *std::move(file), *size);
  }

  // On true, *batch holds the next whole batch and *h its header.
  absl::StatusOr<bool> Next(std::string* batch, BatchHeader* h) {
    if (position_ == size_) return false;
    if (size_ - position_ < kBatchHeaderSize) return Corrupt("a truncated batch header");
    batch->resize(kBatchHeaderSize);
    if (absl::Status s = file_->ReadFullyAt(position_, batch->data(), kBatchHeaderSize); !s.ok()) {
      return s;
    }
    absl::StatusOr<BatchHeader> parsed = protocol::ParseBatchHeader(*batch);
    if (!parsed.ok()) return Corrupt(parsed.status().message());
    if (parsed->total_size() > size_ - position_)
      return Corrupt("a batch past the end of the file");
    int64_t last;
    if (parsed->last_offset_delta < 0 || parsed->base_offset < next_expected_ ||
        __builtin_add_overflow(parsed->base_offset, parsed->last_offset_delta, &last) ||
        last >= source_.next_offset) {
      return Corrupt(absl::StrCat("batch offsets [", parsed->base_offset, ", +",
                                  parsed->last_offset_delta, "] out of order or outside [",
                                  source_.base_offset, ", ", source_.next_offset, ")"));
    }
    batch->resize(parsed->total_size());
    if (absl::Status s =
            file_->ReadFullyAt(position_ + kBatchHeaderSize, batch->data() + kBatchHeaderSize,
                               batch->size() - kBatchHeaderSize);
        !s.ok()) {
      return s;
    }
    if (protocol::Crc32c(batch->data() + protocol::kAttributesOffset,
                         batch->size() - protocol::kAttributesOffset) != parsed->crc) {
      return Corrupt("a CRC-32C mismatch");
    }
    *h = *parsed;
    next_expected_ = parsed->last_offset() + 1;
    position_ += parsed->total_size();
    return true;
  }

  absl::Status Corrupt(absl::string_view what) const {
    return absl::DataLossError(absl::StrCat("compactor: ", source_.log_path.string(),
                                            " at position ", position_, ": ", what));
  }

 private:
  BatchReader(const CompactionSource& source, std::shared_ptr<File> file, uint64_t size)
      : source_(source), file_(std::move(file)), size_(size), next_expected_(source.base_offset) {}

  CompactionSource source_;
  std::shared_ptr<File> file_;
  uint64_t size_;
  uint64_t position_ = 0;
  int64_t next_expected_;
};

absl::StatusOr<std::vector<Record>> DecodeRecords(const BatchReader& reader, std::string_view batch,
                                                  std::string* scratch, size_t max_decompressed) {
  absl::StatusOr<std::vector<Record>> records =
      protocol::ReadRecords(batch, scratch, max_decompressed);
  if (!records.ok()) return reader.Corrupt(records.status().message());
  return records;
}

std::optional<std::string_view> FirstKey(const std::vector<Record>& records) {
  if (records.empty()) return std::nullopt;
  return records.front().key.value_or(std::string_view());
}

}  // namespace

// ---------------------------------------------------------------------------------------
// OffsetMap

OffsetMap::OffsetMap(size_t buffer_bytes, double load_factor)
    : budget_bytes_(static_cast<size_t>(static_cast<double>(buffer_bytes) *
                                        std::clamp(load_factor, 0.0, 1.0))) {}

bool OffsetMap::Put(std::string_view key, int64_t offset) {
  auto it = map_.find(key);
  if (it != map_.end()) {
    it->second = offset;
    return true;
  }
  size_t cost = key.size() + kEntryOverhead;
  if (memory_bytes_ + cost > budget_bytes_) return false;
  map_.emplace(std::string(key), offset);
  memory_bytes_ += cost;
  return true;
}

int64_t OffsetMap::Get(std::string_view key) const {
  auto it = map_.find(key);
  return it == map_.end() ? -1 : it->second;
}

void OffsetMap::Erase(std::string_view key) {
  auto it = map_.find(key);
  if (it == map_.end()) return;
  memory_bytes_ -= it->first.size() + kEntryOverhead;
  map_.erase(it);
}

void OffsetMap::Clear() {
  map_.clear();
  memory_bytes_ = 0;
  latest_offset_ = -1;
}

void OffsetMap::UpdateLatestOffset(int64_t offset) {
  latest_offset_ = std::max(latest_offset_, offset);
}

// ---------------------------------------------------------------------------------------
// CleanerTransactions

void CleanerTransactions::AddAbortedTransactions(const std::vector<AbortedTxn>& aborted) {
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(next_pending_));
  next_pending_ = 0;
  pending_.insert(pending_.end(), aborted.begin(), aborted.end());
  std::stable_sort(pending_.begin(), pending_.end(), [](const AbortedTxn& a, const AbortedTxn& b) {
    return a.first_offset < b.first_offset;
  });
}

void CleanerTransactions::ConsumeUpTo(int64_t offset) {
  while (next_pending_ < pending_.size() && pending_[next_pending_].first_offset <= offset) {
    const AbortedTxn& txn = pending_[next_pending_++];
    ongoing_aborted_.try_emplace(txn.producer_id, Ongoing{txn, std::nullopt});
  }
}

bool CleanerTransactions::OnDataBatch(int64_t producer_id, bool transactional,
                                      int64_t last_offset) {
  ConsumeUpTo(last_offset);
  if (!transactional) return false;
  auto it = ongoing_aborted_.find(producer_id);
  if (it != ongoing_aborted_.end()) {
    it->second.last_observed_batch_offset = last_offset;
    return true;
  }
  ongoing_committed_.insert(producer_id);
  return false;
}

bool CleanerTransactions::OnControlBatch(int64_t producer_id, int64_t last_offset,
                                         std::optional<std::string_view> first_key) {
  ConsumeUpTo(last_offset);
  // A control batch without records was emptied by an earlier clean: it may go.
  if (!first_key) return true;
  if (first_key->size() < 4) return false;  // not a marker we understand: keep it
  int16_t type = static_cast<int16_t>((static_cast<uint8_t>((*first_key)[2]) << 8) |
                                      static_cast<uint8_t>((*first_key)[3]));
  if (type == kControlAbort) {
    auto it = ongoing_aborted_.find(producer_id);
    if (it == ongoing_aborted_.end()) return true;
    Ongoing ongoing = std::move(it->second);
    ongoing_aborted_.erase(it);
    // Keep the marker until every batch of the transaction is gone.
    if (ongoing.last_observed_batch_offset) {
      retained_.push_back(ongoing.txn);
      return false;
    }
    return true;
  }
  if (type == kControlCommit) {
    // May go when no batch of the transaction was seen.
    return ongoing_committed_.erase(producer_id) == 0;
  }
  return false;
}

std::vector<AbortedTxn> CleanerTransactions::TakeRetained() { return std::exchange(retained_, {}); }

// ---------------------------------------------------------------------------------------
// BuildOffsetMap

absl::StatusOr<OffsetMapBuildResult> BuildOffsetMap(const std::vector<CompactionSource>& dirty,
                                                    int64_t start_offset, int64_t end_offset,
                                                    const std::vector<AbortedTxn>& aborted,
                                                    OffsetMap* map, const CompactorLimits& limits) {
  map->Clear();
  OffsetMapBuildResult result;
  CleanerTransactions txns;
  txns.AddAbortedTransactions(aborted);
  std::string batch;
  std::string scratch;
  // Entries put for the batch being mapped, to undo them when the budget fills mid-batch
  // (Kafka leaves them; undoing keeps the map exactly [start, latest_offset]).
  std::vector<std::pair<std::string_view, int64_t>> undo;

  for (size_t i = 0; i < dirty.size(); ++i) {
    int64_t next_start = i + 1 < dirty.size() ? dirty[i + 1].base_offset : end_offset;
    absl::StatusOr<BatchReader> reader = BatchReader::Open(dirty[i]);
    if (!reader.ok()) return reader.status();
    BatchHeader h;
    while (true) {
      absl::StatusOr<bool> more = reader->Next(&batch, &h);
      if (!more.ok()) return more.status();
      // Records at or past end_offset are left out (Kafka reads the whole segment).
      if (!*more || h.base_offset >= end_offset) break;
      ++result.batches_read;
      result.bytes_read += batch.size();
      if (h.is_control()) {
        absl::StatusOr<std::vector<Record>> records =
            DecodeRecords(*reader, batch, &scratch, limits.max_decompressed_bytes);
        if (!records.ok()) return records.status();
        txns.OnControlBatch(h.producer_id, h.last_offset(), FirstKey(*records));
        ++result.records_read;
      } else if (!txns.OnDataBatch(h.producer_id, h.is_transactional(), h.last_offset()) &&
                 h.last_offset() >= start_offset) {
        absl::StatusOr<std::vector<Record>> records =
            DecodeRecords(*reader, batch, &scratch, limits.max_decompressed_bytes);
        if (!records.ok()) return records.status();
        undo.clear();
        for (const Record& r : *records) {
          if (r.offset >= end_offset) break;
          if (r.key && r.offset >= start_offset) {
            int64_t previous = map->Get(*r.key);
            if (!map->Put(*r.key, r.offset)) {
              for (auto it = undo.rbegin(); it != undo.rend(); ++it) {
                if (it->second < 0) {
                  map->Erase(it->first);
                } else {
                  map->Put(it->first, it->second);
                }
              }
              result.full = true;
              if (map->latest_offset() < start_offset) {
                return absl::ResourceExhaustedError(
                    absl::StrCat("compactor: the offset map budget of ", map->budget_bytes(),
                                 " bytes does not hold the keys of the batch at offset ",
                                 h.base_offset, " (raise log.cleaner.dedupe.buffer.size)"));
              }
              result.end_offset = map->latest_offset() + 1;
              return result;
            }
            undo.emplace_back(*r.key, previous);
          }
          ++result.records_read;
        }
      } else {
        result.records_read += std::max(h.record_count, 0);
      }
      if (h.last_offset() >= start_offset) {
        map->UpdateLatestOffset(std::min(h.last_offset(), end_offset - 1));
      }
    }
    // Offsets between the last batch and the next segment are covered too (gaps).
    map->UpdateLatestOffset(next_start - 1);
  }
  result.end_offset = map->latest_offset() + 1;
  return result;
}

// ---------------------------------------------------------------------------------------
// Clean

namespace {

class Cleaner {
 public:
  Cleaner(const OffsetMap& map, const CleanOptions& options, CleanerTransactions* txns,
          std::shared_ptr<File> out)
      : map_(map), options_(options), txns_(txns), out_(std::move(out)) {}

  absl::Status Run(const std::vector<CompactionSource>& sources) {
    std::string batch;
    for (const CompactionSource& source : sources) {
      absl::StatusOr<BatchReader> reader = BatchReader::Open(source);
      if (!reader.ok()) return reader.status();
      BatchHeader h;
      while (true) {
        absl::StatusOr<bool> more = reader->Next(&batch, &h);
        if (!more.ok()) return more.status();
        if (!*more) break;
        if (h.base_offset <= last_offset_read_) {
          return reader->Corrupt(absl::StrCat("batch at offset ", h.base_offset,
                                              " does not follow offset ", last_offset_read_,
                                              " of the previous segment"));
        }
        last_offset_read_ = h.last_offset();
        if (absl::Status s = CleanBatch(*reader, batch, h); !s.ok()) return s;
      }
    }
    if (absl::Status s = Flush(); !s.ok()) return s;
    result_.retained_aborted_transactions = txns_->TakeRetained();
    return out_->Sync();
  }

  CleanResult& result() { return result_; }

 private:
  enum class Retention { kDelete, kDeleteEmpty, kRetainEmpty };

  // Cleaner.shouldRetainRecord for a record of a data batch.
  bool ShouldRetain(const BatchHeader& h, const Record& r) {
    if (r.offset > map_.latest_offset()) return true;
    if (!r.key) {
      ++result_.null_key_records_removed;
      return false;
    }
    bool latest = r.offset >= map_.Get(*r.key);
    if (!latest) return false;
    if (r.value) return true;
    bool retain_deletes = !HasDeleteHorizon(h) || options_.now_ms < h.base_timestamp;
    if (!retain_deletes) ++result_.tombstones_removed;
    return retain_deletes;
  }

  // The checkBatchRetention of Cleaner.cleanInto's filter.
  bool IsLastBatchOfActiveProducer(const BatchHeader& h) const {
    auto it = options_.active_producers.find(h.producer_id);
    if (it == options_.active_producers.end()) return false;
    if (it->second.last_data_offset) return h.last_offset() == *it->second.last_data_offset;
    return h.is_control() && h.producer_epoch == it->second.producer_epoch;
  }

  absl::Status CleanBatch(const BatchReader& reader, std::string_view batch, const BatchHeader& h) {
    ++result_.batches_read;
    result_.bytes_read += batch.size();

    std::vector<Record> records;
    bool decoded = false;
    auto decode = [&]() -> absl::Status {
      if (decoded) return absl::OkStatus();
      absl::StatusOr<std::vector<Record>> r =
          DecodeRecords(reader, batch, &scratch_, options_.limits.max_decompressed_bytes);
      if (!r.ok()) return r.status();
      records = *std::move(r);
      decoded = true;
      return absl::OkStatus();
    };

    bool can_discard;
    bool discard_records;
    if (h.is_control()) {
      if (absl::Status s = decode(); !s.ok()) return s;
      can_discard = txns_->OnControlBatch(h.producer_id, h.last_offset(), FirstKey(records));
      discard_records = can_discard && HasDeleteHorizon(h) && h.base_timestamp <= options_.now_ms;
    } else {
      can_discard = txns_->OnDataBatch(h.producer_id, h.is_transactional(), h.last_offset());
      discard_records = can_discard;
    }
    bool marker_for_empty_txn = can_discard && h.is_control();

    Retention retention;
    if (h.producer_id >= 0 && IsLastBatchOfActiveProducer(h)) {
      retention = Retention::kRetainEmpty;
    } else if (h.last_offset() + 1 == options_.upper_bound_offset) {
      // The last batch of the round keeps the log end offset.
      retention = Retention::kRetainEmpty;
    } else if (discard_records) {
      retention = Retention::kDelete;
    } else {
      retention = Retention::kDeleteEmpty;
    }

    std::vector<const Record*> kept;
    bool contains_tombstones = false;
    if (discard_records) {
      // Aborted data or an expired marker: nothing is kept, records need not be read.
      if (h.is_control()) {
        ++result_.markers_removed;
      } else {
        result_.aborted_records_removed += std::max(h.record_count, 0);
      }
    } else {
      if (absl::Status s = decode(); !s.ok()) return s;
      result_.records_read += static_cast<int64_t>(records.size());
      kept.reserve(records.size());
      for (const Record& r : records) {
        if (h.is_control() || ShouldRetain(h, r)) {
          kept.push_back(&r);
          if (!r.value) contains_tombstones = true;
        }
      }
    }

    if (!kept.empty()) {
      bool need_horizon = (contains_tombstones || marker_for_empty_txn) && !HasDeleteHorizon(h);
      if (kept.size() == records.size() && !need_horizon) {
        ++result_.batches_copied;
        return Write(batch, h, static_cast<int64_t>(kept.size()));
      }
      int64_t horizon = -1;
      if (need_horizon) {
        horizon = SaturatingAdd(options_.now_ms, options_.delete_retention_ms);
      } else if (HasDeleteHorizon(h)) {
        horizon = h.base_timestamp;
      }
      absl::StatusOr<std::string> rebuilt = RebuildBatch(h, kept, horizon);
      if (!rebuilt.ok()) return rebuilt.status();
      absl::StatusOr<BatchHeader> out = protocol::ParseBatchHeader(*rebuilt);
      if (!out.ok()) return out.status();
      return Write(*rebuilt, *out, static_cast<int64_t>(kept.size()));
    }
    if (retention == Retention::kRetainEmpty) {
      std::string empty = EmptyBatch(h);
      ++result_.empty_batches_written;
      absl::StatusOr<BatchHeader> out = protocol::ParseBatchHeader(empty);
      if (!out.ok()) return out.status();
      return Write(empty, *out, 0);
    }
    return absl::OkStatus();
  }

  absl::Status Write(std::string_view batch, const BatchHeader& h, int64_t records) {
    ++result_.batches_written;
    result_.records_written += records;
    result_.bytes_written += batch.size();
    if (result_.first_offset < 0) result_.first_offset = h.base_offset;
    result_.last_offset = h.last_offset();
    if (h.max_timestamp > result_.max_timestamp) {
      result_.max_timestamp = h.max_timestamp;
      result_.offset_of_max_timestamp = h.last_offset();
    }
    buffer_.append(batch);
    return buffer_.size() >= kWriteChunk ? Flush() : absl::OkStatus();
  }

  absl::Status Flush() {
    if (buffer_.empty()) return absl::OkStatus();
    if (absl::Status s = out_->WriteAt(written_, buffer_.data(), buffer_.size()); !s.ok()) return s;
    written_ += buffer_.size();
    buffer_.clear();
    return absl::OkStatus();
  }

  const OffsetMap& map_;
  const CleanOptions& options_;
  CleanerTransactions* txns_;
  std::shared_ptr<File> out_;
  CleanResult result_;
  std::string scratch_;
  std::string buffer_;
  uint64_t written_ = 0;
  int64_t last_offset_read_ = -1;
};

}  // namespace

absl::StatusOr<CleanResult> Clean(const std::vector<CompactionSource>& sources,
                                  const OffsetMap& map, const CleanOptions& options,
                                  CleanerTransactions* txns, const std::filesystem::path& output) {
  absl::StatusOr<std::shared_ptr<File>> out = File::Open(output, O_CREAT | O_TRUNC | O_WRONLY);
  if (!out.ok()) return out.status();
  CleanerTransactions local;
  Cleaner cleaner(map, options, txns != nullptr ? txns : &local, *std::move(out));
  if (absl::Status s = cleaner.Run(sources); !s.ok()) {
    (void)RemoveFile(output);  // best effort; the caller ignores stale .cleaned files
    return s;
  }
  return std::move(cleaner.result());
}

}  // namespace runnel::storage
