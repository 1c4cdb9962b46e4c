#include "broker/group_store.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "protocol/control_record.h"
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

GroupStore::GroupStore(std::filesystem::path log_dir, int32_t partitions)
    : partitions_(partitions),
      topic_(std::move(log_dir), kConsumerOffsetsTopic, partitions, OffsetsTopicLogConfig()) {}

int32_t GroupStore::PartitionFor(const std::string& group) const {
  int64_t h = JavaStringHashCode(group);
  return static_cast<int32_t>(std::llabs(h) % partitions_);
}

absl::Status GroupStore::Load(bool clean_shutdown,
                              const std::function<void(const GroupRecord&)>& apply) {
  return topic_.Load(clean_shutdown,
                     [&apply](int32_t partition, const protocol::BatchHeader& header,
                              const std::vector<protocol::Record>& records) {
                       for (const protocol::Record& r : records) {
                         if (!r.key) continue;
                         GroupRecord rec;
                         rec.store_partition = partition;
                         if (header.is_transactional()) rec.producer_id = header.producer_id;
                         if (header.is_control()) {
                           std::optional<protocol::EndTxnMarker> marker =
                               protocol::ParseEndTxnMarkerRecord(*r.key, r.value);
                           if (!marker) continue;
                           rec.txn_marker = marker->type == protocol::ControlRecordType::kCommit;
                           apply(rec);
                         } else if (DecodeRecord(*r.key, r.value, &rec)) {
                           apply(rec);
                         }
                       }
                     });
}

absl::Status GroupStore::Append(const std::string& group, std::string batch,
                                storage::AppendOrigin origin) {
  auto appended = topic_.Append(PartitionFor(group), std::move(batch), origin);
  return appended.ok() ? absl::OkStatus() : appended.status();
}

namespace {

std::vector<protocol::RecordToAdd> OffsetRecords(
    const std::string& group,
    const std::vector<std::pair<std::pair<std::string, int32_t>, std::optional<CommittedOffset>>>&
        offsets) {
  std::vector<protocol::RecordToAdd> records;
  int64_t now = absl::ToUnixMillis(absl::Now());
  for (const auto& [tp, value] : offsets) {
    protocol::RecordToAdd r;
    r.key = OffsetKey(group, tp.first, tp.second);
    if (value) r.value = OffsetValue(*value);
    r.timestamp = now;
    records.push_back(std::move(r));
  }
  return records;
}

}  // namespace

absl::Status GroupStore::AppendOffsets(
    const std::string& group,
    const std::vector<std::pair<std::pair<std::string, int32_t>, std::optional<CommittedOffset>>>&
        offsets) {
  if (offsets.empty()) return absl::OkStatus();
  return Append(group, protocol::BuildBatch(OffsetRecords(group, offsets)));
}

absl::Status GroupStore::AppendTxnOffsets(
    const std::string& group, int64_t producer_id, int16_t producer_epoch,
    const std::vector<std::pair<std::pair<std::string, int32_t>, std::optional<CommittedOffset>>>&
        offsets) {
  if (offsets.empty()) return absl::OkStatus();
  protocol::BatchOptions options;
  options.producer_id = producer_id;
  options.producer_epoch = producer_epoch;
  options.transactional = true;
  return Append(group, protocol::BuildBatch(OffsetRecords(group, offsets), options),
                storage::AppendOrigin::kCoordinator);
}

absl::Status GroupStore::AppendTxnMarker(int32_t partition, int64_t producer_id,
                                         int16_t producer_epoch, int32_t coordinator_epoch,
                                         bool commit) {
  absl::StatusOr<storage::PartitionLog*> log = topic_.Log(partition);
  if (!log.ok()) return log.status();
  protocol::EndTxnMarker marker{
      commit ? protocol::ControlRecordType::kCommit : protocol::ControlRecordType::kAbort,
      coordinator_epoch};
  auto appended =
      (*log)->AppendTxnMarker(producer_id, producer_epoch, marker, absl::ToUnixMillis(absl::Now()));
  return appended.ok() ? absl::OkStatus() : appended.status();
}

absl::Status GroupStore::AppendGroup(const std::string& group,
                                     const std::optional<StoredGroup>& value) {
  protocol::RecordToAdd r;
  r.key = GroupKey(group);
  if (value) r.value = GroupValue(*value);
  r.timestamp = absl::ToUnixMillis(absl::Now());
  return Append(group, protocol::BuildBatch({r}));
}

absl::Status GroupStore::Close() { return topic_.Close(); }

}  // namespace runnel::broker
