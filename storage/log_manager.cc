#include "storage/log_manager.h"

#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "protocol/record_batch.h"
#include "protocol/wire.h"
#include "storage/file.h"

namespace runnel::storage {
namespace {

constexpr char kTopicsFile[] = "topics.metadata";
constexpr char kCleanShutdownFile[] = ".kafka_cleanshutdown";
constexpr char kRecoveryPointFile[] = "recovery-point-offset-checkpoint";
constexpr char kLogStartOffsetFile[] = "log-start-offset-checkpoint";
constexpr char kCleanerOffsetFile[] = "cleaner-offset-checkpoint";
constexpr std::string_view kMagic = "RNTM";
constexpr int32_t kVersion = 0;
constexpr char kDeleteSuffix[] = "-delete";

// Keys are stored with int16 lengths.
absl::Status CheckConfigs(const std::map<std::string, std::string>& configs) {
  for (const auto& [key, value] : configs) {
    if (key.size() > 32767 || value.size() > 0x7fffffff) {
      return absl::InvalidArgumentError(
          absl::StrCat("config \"", key.substr(0, 64), "\" too long"));
    }
  }
  return absl::OkStatus();
}

bool ValidTopicName(std::string_view name) {
  if (name.empty() || name.size() > 249 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-';
  });
}

std::string Encode(const std::vector<const TopicMetadata*>& topics) {
  protocol::Writer w;
  w.Raw(kMagic);
  w.Int32(kVersion);
  w.Int32(static_cast<int32_t>(topics.size()));
  for (const TopicMetadata* t : topics) {
    w.Int16(static_cast<int16_t>(t->name.size()));
    w.Raw(t->name);
    w.Raw(t->id.data(), t->id.size());
    w.Int32(t->partitions);
    w.Int32(static_cast<int32_t>(t->configs.size()));
    for (const auto& [key, value] : t->configs) {
      w.Int16(static_cast<int16_t>(key.size()));
      w.Raw(key);
      w.Int32(static_cast<int32_t>(value.size()));
      w.Raw(value);
    }
  }
  w.Uint32(protocol::Crc32c(w.buffer().data(), w.buffer().size()));
  return std::move(w.buffer());
}

absl::StatusOr<std::vector<TopicMetadata>> Decode(std::string_view data,
                                                  const std::filesystem::path& path) {
  auto corrupt = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat(path.string(), ": ", why));
  };
  if (data.size() < kMagic.size() + 12 || data.substr(0, kMagic.size()) != kMagic) {
    return corrupt("not a topics metadata file");
  }
  protocol::Reader crc_reader(data.substr(data.size() - 4));
  if (crc_reader.Uint32() != protocol::Crc32c(data.data(), data.size() - 4)) {
    return corrupt("checksum mismatch");
  }
  protocol::Reader r(data.substr(kMagic.size(), data.size() - kMagic.size() - 4));
  if (r.Int32() != kVersion) return corrupt("unknown version");
  int32_t count = r.Int32();
  std::vector<TopicMetadata> topics;
  std::set<TopicId> ids;
  for (int32_t i = 0; i < count && r.ok(); ++i) {
    TopicMetadata t;
    t.name = std::string(r.Bytes(static_cast<uint16_t>(r.Int16())));
    std::string_view id = r.Bytes(16);
    if (id.size() == 16) std::copy(id.begin(), id.end(), t.id.begin());
    t.partitions = r.Int32();
    int32_t configs = r.Int32();
    for (int32_t j = 0; j < configs && r.ok(); ++j) {
      std::string key(r.Bytes(static_cast<uint16_t>(r.Int16())));
      int32_t value_size = r.Int32();
      if (value_size < 0) r.Fail();
      t.configs[key] = std::string(r.Bytes(static_cast<size_t>(std::max(value_size, 0))));
    }
    if (r.ok() && (!ValidTopicName(t.name) || t.partitions < 1 || !ids.insert(t.id).second ||
                   (!topics.empty() && topics.back().name >= t.name))) {
      return corrupt(absl::StrCat("bad entry for topic \"", t.name, "\""));
    }
    topics.push_back(std::move(t));
  }
  if (!r.ok() || r.remaining() != 0 || count < 0) return corrupt("malformed");
  return topics;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LogManager>> LogManager::Open(std::filesystem::path log_dir,
                                                             ConfigResolver resolve_config) {
  std::unique_ptr<LogManager> manager(
      new LogManager(std::move(log_dir), std::move(resolve_config)));
  if (absl::Status s = manager->Load(); !s.ok()) return s;
  return manager;
}

