#include "broker/group_store.h"

#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "protocol/record_batch.h"
#include "protocol/wire.h"

namespace runnel::broker {
namespace {

constexpr int16_t kOffsetCommitKeyVersion = 1;
constexpr int16_t kGroupMetadataKeyVersion = 2;
constexpr int16_t kOffsetCommitValueVersion = 3;
constexpr int16_t kGroupMetadataValueVersion = 3;

std::string OffsetKey(const std::string& group, const std::string& topic, int32_t partition) {
  protocol::Writer w;
  w.Int16(kOffsetCommitKeyVersion);
  w.String(group, false);
  w.String(topic, false);
  w.Int32(partition);
  return std::move(w.buffer());
}

std::string OffsetValue(const CommittedOffset& v) {
  protocol::Writer w;
  w.Int16(kOffsetCommitValueVersion);
  w.Int64(v.offset);
  w.Int32(v.leader_epoch);
  w.String(v.metadata, false);
  w.Int64(v.commit_timestamp);
  return std::move(w.buffer());
}

std::string GroupKey(const std::string& group) {
  protocol::Writer w;
  w.Int16(kGroupMetadataKeyVersion);
  w.String(group, false);
  return std::move(w.buffer());
}

std::string GroupValue(const StoredGroup& g) {
  protocol::Writer w;
  w.Int16(kGroupMetadataValueVersion);
  w.String(g.protocol_type, false);
  w.Int32(g.generation);
  w.NullableString(g.protocol, false);
  w.NullableString(g.leader, false);
  w.Int64(g.state_timestamp);
  w.Int32(static_cast<int32_t>(g.members.size()));
  for (const StoredMember& m : g.members) {
    w.String(m.member_id, false);
    w.NullableString(m.group_instance_id, false);
    w.String(m.client_id, false);
    w.String(m.client_host, false);
    w.Int32(m.rebalance_timeout_ms);
    w.Int32(m.session_timeout_ms);
    w.ByteString(m.subscription, false);
    w.ByteString(m.assignment, false);
  }
  return std::move(w.buffer());
}

// Decodes one record; false if it is not one of ours (skipped, as Kafka skips unknown
// key versions).
bool DecodeRecord(std::string_view key, std::optional<std::string_view> value, GroupRecord* out) {
  protocol::Reader k(key);
  int16_t key_version = k.Int16();
  out->group = k.String(false);
  if (key_version == 0 || key_version == kOffsetCommitKeyVersion) {
    out->topic = k.String(false);
    out->partition = k.Int32();
    if (!k.ok()) return false;
    if (!value) return true;
    protocol::Reader v(*value);
    int16_t version = v.Int16();
    CommittedOffset c;
    c.offset = v.Int64();
    if (version >= 3) c.leader_epoch = v.Int32();
    c.metadata = v.String(false);
    c.commit_timestamp = v.Int64();
    if (!v.ok()) return false;
    out->offset = std::move(c);
    return true;
  }
  if (key_version != kGroupMetadataKeyVersion || !k.ok()) return false;
  if (!value) return true;
  protocol::Reader v(*value);
  int16_t version = v.Int16();
  if (version != kGroupMetadataValueVersion) return false;
  StoredGroup g;
  g.protocol_type = v.String(false);
  g.generation = v.Int32();
  g.protocol = v.NullableString(false);
  g.leader = v.NullableString(false);
  g.state_timestamp = v.Int64();
  int32_t n = v.Int32();
  for (int32_t i = 0; i < n && v.ok(); ++i) {
    StoredMember m;
    m.member_id = v.String(false);
    m.group_instance_id = v.NullableString(false);
    m.client_id = v.String(false);
    m.client_host = v.String(false);
    m.rebalance_timeout_ms = v.Int32();
    m.session_timeout_ms = v.Int32();
    m.subscription = v.ByteString(false);
    m.assignment = v.ByteString(false);
    g.members.push_back(std::move(m));
  }
  if (!v.ok()) return false;
  out->metadata = std::move(g);
  return true;
}

absl::Status ReadRange(const storage::FileRange& range, std::string* out) {
  out->resize(range.length);
  size_t done = 0;
  while (done < range.length) {
    ssize_t n = pread(range.fd, out->data() + done, range.length - done,
                      static_cast<off_t>(range.position + done));
    if (n <= 0) return absl::DataLossError("short read of __consumer_offsets");
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

int32_t JavaStringHashCode(const std::string& s) {
  // Decode UTF-8 to UTF-16 code units, as Java strings hold them.
  uint32_t h = 0;
  auto add = [&h](uint32_t unit) { h = 31 * h + unit; };
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    uint32_t cp;
    size_t len;
    if (c < 0x80) {
      cp = c, len = 1;
    } else if ((c >> 5) == 6 && i + 1 < s.size()) {
      cp = ((c & 0x1f) << 6) | (s[i + 1] & 0x3f), len = 2;
    } else if ((c >> 4) == 14 && i + 2 < s.size()) {
      cp = ((c & 0x0f) << 12) | ((s[i + 1] & 0x3f) << 6) | (s[i + 2] & 0x3f), len = 3;
    } else if ((c >> 3) == 30 && i + 3 < s.size()) {
      cp = ((c & 0x07) << 18) | ((s[i + 1] & 0x3f) << 12) | ((s[i + 2] & 0x3f) << 6) |
           (s[i + 3] & 0x3f);
      len = 4;
    } else {
      cp = 0xfffd, len = 1;
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      add(0xd800 + (cp >> 10));
      add(0xdc00 + (cp & 0x3ff));
    } else {
      add(cp);
    }
    i += len;
  }
  return static_cast<int32_t>(h);
}

namespace {

// Kafka's settings for __consumer_offsets: compacted (offsets.topic.segment.bytes).
storage::LogConfig OffsetsTopicLogConfig() {
  storage::LogConfig c;
  c.delete_policy = false;
  c.compact_policy = true;
  c.segment_bytes = 104857600;
  return c;
}

}  // namespace

int32_t GroupStore::PartitionFor(const std::string& group) const {
  int64_t h = JavaStringHashCode(group);
  return static_cast<int32_t>(std::llabs(h) % partitions_);
}

absl::Status GroupStore::Load(bool clean_shutdown,
                              const std::function<void(const GroupRecord&)>& apply) {
  storage::LogCheckpoint checkpoint;
  checkpoint.clean_shutdown = clean_shutdown;
  logs_.resize(static_cast<size_t>(partitions_));
  for (int32_t p = 0; p < partitions_; ++p) {
    // As in Kafka, a partition exists once a group has used it.
    if (!storage::IsDirectory(PartitionDir(p))) continue;
    auto log = storage::PartitionLog::Open(PartitionDir(p), OffsetsTopicLogConfig(), checkpoint);
    if (!log.ok()) return log.status();
    logs_[static_cast<size_t>(p)] = std::move(*log);
  }
  std::string buffer, scratch;
  for (auto& log : logs_) {
    if (log == nullptr) continue;
    int64_t offset = log->log_start_offset();
    while (offset < log->log_end_offset()) {
      auto read = log->Read(offset, 1 << 20, /*min_one_batch=*/true);
      if (!read.ok()) return read.status();
      if (read->bytes == 0) break;
      std::string data;
      for (const storage::FileRange& range : read->ranges) {
        if (absl::Status s = ReadRange(range, &buffer); !s.ok()) return s;
        data += buffer;
      }
      protocol::BatchIterator batches(data);
      std::string_view batch;
      protocol::BatchHeader header;
      int64_t next = offset;
      while (batches.Next(&batch, &header)) {
        auto records = protocol::ReadRecords(batch, &scratch);
        if (!records.ok()) return records.status();
        for (const protocol::Record& r : *records) {
          if (r.offset < offset || !r.key) continue;
          GroupRecord rec;
          if (DecodeRecord(*r.key, r.value, &rec)) apply(rec);
        }
        next = header.base_offset + header.last_offset_delta + 1;
      }
      if (next <= offset) return absl::DataLossError("cannot read __consumer_offsets");
      offset = next;
    }
  }
  return absl::OkStatus();
}

std::filesystem::path GroupStore::PartitionDir(int32_t partition) const {
  return log_dir_ / absl::StrCat(kConsumerOffsetsTopic, "-", partition);
}

absl::Status GroupStore::Append(const std::string& group, std::string batch) {
  int32_t p = PartitionFor(group);
  std::unique_ptr<storage::PartitionLog>& slot = logs_.at(static_cast<size_t>(p));
  if (slot == nullptr) {
    auto created = storage::PartitionLog::Open(PartitionDir(p), OffsetsTopicLogConfig());
    if (!created.ok()) return created.status();
    slot = std::move(*created);
  }
  storage::PartitionLog* log = slot.get();
  auto appended = log->Append(batch.data(), batch.size());
  return appended.ok() ? absl::OkStatus() : appended.status();
}

absl::Status GroupStore::AppendOffsets(
    const std::string& group,
    const std::vector<std::pair<std::pair<std::string, int32_t>, std::optional<CommittedOffset>>>&
        offsets) {
  if (offsets.empty()) return absl::OkStatus();
  std::vector<protocol::RecordToAdd> records;
  int64_t now = absl::ToUnixMillis(absl::Now());
  for (const auto& [tp, value] : offsets) {
    protocol::RecordToAdd r;
    r.key = OffsetKey(group, tp.first, tp.second);
    if (value) r.value = OffsetValue(*value);
    r.timestamp = now;
    records.push_back(std::move(r));
  }
  return Append(group, protocol::BuildBatch(records));
}

absl::Status GroupStore::AppendGroup(const std::string& group,
                                     const std::optional<StoredGroup>& value) {
  protocol::RecordToAdd r;
  r.key = GroupKey(group);
  if (value) r.value = GroupValue(*value);
  r.timestamp = absl::ToUnixMillis(absl::Now());
  return Append(group, protocol::BuildBatch({r}));
}

absl::Status GroupStore::Close() {
  absl::Status result;
  for (auto& log : logs_) {
    if (log != nullptr) result.Update(log->Close());
  }
  logs_.clear();
  return result;
}

}  // namespace runnel::broker
