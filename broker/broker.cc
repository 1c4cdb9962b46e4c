#include "broker/broker.h"

#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "broker/log.h"
#include "broker/properties.h"
#include "broker/topic_config.h"

namespace runnel::broker {
namespace {

using protocol::ErrorCode;

std::string RandomBase64Uuid() {
  std::random_device rd;
  std::string bytes(16, '\0');
  for (auto& b : bytes) b = static_cast<char>(rd());
  bytes[6] = static_cast<char>((bytes[6] & 0x0f) | 0x40);  // version 4
  bytes[8] = static_cast<char>((bytes[8] & 0x3f) | 0x80);
  return absl::WebSafeBase64Escape(bytes);  // 22 characters, no padding: Kafka's form
}

// meta.properties as KRaft brokers write it; keeps cluster.id stable across restarts.
absl::StatusOr<std::string> LoadOrCreateClusterId(const std::filesystem::path& dir,
                                                  const BrokerConfig& config) {
  std::filesystem::path path = dir / "meta.properties";
  if (std::filesystem::exists(path)) {
    auto props = ReadPropertiesFile(path.string());
    if (!props.ok()) return props.status();
    if (auto it = props->find("cluster.id"); it != props->end()) return it->second;
  }
  std::string cluster_id = config.cluster_id.empty() ? RandomBase64Uuid() : config.cluster_id;
  std::string tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "#\n#Written by Runnel\ncluster.id=" << cluster_id
        << "\ndirectory.id=" << RandomBase64Uuid() << "\nnode.id=" << config.node_id
        << "\nversion=1\n";
    if (!out) return absl::InternalError("cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::InternalError("cannot write " + path.string() + ": " + ec.message());
  return cluster_id;
}

// Kafka's Topic.validate.
std::string InvalidTopicNameReason(const std::string& name) {
  if (name.empty()) return "Topic name is illegal, it can't be empty";
  if (name == "." || name == "..") return "Topic name cannot be \".\" or \"..\"";
  if (name.size() > 249) {
    return "Topic name is illegal, it can't be longer than 249 characters, topic name: " + name;
  }
  for (char c : name) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return "Topic name \"" + name +
             "\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' "
             "and '-'";
    }
  }
  return "";
}

}  // namespace

absl::StatusOr<std::unique_ptr<Broker>> Broker::Open(const BrokerConfig& config,
                                                     asio::io_context* io) {
  std::unique_ptr<Broker> broker(new Broker(config, io));
  if (config.log_dirs.empty()) return absl::InvalidArgumentError("log.dirs is empty");
  std::filesystem::path dir = config.log_dirs.front();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError("cannot create log dir " + dir.string() + ": " + ec.message());
  auto cluster_id = LoadOrCreateClusterId(dir, config);
  if (!cluster_id.ok()) return cluster_id.status();
  broker->cluster_id_ = *cluster_id;
  const BrokerConfig* cfg = &broker->config_;
  auto logs = storage::LogManager::Open(dir, [cfg](const std::map<std::string, std::string>& c) {
    return ResolveLogConfig(*cfg, c);
  });
  if (!logs.ok()) return logs.status();
  broker->logs_ = std::move(*logs);
  broker->groups_ = std::make_unique<GroupCoordinator>(
      io, GroupCoordinatorConfig::FromProperties(config.properties), dir);
  if (absl::Status s = broker->groups_->Load(); !s.ok()) return s;
  broker->storage_tasks_ = std::make_unique<StorageTasks>(broker.get(), io);
  broker->storage_tasks_->Start();
  return broker;
}

TopicResult Broker::CreateTopic(const std::string& name, int32_t partitions,
                                int16_t replication_factor,
                                const std::map<std::string, std::string>& configs,
                                bool validate_only) {
  if (std::string why = InvalidTopicNameReason(name); !why.empty()) {
    return {ErrorCode::kInvalidTopicException, why};
  }
  if (logs_->FindTopic(name) != nullptr || name == kConsumerOffsetsTopic) {
    return {ErrorCode::kTopicAlreadyExists, "Topic '" + name + "' already exists."};
  }
  if (partitions == -1) partitions = config_.num_partitions;
  if (partitions <= 0) {
    return {ErrorCode::kInvalidPartitions,
            "Number of partitions was set to an invalid non-positive value."};
  }
  if (replication_factor == -1) replication_factor = config_.default_replication_factor;
  if (replication_factor <= 0) {
    return {ErrorCode::kInvalidReplicationFactor,
            "Replication factor must be larger than 0, or -1 to use the default value."};
  }
  if (replication_factor > 1) {
    return {ErrorCode::kInvalidReplicationFactor,
            absl::StrCat("Unable to replicate the partition ", replication_factor,
                         " time(s): The target replication factor of ", replication_factor,
                         " cannot be reached because only 1 broker(s) are registered.")};
  }
  if (absl::Status s = ValidateTopicConfigs(configs); !s.ok()) {
    return {ErrorCode::kInvalidConfig, std::string(s.message())};
  }
  if (validate_only) return {};
  auto topic = logs_->CreateTopic(name, partitions, configs);
  if (!topic.ok()) return {ErrorCode::kKafkaStorageError, std::string(topic.status().message())};
  return {ErrorCode::kNone, "", *topic};
}

