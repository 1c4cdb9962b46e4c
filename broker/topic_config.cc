#include "broker/topic_config.h"

#include <algorithm>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace runnel::broker {
namespace {

enum class Type { kInt, kLong, kDouble, kBool, kString, kList };

struct TopicConfigKey {
  std::string_view name;
  Type type;
  int64_t min;  // for kInt and kLong
};

// Kafka's topic configs (TopicConfig / LogConfig), sorted by name.
constexpr TopicConfigKey kTopicConfigs[] = {
    {"cleanup.policy", Type::kList, 0},
    {"compression.gzip.level", Type::kInt, 1},
    {"compression.lz4.level", Type::kInt, 1},
    {"compression.type", Type::kString, 0},
    {"compression.zstd.level", Type::kInt, -131072},
    {"delete.retention.ms", Type::kLong, 0},
    {"file.delete.delay.ms", Type::kLong, 0},
    {"flush.messages", Type::kLong, 1},
    {"flush.ms", Type::kLong, 0},
    {"follower.replication.throttled.replicas", Type::kList, 0},
    {"index.interval.bytes", Type::kInt, 0},
    {"leader.replication.throttled.replicas", Type::kList, 0},
    {"local.retention.bytes", Type::kLong, -2},
    {"local.retention.ms", Type::kLong, -2},
    {"max.compaction.lag.ms", Type::kLong, 1},
    {"max.message.bytes", Type::kInt, 0},
    {"message.timestamp.after.max.ms", Type::kLong, 0},
    {"message.timestamp.before.max.ms", Type::kLong, 0},
    {"message.timestamp.type", Type::kString, 0},
    {"min.cleanable.dirty.ratio", Type::kDouble, 0},
    {"min.compaction.lag.ms", Type::kLong, 0},
    {"min.insync.replicas", Type::kInt, 1},
    {"preallocate", Type::kBool, 0},
    {"remote.log.copy.disable", Type::kBool, 0},
    {"remote.log.delete.on.disable", Type::kBool, 0},
    {"remote.storage.enable", Type::kBool, 0},
    {"retention.bytes", Type::kLong, INT64_MIN},
    {"retention.ms", Type::kLong, -1},
    {"segment.bytes", Type::kInt, 1024 * 1024},
    {"segment.index.bytes", Type::kInt, 4},
    {"segment.jitter.ms", Type::kLong, 0},
    {"segment.ms", Type::kLong, 1},
    {"unclean.leader.election.enable", Type::kBool, 0},
};

const TopicConfigKey* Find(std::string_view name) {
  for (const auto& k : kTopicConfigs) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

absl::Status Invalid(const std::string& key, const std::string& value, const std::string& why) {
  return absl::InvalidArgumentError(
      absl::StrCat("Invalid value ", value, " for configuration ", key, ": ", why));
}

int64_t LongOr(const std::map<std::string, std::string>& configs, const std::string& key,
               int64_t fallback) {
  auto it = configs.find(key);
  int64_t v;
  return it != configs.end() && absl::SimpleAtoi(it->second, &v) ? v : fallback;
}

// A cleanup.policy list: comma-separated, blanks around items ignored.
std::vector<std::string> CleanupPolicies(std::string_view value) {
  std::vector<std::string> out;
  for (absl::string_view item :
       absl::StrSplit(absl::string_view(value.data(), value.size()), ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (!item.empty()) out.emplace_back(item);
  }
  return out;
}

}  // namespace

absl::Status ValidateTopicConfigs(const std::map<std::string, std::string>& configs) {
  for (const auto& [key, value] : configs) {
    const TopicConfigKey* k = Find(key);
    if (k == nullptr) return absl::InvalidArgumentError("Unknown topic config name: " + key);
    switch (k->type) {
      case Type::kInt:
      case Type::kLong: {
        int64_t v;
        if (!absl::SimpleAtoi(value, &v) ||
            (k->type == Type::kInt && (v < INT32_MIN || v > INT32_MAX))) {
          return Invalid(
              key, value,
              k->type == Type::kInt ? "Not a number of type INT" : "Not a number of type LONG");
        }
        if (v < k->min) return Invalid(key, value, absl::StrCat("Value must be at least ", k->min));
        break;
      }
      case Type::kDouble: {  // min.cleanable.dirty.ratio, Kafka's between(0, 1)
        double d;
        if (!absl::SimpleAtod(value, &d)) return Invalid(key, value, "Not a number of type DOUBLE");
        if (d < 0) return Invalid(key, value, "Value must be at least 0");
        if (d > 1) return Invalid(key, value, "Value must be no more than 1");
        break;
      }
      case Type::kBool:
        if (value != "true" && value != "false") {
          return Invalid(key, value, "Expected value to be either true or false");
        }
        break;
      case Type::kString:
        break;
      case Type::kList:
        if (key == "cleanup.policy") {
          for (const std::string& item : CleanupPolicies(value)) {
            if (item != "compact" && item != "delete") {
              return Invalid(key, item, "String must be one of: compact, delete");
            }
          }
        }
        break;
    }
  }
  return absl::OkStatus();
}

storage::LogConfig ResolveLogConfig(const BrokerConfig& broker,
                                    const std::map<std::string, std::string>& configs) {
  storage::LogConfig c = broker.log_defaults;
  c.segment_bytes = LongOr(configs, "segment.bytes", c.segment_bytes);
  c.index_interval_bytes =
      static_cast<int32_t>(LongOr(configs, "index.interval.bytes", c.index_interval_bytes));
  c.segment_index_bytes =
      static_cast<int32_t>(LongOr(configs, "segment.index.bytes", c.segment_index_bytes));
  c.segment_ms = LongOr(configs, "segment.ms", c.segment_ms);
  // retention.ms -1 and any negative retention.bytes mean no limit, as in Kafka.
  c.retention_ms = LongOr(configs, "retention.ms", c.retention_ms);
  if (c.retention_ms < 0) c.retention_ms = storage::kNoLimit;
  c.retention_bytes = LongOr(configs, "retention.bytes", c.retention_bytes);
  if (c.retention_bytes < 0) c.retention_bytes = storage::kNoLimit;
  if (auto it = configs.find("cleanup.policy"); it != configs.end()) {
    std::vector<std::string> policies = CleanupPolicies(it->second);
    c.delete_policy = std::find(policies.begin(), policies.end(), "delete") != policies.end();
    c.compact_policy = std::find(policies.begin(), policies.end(), "compact") != policies.end();
  }
  c.delete_retention_ms = LongOr(configs, "delete.retention.ms", c.delete_retention_ms);
  if (auto it = configs.find("min.cleanable.dirty.ratio"); it != configs.end()) {
    double ratio;
    if (absl::SimpleAtod(it->second, &ratio)) c.min_cleanable_dirty_ratio = ratio;
  }
  c.min_compaction_lag_ms = LongOr(configs, "min.compaction.lag.ms", c.min_compaction_lag_ms);
  c.max_compaction_lag_ms = LongOr(configs, "max.compaction.lag.ms", c.max_compaction_lag_ms);
  c.flush_messages = LongOr(configs, "flush.messages", c.flush_messages);
  c.flush_ms = LongOr(configs, "flush.ms", c.flush_ms);
  return c;
}

int32_t ResolveMaxMessageBytes(const BrokerConfig& broker,
                               const std::map<std::string, std::string>& configs) {
  return static_cast<int32_t>(LongOr(configs, "max.message.bytes", broker.message_max_bytes));
}

}  // namespace runnel::broker