LogManager::~LogManager() = default;

absl::Status LogManager::Load() {
  if (absl::Status s = CreateDirectories(log_dir_); !s.ok()) return s;
  clean_shutdown_ = PathExists(log_dir_ / kCleanShutdownFile);
  std::filesystem::path path = log_dir_ / kTopicsFile;
  absl::StatusOr<std::string> contents = ReadFileToString(path);
  if (contents.ok()) {
    absl::StatusOr<std::vector<TopicMetadata>> topics = Decode(*contents, path);
    if (!topics.ok()) return topics.status();
    for (TopicMetadata& metadata : *topics) {
      auto topic = std::make_unique<Topic>();
      topic->metadata = std::move(metadata);
      by_id_[topic->metadata.id] = topic.get();
      std::string name = topic->metadata.name;
      topics_[name] = std::move(topic);
    }
  } else if (!absl::IsNotFound(contents.status())) {
    return contents.status();
  }
  // After a clean stop only a failed operation can have left something behind, so that
  // listing (a directory per partition) waits for the background opening.
  if (clean_shutdown_) {
    leftovers_pending_ = true;
  } else if (absl::Status s = RemoveLeftovers(); !s.ok()) {
    return s;
  }
  for (auto& [name, topic] : topics_) {
    if (clean_shutdown_) {
      topic->partitions.resize(static_cast<size_t>(topic->metadata.partitions));
      continue;
    }
    if (absl::Status s = OpenPartitions(*topic, 0, topic->metadata.partitions, /*fresh=*/false);
        !s.ok()) {
      return s;
    }
  }
  if (clean_shutdown_) {
    // Renamed to a temporary file's name rather than unlinked: an unlink frees the
    // file's data block, 0.5 ms of start-up (file systems mounted with discard trim it
    // at once), and the deferred leftover pass removes .tmp files anyway. Not followed
    // by a directory fsync, as in Kafka: a journaling file system commits the rename
    // before any later change to a log file's size, so a crash can not leave the marker
    // beside data written after it, and a fsync here cost up to 80 ms of start-up time.
    std::filesystem::path marker = log_dir_ / kCleanShutdownFile;
    std::filesystem::path removed = marker;
    removed += ".tmp";
    if (absl::Status s = RenameFile(marker, removed); !s.ok()) return s;
  }
  return absl::OkStatus();
}

LogManager::Checkpoints& LogManager::checkpoints() const {
  if (checkpoints_ != nullptr) return *checkpoints_;
  checkpoints_ = std::make_unique<Checkpoints>();
  // An unreadable checkpoint only costs a full recovery, and a lost cleaner checkpoint
  // cleaning again what was clean.
  absl::StatusOr<PartitionOffsets> points = ReadCheckpointFile(log_dir_ / kRecoveryPointFile);
  if (points.ok()) checkpoints_->recovery_points = *std::move(points);
  absl::StatusOr<PartitionOffsets> starts = ReadCheckpointFile(log_dir_ / kLogStartOffsetFile);
  if (starts.ok()) checkpoints_->log_start_offsets = *std::move(starts);
  absl::StatusOr<PartitionOffsets> cleaned = ReadCheckpointFile(log_dir_ / kCleanerOffsetFile);
  if (cleaned.ok()) checkpoints_->cleaner_offsets = *std::move(cleaned);
  return *checkpoints_;
}

