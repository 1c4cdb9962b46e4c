// Broker: the state every handler shares, and the operations on it that carry
// Kafka's rules (topic names, partition counts, replication factors, configs).
//
// Single-threaded: everything runs on the one io_context thread, so nothing here
// locks. Handlers reach storage through this class, never around it.
#ifndef RUNNEL_BROKER_BROKER_H_
#define RUNNEL_BROKER_BROKER_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "asio.hpp"
#include "broker/config.h"
#include "broker/config_catalog.h"
#include "broker/dynamic_config.h"
#include "broker/group_coordinator.h"
#include "broker/metrics.h"
#include "broker/producer_id_manager.h"
#include "broker/storage_tasks.h"
#include "broker/transaction_coordinator.h"
#include "protocol/errors.h"
#include "storage/log_manager.h"

namespace runnel::broker {

// The outcome of an admin operation on a topic: Kafka's error code and message.
struct TopicResult {
  protocol::ErrorCode error = protocol::ErrorCode::kNone;
  std::string message;
  const storage::TopicMetadata* topic = nullptr;  // set on success (not for validate-only)
};

class Broker {
 public:
  static absl::StatusOr<std::unique_ptr<Broker>> Open(const BrokerConfig& config,
                                                      asio::io_context* io);

  const BrokerConfig& config() const { return config_; }
  asio::io_context& io() { return *io_; }
  const std::string& cluster_id() const { return cluster_id_; }
  storage::LogManager& logs() { return *logs_; }
  // The classic consumer-group coordinator; this broker coordinates every group.
  GroupCoordinator& groups() { return *groups_; }
  // Retention, flushes, checkpoints and the fsync-before-ack group commit.
  StorageTasks& storage_tasks() { return *storage_tasks_; }
  // The ids InitProducerId hands out (latest_producer_id_block in the log dir).
  ProducerIdManager& producer_ids() { return *producer_ids_; }
  // The transaction coordinator; this broker coordinates every transactional id.
  TransactionCoordinator& transactions() { return *transactions_; }
  // Every partition log of the internal topics (__consumer_offsets, __transaction_state)
  // that exists, for DescribeLogDirs and metrics.
  void ForEachInternalLog(
      const std::function<void(const std::string&, int32_t, storage::PartitionLog&)>& fn);

  // partitions/replication_factor of -1 take the broker defaults.
  TopicResult CreateTopic(const std::string& name, int32_t partitions, int16_t replication_factor,
                          const std::map<std::string, std::string>& configs, bool validate_only);
  TopicResult DeleteTopic(const std::string& name);
  TopicResult CreatePartitions(const std::string& name, int32_t count, bool validate_only);

  // DeleteRecords of one partition: Kafka's error and the new low watermark (-1 on error).
  // offset -1 means the high watermark.
  std::pair<protocol::ErrorCode, int64_t> DeleteRecords(const std::string& topic, int32_t partition,
                                                        int64_t offset);
  // Takes the log dir offline after an I/O error (logged once); its partitions then
  // answer KAFKA_STORAGE_ERROR. Returns that error code for the caller to answer with.
  protocol::ErrorCode ReportStorageError(const absl::Status& error);

  // The effective max.message.bytes of a topic.
  int32_t MaxMessageBytes(const storage::TopicMetadata& topic) const;

  // Dynamic configs (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs). The
  // layers: static properties, cluster-wide and per-broker dynamic configs.
  ConfigLayers config_layers() const {
    return {&static_properties_, &dynamic_.cluster_defaults, &dynamic_.per_broker};
  }
  const DynamicBrokerConfigs& dynamic_configs() const { return dynamic_; }
  // Replaces the cluster-default (per_broker false) or this broker's dynamic layer. An
  // invalid layer is INVALID_REQUEST with Kafka's message; otherwise, unless
  // validate_only, it is persisted in the log dir, config() is rebuilt from all layers
  // and every topic's LogConfig re-resolved.
  TopicResult SetDynamicBrokerConfigs(bool per_broker, std::map<std::string, std::string> configs,
                                      bool validate_only);
  // Replaces a topic's configs: INVALID_CONFIG for a bad config, UNKNOWN_TOPIC_OR_PARTITION
  // for a missing topic, as Kafka's controller answers.
  TopicResult SetTopicConfigs(const std::string& name,
                              const std::map<std::string, std::string>& configs,
                              bool validate_only);
  // Kafka's Topic.validate message for an invalid topic name, else "".
  static std::string TopicNameError(const std::string& name);

  // Long-polling fetches register a callback that runs after every append; it
  // returns true when it is finished (answered) and should be dropped.
  using AppendListener = std::function<bool()>;
  void AddAppendListener(std::shared_ptr<AppendListener> listener);
  void RemoveAppendListener(const std::shared_ptr<AppendListener>& listener);
  void NotifyAppend();

  void OnConnectionOpened() { metrics_.OnConnectionOpened(); }
  void OnConnectionClosed() { metrics_.OnConnectionClosed(); }
  // Request, network and connection counters, for the metrics endpoint.
  Metrics& metrics() { return metrics_; }

  absl::Status Close();

 private:
  Broker(const BrokerConfig& config, asio::io_context* io) : config_(config), io_(io) {}
  // Opens the logs LogManager deferred (after a clean stop), a few per loop turn.
  void OpenDeferredLogs();
  // fsyncs a newly written meta.properties a little after start (or at Close).
  void SyncMetaPropertiesLater(std::filesystem::path path);
  void SyncMetaProperties();

  BrokerConfig config_;
  asio::io_context* io_;
  std::string cluster_id_;
  std::unique_ptr<storage::LogManager> logs_;
  std::unique_ptr<GroupCoordinator> groups_;
  std::unique_ptr<StorageTasks> storage_tasks_;
  std::unique_ptr<ProducerIdManager> producer_ids_;
  std::unique_ptr<TransactionMarkerWriter> marker_writer_;
  std::unique_ptr<TransactionCoordinator> transactions_;
  // Dynamic configs: loads them from the log dir at startup (at_startup: everything is
  // rebuilt) and rebuilds config_ from the layers (then listeners and other keys that
  // cannot change while running keep their values).
  absl::Status LoadDynamicConfigs(const std::filesystem::path& dir);
  absl::Status ApplyDynamicConfigs(bool at_startup);
  std::map<std::string, std::string> static_properties_;
  DynamicBrokerConfigs dynamic_;
  std::filesystem::path dynamic_config_dir_;
  std::list<std::shared_ptr<AppendListener>> append_listeners_;
  std::filesystem::path meta_properties_unsynced_;
  std::unique_ptr<asio::steady_timer> meta_sync_timer_;
  std::unique_ptr<asio::steady_timer> deferred_open_timer_;
  Metrics metrics_;
};

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_BROKER_H_
