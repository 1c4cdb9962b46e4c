#include "broker/topic_config.h"

#include <algorithm>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace runnel::broker {
namespace {

using Type = ConfigType;
constexpr int64_t kHour = 3600 * 1000;
constexpr int64_t kMinute = 60 * 1000;

// Kafka's LogConfig definitions with ServerTopicConfigSynonyms' broker keys.
constexpr TopicKey kTopicKeys[] = {
    {"cleanup.policy", Type::kList, {}, "compact, delete", {{{"log.cleanup.policy"}}}},
    {"compression.gzip.level", Type::kInt, -1, {}, {{{"compression.gzip.level"}}}},
    {"compression.lz4.level", Type::kInt, 1, {}, {{{"compression.lz4.level"}}}},
    {"compression.type",
     Type::kString,
     {},
     "uncompressed, zstd, lz4, snappy, gzip, producer",
     {{{"compression.type"}}}},
    {"compression.zstd.level", Type::kInt, -131072, {}, {{{"compression.zstd.level"}}}},
    {"delete.retention.ms", Type::kLong, 0, {}, {{{"log.cleaner.delete.retention.ms"}}}},
    {"file.delete.delay.ms", Type::kLong, 0, {}, {{{"log.segment.delete.delay.ms"}}}},
    {"flush.messages", Type::kLong, 1, {}, {{{"log.flush.interval.messages"}}}},
    {"flush.ms",
     Type::kLong,
     0,
     {},
     {{{"log.flush.interval.ms"}, {"log.flush.scheduler.interval.ms"}}}},
    {"follower.replication.throttled.replicas", Type::kList, {}, {}, {}, ""},
    {"index.interval.bytes", Type::kInt, 0, {}, {{{"log.index.interval.bytes"}}}},
    {"leader.replication.throttled.replicas", Type::kList, {}, {}, {}, ""},
    {"local.retention.bytes", Type::kLong, -2, {}, {{{"log.local.retention.bytes"}}}},
    {"local.retention.ms", Type::kLong, -2, {}, {{{"log.local.retention.ms"}}}},
    {"max.compaction.lag.ms", Type::kLong, 1, {}, {{{"log.cleaner.max.compaction.lag.ms"}}}},
    {"max.message.bytes", Type::kInt, 0, {}, {{{"message.max.bytes"}}}},
    {"message.timestamp.after.max.ms",
     Type::kLong,
     0,
     {},
     {{{"log.message.timestamp.after.max.ms"}}}},
    {"message.timestamp.before.max.ms",
     Type::kLong,
     0,
     {},
     {{{"log.message.timestamp.before.max.ms"}}}},
    {"message.timestamp.type",
     Type::kString,
     {},
     "CreateTime, LogAppendTime",
     {{{"log.message.timestamp.type"}}}},
    {"min.cleanable.dirty.ratio", Type::kDouble, {}, {}, {{{"log.cleaner.min.cleanable.ratio"}}}},
    {"min.compaction.lag.ms", Type::kLong, 0, {}, {{{"log.cleaner.min.compaction.lag.ms"}}}},
    {"min.insync.replicas", Type::kInt, 1, {}, {{{"min.insync.replicas"}}}},
    {"preallocate", Type::kBoolean, {}, {}, {{{"log.preallocate"}}}},
    {"remote.log.copy.disable", Type::kBoolean, {}, {}, {}, "false"},
    {"remote.log.delete.on.disable", Type::kBoolean, {}, {}, {}, "false"},
    {"remote.storage.enable", Type::kBoolean, {}, {}, {}, "false"},
    {"retention.bytes", Type::kLong, {}, {}, {{{"log.retention.bytes"}}}},
    {"retention.ms",
     Type::kLong,
     -1,
     {},
     {{{"log.retention.ms"}, {"log.retention.minutes", kMinute}, {"log.retention.hours", kHour}}}},
    {"segment.bytes", Type::kInt, 1024 * 1024, {}, {{{"log.segment.bytes"}}}},
    {"segment.index.bytes", Type::kInt, 4, {}, {{{"log.index.size.max.bytes"}}}},
    {"segment.jitter.ms",
     Type::kLong,
     0,
     {},
     {{{"log.roll.jitter.ms"}, {"log.roll.jitter.hours", kHour}}}},
    {"segment.ms", Type::kLong, 1, {}, {{{"log.roll.ms"}, {"log.roll.hours", kHour}}}},
    {"unclean.leader.election.enable",
     Type::kBoolean,
     {},
     {},
     {{{"unclean.leader.election.enable"}}}},
};

constexpr bool TopicKeysSorted() {
  for (size_t i = 1; i < std::size(kTopicKeys); ++i) {
    if (!(kTopicKeys[i - 1].name < kTopicKeys[i].name)) return false;
  }
  return true;
}
static_assert(TopicKeysSorted(), "kTopicKeys must be sorted by name, without duplicates");

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
std::vector<std::string> CleanupPolicies(absl::string_view value) {
  std::vector<std::string> out;
  for (absl::string_view item :
       absl::StrSplit(absl::string_view(value.data(), value.size()), ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (!item.empty()) out.emplace_back(item);
  }
  return out;
}

}  // namespace

std::span<const TopicKey> TopicKeys() { return kTopicKeys; }

const TopicKey* FindTopicKey(absl::string_view name) {
  for (const TopicKey& k : kTopicKeys) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

absl::Status ValidateTopicConfigs(const std::map<std::string, std::string>& configs) {
  for (const auto& [key, value] : configs) {
    const TopicKey* k = FindTopicKey(key);
    if (k == nullptr) return absl::InvalidArgumentError("Unknown topic config name: " + key);
    // The broker's parser, with the topic key's name, type and validator.
    BrokerKey as_broker_key{k->name, k->type, k->min, k->valid};
    if (absl::Status s = CheckBrokerValue(as_broker_key, value); !s.ok()) return s;
    if (k->type == Type::kDouble) {  // min.cleanable.dirty.ratio, Kafka's between(0, 1)
      double d = 0;
      if (absl::SimpleAtod(value, &d) && d < 0)
        return Invalid(key, value, "Value must be at least 0");
      if (absl::SimpleAtod(value, &d) && d > 1) {
        return Invalid(key, value, "Value must be no more than 1");
      }
    }
  }
  // LogConfig.validateValues, against LogConfig's own defaults.
  int64_t min_lag = LongOr(configs, "min.compaction.lag.ms", 0);
  int64_t max_lag = LongOr(configs, "max.compaction.lag.ms", storage::kNoLimit);
  if (min_lag > max_lag) {
    return absl::InvalidArgumentError(
        absl::StrCat("conflict topic config setting min.compaction.lag.ms (", min_lag,
                     ") > max.compaction.lag.ms (", max_lag, ")"));
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