LogCheckpoint LogManager::CheckpointOf(const std::string& topic, int32_t partition) const {
  LogCheckpoint c;
  c.clean_shutdown = clean_shutdown_;
  const Checkpoints& read = checkpoints();
  if (auto it = read.recovery_points.find({topic, partition}); it != read.recovery_points.end()) {
    c.recovery_point = it->second;
  }
  if (auto it = read.log_start_offsets.find({topic, partition});
      it != read.log_start_offsets.end()) {
    c.log_start_offset = it->second;
  }
  return c;
}

absl::Status LogManager::RemoveLeftovers() {
  absl::StatusOr<std::vector<std::string>> names = ListDir(log_dir_);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    std::filesystem::path dir = log_dir_ / name;
    // Temporary files of atomic writes a crash interrupted (topics.metadata, checkpoints).
    if (absl::EndsWith(name, ".tmp") && IsRegularFile(dir)) {
      if (absl::Status s = RemoveFile(dir); !s.ok()) return s;
      continue;
    }
    if (absl::EndsWith(name, kDeleteSuffix)) {
      if (absl::Status s = RemoveAll(dir); !s.ok()) return s;
      continue;
    }
    // Directories of interrupted creations and deletions: a clean stop leaves none.
    if (clean_shutdown_ || !IsDirectory(dir)) continue;
    // Only directories that say which topic they belong to are ours to judge.
    absl::StatusOr<TopicId> id = ReadPartitionMetadata(dir);
    if (!id.ok()) continue;
    auto it = by_id_.find(*id);
    if (it != by_id_.end()) {
      const TopicMetadata& t = it->second->metadata;
      absl::string_view rest = name;
      int32_t partition;
      if (absl::ConsumePrefix(&rest, absl::StrCat(t.name, "-")) && !rest.empty() &&
          std::all_of(rest.begin(), rest.end(), absl::ascii_isdigit) &&
          absl::SimpleAtoi(rest, &partition) && partition < t.partitions) {
        continue;
      }
    }
    if (absl::Status s = RemovePartitionDir(dir, *id); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status LogManager::RemovePartitionDir(const std::filesystem::path& dir, const TopicId& id) {
  // Renaming first frees the name at once and lets Open finish an interrupted removal.
  std::string hex;
  for (uint8_t b : id) absl::StrAppend(&hex, absl::Hex(b, absl::kZeroPad2));
  std::filesystem::path doomed = dir;
  doomed += absl::StrCat(".", hex, kDeleteSuffix);
  absl::Status renamed = RenameFile(dir, doomed);
  if (absl::IsNotFound(renamed)) return absl::OkStatus();
  if (!renamed.ok()) return renamed;
  return RemoveAll(doomed);
}

std::filesystem::path LogManager::PartitionDir(const std::string& topic, int32_t partition) const {
  return log_dir_ / absl::StrCat(topic, "-", partition);
}

absl::Status LogManager::OpenPartitions(Topic& topic, int32_t from, int32_t to, bool fresh) {
  const TopicMetadata& t = topic.metadata;
  LogConfig config = resolve_config_(t.configs);
  topic.partitions.resize(static_cast<size_t>(to));
  for (int32_t p = from; p < to; ++p) {
    if (fresh) {
      // A directory of that name is a leftover of an older topic; never adopt its data.
      std::filesystem::path dir = PartitionDir(t.name, p);
      if (PathExists(dir)) {
        if (absl::Status s = RemovePartitionDir(dir, t.id); !s.ok()) return s;
      }
    }
    LogCheckpoint checkpoint = fresh ? LogCheckpoint{} : CheckpointOf(t.name, p);
    if (absl::Status s = OpenPartition(topic, p, config, checkpoint); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status LogManager::OpenPartition(Topic& topic, int32_t p, const LogConfig& config,
                                       const LogCheckpoint& checkpoint) {
  const TopicMetadata& t = topic.metadata;
  std::filesystem::path dir = PartitionDir(t.name, p);
  absl::StatusOr<std::unique_ptr<PartitionLog>> log = PartitionLog::Open(dir, config, checkpoint);
  if (!log.ok()) return log.status();
  absl::StatusOr<TopicId> id = ReadPartitionMetadata(dir);
  if (!id.ok() || *id != t.id) {
    if (absl::Status s = WritePartitionMetadata(dir, t.id); !s.ok()) return s;
  }
  topic.partitions[static_cast<size_t>(p)] = *std::move(log);
  return absl::OkStatus();
}

PartitionLog* LogManager::OpenDeferred(Topic& topic, int32_t p) {
  absl::Status s = OpenPartition(topic, p, resolve_config_(topic.metadata.configs),
                                 CheckpointOf(topic.metadata.name, p));
  if (!s.ok()) {
    SetOffline(s);
    return nullptr;
  }
  return topic.partitions[static_cast<size_t>(p)].get();
}

bool LogManager::OpenDeferredPartitions(size_t max) {
  if (leftovers_pending_) {
    leftovers_pending_ = false;
    if (absl::Status s = RemoveLeftovers(); !s.ok()) SetOffline(s);
  }
  bool remaining = false;
  for (auto& [name, topic] : topics_) {
    for (size_t p = 0; p < topic->partitions.size(); ++p) {
      if (topic->partitions[p] != nullptr) continue;
      if (max == 0 || offline()) {
        remaining = true;
        break;
      }
      --max;
      OpenDeferred(*topic, static_cast<int32_t>(p));
    }
  }
  return remaining && !offline();
}

absl::Status LogManager::Persist(const std::vector<const TopicMetadata*>& topics) {
  return WriteFileAtomically(log_dir_ / kTopicsFile, Encode(topics));
}

absl::Status LogManager::PersistWith(const TopicMetadata& changed, bool remove) {
  std::map<std::string, const TopicMetadata*> view;
  for (const auto& [name, topic] : topics_) view[name] = &topic->metadata;
  if (remove) {
    view.erase(changed.name);
  } else {
    view[changed.name] = &changed;
  }
  std::vector<const TopicMetadata*> list;
  for (const auto& [name, t] : view) list.push_back(t);
  return Persist(list);
}

absl::StatusOr<TopicId> LogManager::NewTopicId() const {
  static constexpr TopicId kZero{};
  static constexpr TopicId kMetadataTopicId{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  for (;;) {
    TopicId id;
    if (::getrandom(id.data(), id.size(), 0) != static_cast<ssize_t>(id.size())) {
      return ErrnoError("getrandom", log_dir_, errno);
    }
    id[6] = static_cast<uint8_t>((id[6] & 0x0f) | 0x40);  // version 4
    id[8] = static_cast<uint8_t>((id[8] & 0x3f) | 0x80);  // IETF variant
    // Kafka's Uuid.randomUuid() also refuses ids whose string starts with '-', which
    // command-line tools would take for an option.
    if (id != kZero && id != kMetadataTopicId && TopicIdToString(id)[0] != '-' &&
        !by_id_.contains(id)) {
      return id;
    }
  }
}

absl::StatusOr<const TopicMetadata*> LogManager::CreateTopic(
    const std::string& name, int32_t partitions, std::map<std::string, std::string> configs) {
  if (!ValidTopicName(name)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid topic name \"", name, "\""));
  }
  if (partitions < 1) return absl::InvalidArgumentError("partitions must be at least 1");
  if (absl::Status s = CheckConfigs(configs); !s.ok()) return s;
  if (topics_.contains(name)) {
    return absl::AlreadyExistsError(absl::StrCat("topic \"", name, "\" already exists"));
  }
  absl::StatusOr<TopicId> id = NewTopicId();
  if (!id.ok()) return id.status();
  auto topic = std::make_unique<Topic>();
  topic->metadata = TopicMetadata{name, *id, partitions, std::move(configs)};
  if (absl::Status s = PersistWith(topic->metadata, /*remove=*/false); !s.ok()) return s;
  absl::Status s = OpenPartitions(*topic, 0, partitions, /*fresh=*/true);
  if (s.ok()) s = SyncDir(log_dir_);
  if (!s.ok()) {
    topic->partitions.clear();
    for (int32_t p = 0; p < partitions; ++p) (void)RemovePartitionDir(PartitionDir(name, p), *id);
    (void)PersistWith(topic->metadata, /*remove=*/true);
    return s;
  }
  const TopicMetadata* result = &topic->metadata;
  by_id_[*id] = topic.get();
  topics_[name] = std::move(topic);
  return result;
}

absl::Status LogManager::DeleteTopic(const std::string& name) {
  auto it = topics_.find(name);
  if (it == topics_.end()) {
    return absl::NotFoundError(absl::StrCat("topic \"", name, "\" does not exist"));
  }
  if (absl::Status s = PersistWith(it->second->metadata, /*remove=*/true); !s.ok()) return s;
  std::unique_ptr<Topic> topic = std::move(it->second);
  topics_.erase(it);
  by_id_.erase(topic->metadata.id);
  // The topic is gone once the metadata is written; a failure below leaves directories
  // that the next Open removes.
  topic->partitions.clear();
  absl::Status status;
  for (int32_t p = 0; p < topic->metadata.partitions; ++p) {
    status.Update(RemovePartitionDir(PartitionDir(name, p), topic->metadata.id));
  }
  status.Update(SyncDir(log_dir_));
  return status;
}

absl::Status LogManager::AddPartitions(const std::string& name, int32_t new_total) {
  auto it = topics_.find(name);
  if (it == topics_.end()) {
    return absl::NotFoundError(absl::StrCat("topic \"", name, "\" does not exist"));
  }
  Topic& topic = *it->second;
  const int32_t old_total = topic.metadata.partitions;
  if (new_total <= old_total) {
    return absl::InvalidArgumentError(absl::StrCat("topic \"", name, "\" already has ", old_total,
                                                   " partitions, not fewer than ", new_total));
  }
  TopicMetadata changed = topic.metadata;
  changed.partitions = new_total;
  if (absl::Status s = PersistWith(changed, /*remove=*/false); !s.ok()) return s;
  absl::Status s = OpenPartitions(topic, old_total, new_total, /*fresh=*/true);
  if (s.ok()) s = SyncDir(log_dir_);
  if (!s.ok()) {
    topic.partitions.resize(static_cast<size_t>(old_total));
    for (int32_t p = old_total; p < new_total; ++p) {
      (void)RemovePartitionDir(PartitionDir(name, p), topic.metadata.id);
    }
    (void)PersistWith(topic.metadata, /*remove=*/false);
    return s;
  }
  topic.metadata.partitions = new_total;
  return absl::OkStatus();
}

absl::Status LogManager::SetTopicConfigs(const std::string& name,
                                         std::map<std::string, std::string> configs) {
  auto it = topics_.find(name);
  if (it == topics_.end()) {
    return absl::NotFoundError(absl::StrCat("topic \"", name, "\" does not exist"));
  }
  if (absl::Status s = CheckConfigs(configs); !s.ok()) return s;
  Topic& topic = *it->second;
  TopicMetadata changed = topic.metadata;
  changed.configs = std::move(configs);
  if (absl::Status s = PersistWith(changed, /*remove=*/false); !s.ok()) return s;
  topic.metadata.configs = std::move(changed.configs);
  LogConfig config = resolve_config_(topic.metadata.configs);
  for (auto& partition : topic.partitions) {
    if (partition != nullptr) partition->SetConfig(config);  // deferred ones resolve at open
  }
  return absl::OkStatus();
}

void LogManager::ReapplyConfigs() {
  for (auto& [name, topic] : topics_) {
    LogConfig config = resolve_config_(topic->metadata.configs);
    for (auto& partition : topic->partitions) {
      if (partition != nullptr) partition->SetConfig(config);
    }
  }
}

const TopicMetadata* LogManager::FindTopic(const std::string& name) const {
  auto it = topics_.find(name);
  return it == topics_.end() ? nullptr : &it->second->metadata;
}

const TopicMetadata* LogManager::FindTopicById(const std::array<uint8_t, 16>& id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &it->second->metadata;
}

std::vector<const TopicMetadata*> LogManager::Topics() const {
  std::vector<const TopicMetadata*> list;
  for (const auto& [name, topic] : topics_) list.push_back(&topic->metadata);
  return list;
}

PartitionLog* LogManager::Partition(const std::string& topic, int32_t partition) {
  auto it = topics_.find(topic);
  if (it == topics_.end() || partition < 0 ||
      static_cast<size_t>(partition) >= it->second->partitions.size()) {
    return nullptr;
  }
  PartitionLog* log = it->second->partitions[static_cast<size_t>(partition)].get();
  return log != nullptr ? log : OpenDeferred(*it->second, partition);
}

void LogManager::ForEachPartition(
    const std::function<void(const std::string&, int32_t, PartitionLog&)>& fn) {
  OpenDeferredPartitions(SIZE_MAX);
  ForEachOpenPartition(fn);
}

void LogManager::ForEachOpenPartition(
    const std::function<void(const std::string&, int32_t, PartitionLog&)>& fn) const {
  for (const auto& [name, topic] : topics_) {
    for (size_t p = 0; p < topic->partitions.size(); ++p) {
      if (topic->partitions[p] != nullptr) fn(name, static_cast<int32_t>(p), *topic->partitions[p]);
    }
  }
}

PartitionOffsets LogManager::OfUnopenedPartitions(const PartitionOffsets& read_at_open) const {
  PartitionOffsets out;
  for (const auto& [key, offset] : read_at_open) {
    const auto& [topic, p] = key;
    auto it = topics_.find(topic);
    if (it != topics_.end() && p >= 0 && static_cast<size_t>(p) < it->second->partitions.size() &&
        it->second->partitions[static_cast<size_t>(p)] == nullptr) {
      out[key] = offset;
    }
  }
  return out;
}

absl::Status LogManager::WriteRecoveryPointCheckpoint() {
  // A log never opened keeps what the file said.
  PartitionOffsets points = OfUnopenedPartitions(checkpoints().recovery_points);
  ForEachOpenPartition([&](const std::string& topic, int32_t p, PartitionLog& log) {
    points[{topic, p}] = log.recovery_point();
  });
  return WriteCheckpointFile(log_dir_ / kRecoveryPointFile, points);
}

absl::Status LogManager::WriteLogStartOffsetCheckpoint() {
  PartitionOffsets starts = OfUnopenedPartitions(checkpoints().log_start_offsets);
  ForEachOpenPartition([&](const std::string& topic, int32_t p, PartitionLog& log) {
    if (log.log_start_offset() > log.first_segment_base()) {
      starts[{topic, p}] = log.log_start_offset();
    }
  });
  return WriteCheckpointFile(log_dir_ / kLogStartOffsetFile, starts);
}

int64_t LogManager::CleanerOffset(const std::string& topic, int32_t partition) const {
  const PartitionOffsets& cleaned = checkpoints().cleaner_offsets;
  auto it = cleaned.find({topic, partition});
  return it == cleaned.end() ? 0 : it->second;
}

absl::Status LogManager::SetCleanerOffset(const std::string& topic, int32_t partition,
                                          int64_t offset) {
  PartitionOffsets& cleaned = checkpoints().cleaner_offsets;
  cleaned[{topic, partition}] = offset;
  // Entries of deleted topics go with the next write.
  for (auto it = cleaned.begin(); it != cleaned.end();) {
    it = Partition(it->first.first, it->first.second) ? std::next(it) : cleaned.erase(it);
  }
  return WriteCheckpointFile(log_dir_ / kCleanerOffsetFile, cleaned);
}

void LogManager::SetOffline(absl::Status cause) {
  if (offline_cause_.ok()) offline_cause_ = std::move(cause);
}

absl::Status LogManager::Close() {
  absl::Status status;
  for (auto& [name, topic] : topics_) {
    for (auto& partition : topic->partitions) {
      if (partition != nullptr) status.Update(partition->Close());
    }
  }
  if (offline()) return status;
  // Closed logs report their end offset as recovery point and keep their start offset.
  status.Update(WriteRecoveryPointCheckpoint());
  status.Update(WriteLogStartOffsetCheckpoint());
  if (status.ok()) {
    status =
        WriteFileAtomically(log_dir_ / kCleanShutdownFile, "{\"version\":0,\"brokerEpoch\":-1}");
  }
  return status;
}

}  // namespace runnel::storage
