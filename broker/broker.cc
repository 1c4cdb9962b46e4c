#include "broker/broker.h"

#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "broker/log.h"
#include "broker/properties.h"
#include "broker/topic_config.h"
#include "protocol/control_record.h"
#include "storage/file.h"

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
// A new file is written without fsync (*created is set): Broker::SyncMetaProperties makes it
// durable off the start-up path.
absl::StatusOr<std::string> LoadOrCreateClusterId(const std::filesystem::path& path,
                                                  const BrokerConfig& config, bool* created) {
  // Through storage/file.h, so that with log.in.memory it lives in memory too.
  if (absl::StatusOr<std::string> text = storage::ReadFileToString(path); text.ok()) {
    auto props = ParseProperties(*text);
    if (!props.ok()) {
      return absl::InvalidArgumentError(path.string() + ": " +
                                        std::string(props.status().message()));
    }
    if (auto it = props->find("cluster.id"); it != props->end()) {
      // As Kafka's MetaPropertiesEnsemble.verify: the data belong to one cluster.
      if (!config.cluster_id.empty() && config.cluster_id != it->second) {
        return absl::FailedPreconditionError(absl::StrCat("Invalid cluster.id in: ", path.string(),
                                                          ". Expected ", config.cluster_id,
                                                          ", but read ", it->second));
      }
      return it->second;
    }
  } else if (!absl::IsNotFound(text.status())) {
    return text.status();
  }
  std::string cluster_id = config.cluster_id.empty() ? RandomBase64Uuid() : config.cluster_id;
  std::string contents = absl::StrCat("#\n#Written by Runnel\ncluster.id=", cluster_id,
                                      "\ndirectory.id=", RandomBase64Uuid(),
                                      "\nnode.id=", config.node_id, "\nversion=1\n");
  if (absl::Status s = storage::WriteFileAtomically(path, contents, /*sync=*/false); !s.ok()) {
    return absl::InternalError("cannot write " + path.string() + ": " + std::string(s.message()));
  }
  *created = true;
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

namespace {

// Writes the transaction coordinator's markers: into data partitions through their logs,
// into __consumer_offsets through the group coordinator (which owns those logs and
// applies the pending offsets).
class BrokerMarkerWriter : public TransactionMarkerWriter {
 public:
  explicit BrokerMarkerWriter(Broker* broker) : broker_(broker) {}

  ErrorCode WriteMarker(const std::string& topic, int32_t partition, int64_t producer_id,
                        int16_t producer_epoch, int32_t coordinator_epoch, bool commit) override {
    if (topic == kConsumerOffsetsTopic) {
      return broker_->groups().CompleteTxn(partition, producer_id, producer_epoch,
                                           coordinator_epoch, commit);
    }
    storage::PartitionLog* log = broker_->logs().Partition(topic, partition);
    if (log == nullptr) return ErrorCode::kUnknownTopicOrPartition;
    if (broker_->logs().offline()) return ErrorCode::kKafkaStorageError;
    protocol::EndTxnMarker marker{
        commit ? protocol::ControlRecordType::kCommit : protocol::ControlRecordType::kAbort,
        coordinator_epoch};
    auto appended = log->AppendTxnMarker(producer_id, producer_epoch, marker, WallClockMs());
    if (appended.ok()) return ErrorCode::kNone;
    if (std::optional<storage::ProducerError> e = storage::ProducerErrorOf(appended.status())) {
      return *e == storage::ProducerError::kTransactionCoordinatorFenced
                 ? ErrorCode::kTransactionCoordinatorFenced
                 : ErrorCode::kInvalidProducerEpoch;
    }
    return broker_->ReportStorageError(appended.status());
  }

  bool PartitionExists(const std::string& topic, int32_t partition) override {
    if (topic == kConsumerOffsetsTopic) {
      return partition >= 0 && partition < broker_->groups().offsets_topic_partitions();
    }
    const storage::TopicMetadata* meta = broker_->logs().FindTopic(topic);
    return meta != nullptr && partition >= 0 && partition < meta->partitions;
  }

 private:
  static int64_t WallClockMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  Broker* broker_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Broker>> Broker::Open(const BrokerConfig& config,
                                                     asio::io_context* io) {
  std::unique_ptr<Broker> broker(new Broker(config, io));
  if (config.log_dirs.empty()) return absl::InvalidArgumentError("log.dirs is empty");
  std::filesystem::path dir = config.log_dirs.front();
  if (config.log_in_memory) {
    // Before anything is opened: every file from here on is a memfd (storage/file.h).
    storage::UseMemoryFileSystem();
    LogInfo("log.in.memory=true: data are kept in memory only (nothing under ", dir.string(),
            "), and lost when the broker exits");
  }
  if (absl::Status s = storage::CreateDirectories(dir); !s.ok()) {
    return absl::InternalError("cannot create log dir " + dir.string() + ": " +
                               std::string(s.message()));
  }
  bool meta_created = false;
  auto cluster_id = LoadOrCreateClusterId(dir / "meta.properties", config, &meta_created);
  if (!cluster_id.ok()) return cluster_id.status();
  broker->cluster_id_ = *cluster_id;
  if (meta_created) broker->SyncMetaPropertiesLater(dir / "meta.properties");
  if (absl::Status s = broker->LoadDynamicConfigs(dir); !s.ok()) return s;
  const BrokerConfig* cfg = &broker->config_;
  auto logs = storage::LogManager::Open(dir, [cfg](const std::map<std::string, std::string>& c) {
    return ResolveLogConfig(*cfg, c);
  });
  if (!logs.ok()) return logs.status();
  broker->logs_ = std::move(*logs);
  broker->groups_ = std::make_unique<GroupCoordinator>(
      io, GroupCoordinatorConfig::FromProperties(config.properties), dir);
  if (absl::Status s = broker->groups_->Load(broker->logs_->opened_after_clean_shutdown());
      !s.ok()) {
    return s;
  }
  broker->producer_ids_ = std::make_unique<ProducerIdManager>(dir, config.node_id);
  // After the group coordinator: completing a transaction found half-done writes its
  // markers into __consumer_offsets too.
  broker->marker_writer_ = std::make_unique<BrokerMarkerWriter>(broker.get());
  broker->transactions_ = std::make_unique<TransactionCoordinator>(
      io, TransactionCoordinatorConfig::FromProperties(config.properties), dir,
      broker->producer_ids_.get(), broker->marker_writer_.get());
  if (absl::Status s = broker->transactions_->Load(broker->logs_->opened_after_clean_shutdown());
      !s.ok()) {
    return s;
  }
  broker->storage_tasks_ = std::make_unique<StorageTasks>(broker.get(), io);
  broker->storage_tasks_->Start();
  // Clients connecting at once are answered first; the deferred logs follow.
  broker->deferred_open_timer_ =
      std::make_unique<asio::steady_timer>(*io, std::chrono::milliseconds(50));
  broker->deferred_open_timer_->async_wait([b = broker.get()](asio::error_code ec) {
    if (!ec) b->OpenDeferredLogs();
  });
  return broker;
}

void Broker::ForEachInternalLog(
    const std::function<void(const std::string&, int32_t, storage::PartitionLog&)>& fn) {
  groups_->ForEachOffsetsLog(
      [&](int32_t p, storage::PartitionLog& log) { fn(kConsumerOffsetsTopic, p, log); });
  transactions_->ForEachTransactionLog(
      [&](int32_t p, storage::PartitionLog& log) { fn(kTransactionStateTopic, p, log); });
}

TopicResult Broker::CreateTopic(const std::string& name, int32_t partitions,
                                int16_t replication_factor,
                                const std::map<std::string, std::string>& configs,
                                bool validate_only) {
  if (std::string why = InvalidTopicNameReason(name); !why.empty()) {
    return {ErrorCode::kInvalidTopicException, why};
  }
  if (logs_->FindTopic(name) != nullptr || name == kConsumerOffsetsTopic ||
      name == kTransactionStateTopic) {
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
  LogDebug("Created topic ", name, " with ", partitions, " partition(s)");
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
  LogDebug("Deleted topic ", name);
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
  LogDebug("Increased the partitions of topic ", name, " to ", count);
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

std::string Broker::TopicNameError(const std::string& name) { return InvalidTopicNameReason(name); }

TopicResult Broker::SetTopicConfigs(const std::string& name,
                                    const std::map<std::string, std::string>& configs,
                                    bool validate_only) {
  // Kafka's ControllerConfigurationValidator, then the existence check.
  if (name.empty()) return {ErrorCode::kInvalidRequest, "Default topic resources are not allowed."};
  if (std::string why = InvalidTopicNameReason(name); !why.empty()) {
    return {ErrorCode::kInvalidTopicException, why};
  }
  if (absl::Status s = ValidateTopicConfigs(configs); !s.ok()) {
    return {ErrorCode::kInvalidConfig, std::string(s.message())};
  }
  if (logs_->FindTopic(name) == nullptr) {
    return {ErrorCode::kUnknownTopicOrPartition, "The topic '" + name + "' does not exist."};
  }
  if (validate_only) return {};
  if (absl::Status s = logs_->SetTopicConfigs(name, configs); !s.ok()) {
    return {ReportStorageError(s), std::string(s.message())};
  }
  LogInfo("Updated the configs of topic ", name);
  return {ErrorCode::kNone, "", logs_->FindTopic(name)};
}

TopicResult Broker::SetDynamicBrokerConfigs(bool per_broker,
                                            std::map<std::string, std::string> configs,
                                            bool validate_only) {
  if (absl::Status s = ValidateDynamicBrokerConfigs(configs, per_broker); !s.ok()) {
    return {ErrorCode::kInvalidRequest, std::string(s.message())};
  }
  DynamicBrokerConfigs next = dynamic_;
  (per_broker ? next.per_broker : next.cluster_defaults) = std::move(configs);
  // The layers together must still make a valid config.
  ConfigLayers layers{&static_properties_, &next.cluster_defaults, &next.per_broker};
  if (auto built = BuildConfig(MergedProperties(layers), nullptr); !built.ok()) {
    return {ErrorCode::kInvalidRequest, std::string(built.status().message())};
  }
  if (validate_only) return {};
  if (absl::Status s = SaveDynamicConfigs(dynamic_config_dir_, next); !s.ok()) {
    return {ErrorCode::kUnknownServerError, std::string(s.message())};
  }
  dynamic_ = std::move(next);
  if (absl::Status s = ApplyDynamicConfigs(/*at_startup=*/false); !s.ok()) {
    return {ErrorCode::kInvalidRequest, std::string(s.message())};
  }
  LogInfo("Updated the dynamic ", per_broker ? "broker" : "cluster-default", " configs");
  return {};
}

absl::Status Broker::LoadDynamicConfigs(const std::filesystem::path& dir) {
  static_properties_ = config_.properties;
  dynamic_config_dir_ = dir;
  absl::StatusOr<DynamicBrokerConfigs> loaded = runnel::broker::LoadDynamicConfigs(dir);
  if (!loaded.ok()) return loaded.status();
  dynamic_ = *std::move(loaded);
  if (dynamic_.cluster_defaults.empty() && dynamic_.per_broker.empty()) return absl::OkStatus();
  if (absl::Status s = ApplyDynamicConfigs(/*at_startup=*/true); !s.ok()) {
    // Kafka skips dynamic configs that no longer validate rather than not start.
    LogWarn("Ignoring the dynamic broker configs in ", (dir / kDynamicConfigFile).string(), ": ",
            s.message());
    dynamic_ = {};
  }
  return absl::OkStatus();
}

absl::Status Broker::ApplyDynamicConfigs(bool at_startup) {
  absl::StatusOr<BrokerConfig> rebuilt = BuildConfig(MergedProperties(config_layers()), nullptr);
  if (!rebuilt.ok()) return rebuilt.status();
  rebuilt->properties = static_properties_;
  if (!at_startup) {
    // The server is bound and the storage open: these apply at the next start.
    rebuilt->node_id = config_.node_id;
    rebuilt->listeners = config_.listeners;
    rebuilt->advertised_listeners = config_.advertised_listeners;
    rebuilt->listener_security_protocol_map = config_.listener_security_protocol_map;
    rebuilt->log_dirs = config_.log_dirs;
    rebuilt->log_in_memory = config_.log_in_memory;
    rebuilt->cluster_id = config_.cluster_id;
    rebuilt->metrics_listener = config_.metrics_listener;
  }
  config_ = *std::move(rebuilt);
  if (logs_ != nullptr) logs_->ReapplyConfigs();
  return absl::OkStatus();
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

void Broker::SyncMetaPropertiesLater(std::filesystem::path path) {
  // A second after start the first clients are usually served; Close syncs if sooner.
  meta_properties_unsynced_ = std::move(path);
  meta_sync_timer_ = std::make_unique<asio::steady_timer>(*io_, std::chrono::seconds(1));
  meta_sync_timer_->async_wait([this](asio::error_code ec) {
    if (!ec) SyncMetaProperties();
  });
}

void Broker::SyncMetaProperties() {
  if (meta_properties_unsynced_.empty()) return;
  absl::Status s = storage::SyncFileAndDir(meta_properties_unsynced_);
  meta_properties_unsynced_.clear();
  if (!s.ok()) ReportStorageError(s);
}

void Broker::OpenDeferredLogs() {
  // A few logs per turn of the loop, so that requests are served meanwhile; a request
  // for a log not yet opened opens it on the spot.
  constexpr size_t kLogsPerTurn = 4;
  if (logs_->OpenDeferredPartitions(kLogsPerTurn)) {
    asio::post(*io_, [this] { OpenDeferredLogs(); });
  } else if (logs_->offline()) {
    LogError("Error while opening a log in ", logs_->log_dir().string(),
             "; taking it offline: ", logs_->offline_cause().ToString());
  }
}

absl::Status Broker::Close() {
  absl::Status result;
  SyncMetaProperties();
  if (storage_tasks_) storage_tasks_->Stop();
  if (transactions_) {
    absl::Status s = transactions_->Close();
    if (!s.ok() && logs_) logs_->SetOffline(s);
    result.Update(s);
  }
  if (groups_) {
    // The offsets logs are opened without recovery after a clean shutdown, so the marker
    // LogManager::Close writes must not claim one they did not have.
    absl::Status s = groups_->Close();
    if (!s.ok() && logs_) logs_->SetOffline(s);
    result.Update(s);
  }
  if (logs_) result.Update(logs_->Close());
  return result;
}

}  // namespace runnel::broker
