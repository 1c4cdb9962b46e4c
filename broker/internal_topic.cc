#include "broker/internal_topic.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "storage/file.h"

namespace runnel::broker {
namespace {

absl::Status ReadRange(const storage::FileRange& range, const std::string& topic,
                       std::string* out) {
  out->resize(range.length);
  size_t done = 0;
  while (done < range.length) {
    ssize_t n = pread(range.fd, out->data() + done, range.length - done,
                      static_cast<off_t>(range.position + done));
    if (n <= 0) return absl::DataLossError(absl::StrCat("short read of ", topic));
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

std::filesystem::path InternalTopic::PartitionDir(int32_t partition) const {
  return log_dir_ / absl::StrCat(topic_, "-", partition);
}

absl::Status InternalTopic::Load(bool clean_shutdown, const ReplayFn& apply) {
  storage::LogCheckpoint checkpoint;
  checkpoint.clean_shutdown = clean_shutdown;
  logs_.clear();
  logs_.resize(static_cast<size_t>(partitions_));
  for (int32_t p = 0; p < partitions_; ++p) {
    // As in Kafka, a partition exists once a key has used it.
    if (!storage::IsDirectory(PartitionDir(p))) continue;
    auto log = storage::PartitionLog::Open(PartitionDir(p), config_, checkpoint);
    if (!log.ok()) return log.status();
    logs_[static_cast<size_t>(p)] = std::move(*log);
  }
  std::string buffer, scratch;
  for (int32_t p = 0; p < partitions_; ++p) {
    storage::PartitionLog* log = logs_[static_cast<size_t>(p)].get();
    if (log == nullptr) continue;
    int64_t offset = log->log_start_offset();
    while (offset < log->log_end_offset()) {
      auto read = log->Read(offset, 1 << 20, /*min_one_batch=*/true);
      if (!read.ok()) return read.status();
      if (read->bytes == 0) break;
      std::string data;
      for (const storage::FileRange& range : read->ranges) {
        if (absl::Status s = ReadRange(range, topic_, &buffer); !s.ok()) return s;
        data += buffer;
      }
      protocol::BatchIterator batches(data);
      std::string_view batch;
      protocol::BatchHeader header;
      int64_t next = offset;
      while (batches.Next(&batch, &header)) {
        auto records = protocol::ReadRecords(batch, &scratch);
        if (!records.ok()) return records.status();
        // The log start offset may fall inside the first batch (DeleteRecords).
        std::erase_if(*records, [offset](const protocol::Record& r) { return r.offset < offset; });
        apply(p, header, *records);
        next = header.base_offset + header.last_offset_delta + 1;
      }
      if (next <= offset) return absl::DataLossError(absl::StrCat("cannot read ", topic_));
      offset = next;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<storage::PartitionLog*> InternalTopic::Log(int32_t partition) {
  if (partition < 0 || partition >= partitions_) {
    return absl::InvalidArgumentError(
        absl::StrCat("no partition ", partition, " in internal topic ", topic_));
  }
  std::unique_ptr<storage::PartitionLog>& slot = logs_[static_cast<size_t>(partition)];
  if (slot == nullptr) {
    auto created = storage::PartitionLog::Open(PartitionDir(partition), config_);
    if (!created.ok()) return created.status();
    slot = std::move(*created);
  }
  return slot.get();
}

absl::StatusOr<storage::AppendInfo> InternalTopic::Append(int32_t partition, std::string batch,
                                                          storage::AppendOrigin origin) {
  auto log = Log(partition);
  if (!log.ok()) return log.status();
  return (*log)->Append(batch.data(), batch.size(), origin);
}

absl::Status InternalTopic::Close() {
  absl::Status result;
  for (auto& log : logs_) {
    if (log != nullptr) result.Update(log->Close());
  }
  logs_.clear();
  logs_.resize(static_cast<size_t>(partitions_));
  return result;
}

void InternalTopic::ForEachLog(
    const std::function<void(int32_t, storage::PartitionLog&)>& fn) const {
  for (size_t p = 0; p < logs_.size(); ++p) {
    if (logs_[p] != nullptr) fn(static_cast<int32_t>(p), *logs_[p]);
  }
}

}  // namespace runnel::broker
