// Broker: the state every handler shares, and the operations on it that carry
// Kafka's rules (topic names, partition counts, replication factors, configs).
//
// Single-threaded: everything runs on the one io_context thread, so nothing here
// locks. Handlers reach storage through this class, never around it.
#ifndef RUNNEL_BROKER_BROKER_H_
#define RUNNEL_BROKER_BROKER_H_

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "asio.hpp"
#include "broker/config.h"
#include "broker/group_coordinator.h"
#include "broker/storage_tasks.h"
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

  // Long-polling fetches register a callback that runs after every append; it
  // returns true when it is finished (answered) and should be dropped.
  using AppendListener = std::function<bool()>;
  void AddAppendListener(std::shared_ptr<AppendListener> listener);
  void RemoveAppendListener(const std::shared_ptr<AppendListener>& listener);
  void NotifyAppend();

  void OnConnectionOpened() { ++connections_; }
  void OnConnectionClosed() { --connections_; }

  absl::Status Close();

 private:
  Broker(const BrokerConfig& config, asio::io_context* io) : config_(config), io_(io) {}

  BrokerConfig config_;
  asio::io_context* io_;
  std::string cluster_id_;
  std::unique_ptr<storage::LogManager> logs_;
  std::unique_ptr<GroupCoordinator> groups_;
  std::unique_ptr<StorageTasks> storage_tasks_;
  std::list<std::shared_ptr<AppendListener>> append_listeners_;
  int64_t connections_ = 0;
};

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_BROKER_H_