TopicResult Broker::DeleteTopic(const std::string& name) {
  if (!config_.delete_topic_enable) {
    return {ErrorCode::kTopicDeletionDisabled, "Topic deletion is disabled."};
  }
  if (logs_->FindTopic(name) == nullptr) {
    return {ErrorCode::kUnknownTopicOrPartition, "This server does not host this topic-partition."};
  }
  if (absl::Status s = logs_->DeleteTopic(name); !s.ok()) {
    return {ErrorCode::kKafkaStorageError, std::string(s.message())};
  }
  return {};
}

TopicResult Broker::CreatePartitions(const std::string& name, int32_t count, bool validate_only) {
  const storage::TopicMetadata* topic = logs_->FindTopic(name);
  if (topic == nullptr) {
    return {ErrorCode::kUnknownTopicOrPartition, "This server does not host this topic-partition."};
  }
  if (count < topic->partitions) {
    return {ErrorCode::kInvalidPartitions,
            absl::StrCat("Topic currently has ", topic->partitions,
                         " partitions, which is higher than the requested ", count, ".")};
  }
  if (count == topic->partitions) {
    return {ErrorCode::kInvalidPartitions,
            absl::StrCat("Topic already has ", topic->partitions, " partitions.")};
  }
  if (validate_only) return {};
  if (absl::Status s = logs_->AddPartitions(name, count); !s.ok()) {
    return {ErrorCode::kKafkaStorageError, std::string(s.message())};
  }
  return {ErrorCode::kNone, "", logs_->FindTopic(name)};
}

std::pair<ErrorCode, int64_t> Broker::DeleteRecords(const std::string& topic, int32_t partition,
                                                    int64_t offset) {
  storage::PartitionLog* log =
      topic == kConsumerOffsetsTopic ? nullptr : logs_->Partition(topic, partition);
  if (log == nullptr) return {ErrorCode::kUnknownTopicOrPartition, -1};
  if (logs_->offline()) return {ErrorCode::kKafkaStorageError, -1};
  // Kafka's Partition.deleteRecordsOnLeader: only logs with the delete policy; -1 is the
  // high watermark; nothing below 0 or beyond the high watermark.
  if (!log->config().delete_policy) {
    return {ErrorCode::kPolicyViolation, -1};
  }
  if (offset == -1) offset = log->log_end_offset();
  if (offset < 0 || offset > log->log_end_offset()) return {ErrorCode::kOffsetOutOfRange, -1};
  absl::StatusOr<int64_t> start = log->DeleteRecordsBefore(offset);
  absl::Status checkpoint = start.ok() ? logs_->WriteLogStartOffsetCheckpoint() : start.status();
  if (!checkpoint.ok()) return {ReportStorageError(checkpoint), -1};
  return {ErrorCode::kNone, *start};
}

ErrorCode Broker::ReportStorageError(const absl::Status& error) {
  if (!logs_->offline()) {
    LogError("Error while writing to log dir ", logs_->log_dir().string(),
             "; taking it offline: ", error.ToString());
    logs_->SetOffline(error);
  }
  return ErrorCode::kKafkaStorageError;
}

int32_t Broker::MaxMessageBytes(const storage::TopicMetadata& topic) const {
  return ResolveMaxMessageBytes(config_, topic.configs);
}

void Broker::AddAppendListener(std::shared_ptr<AppendListener> listener) {
  append_listeners_.push_back(std::move(listener));
}

void Broker::RemoveAppendListener(const std::shared_ptr<AppendListener>& listener) {
  append_listeners_.remove(listener);
}

void Broker::NotifyAppend() {
  // Listeners may add or remove listeners while running: iterate over a snapshot.
  auto snapshot = append_listeners_;
  for (auto& l : snapshot) {
    if ((*l)()) RemoveAppendListener(l);
  }
}

absl::Status Broker::Close() {
  absl::Status result;
  if (storage_tasks_) storage_tasks_->Stop();
  if (groups_) result.Update(groups_->Close());
  if (logs_) result.Update(logs_->Close());
  return result;
}

}  // namespace runnel::broker
