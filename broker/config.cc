#include "broker/config.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "broker/properties.h"

namespace runnel::broker {
namespace {

constexpr absl::string_view kUsage =
    "USAGE: runnel [server.properties] [--override property=value]*";
constexpr absl::string_view kDefaultListeners = "PLAINTEXT://:9092";
constexpr absl::string_view kDefaultProtocolMap =
    "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL";
constexpr absl::string_view kSecurityProtocols = "PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL";
constexpr absl::string_view kDefaultLogDir = "/tmp/kafka-logs";

using Type = ConfigType;
using KnownKey = BrokerKey;

constexpr std::optional<int64_t> kAny = std::nullopt;
constexpr DynamicUpdate kStatic = DynamicUpdate::kReadOnly;
constexpr DynamicUpdate kCluster = DynamicUpdate::kClusterWide;
constexpr DynamicUpdate kPerBroker = DynamicUpdate::kPerBroker;
constexpr const char* kNull = nullptr;
constexpr const char* kLongMax = "9223372036854775807";

// Every key Runnel knows, sorted by name: the keys it acts on, the topic-config
// synonyms, and the ones Kafka's shipped server.properties and common deployments set,
// which are type-checked as Kafka declares them and otherwise ignored. Any other key
// draws an unknown-key warning. Columns: name, ConfigDef type, Range.atLeast, allowed
// values, Kafka 4.x's default (KafkaConfig and the *Configs classes it gathers), and
// whether it is dynamic (DynamicBrokerConfig.ALL_DYNAMIC_CONFIGS: DynamicLogConfig =
// ServerTopicConfigSynonyms.TOPIC_CONFIG_SYNONYMS' values, LogCleaner, DynamicThreadPool,
// SocketServer, DynamicListenerConfig; per broker: PER_BROKER_CONFIGS).
constexpr KnownKey kKnownKeys[] = {
    {"advertised.listeners", Type::kList, kAny, {}, kNull, kStatic},
    {"auto.create.topics.enable", Type::kBoolean, kAny, {}, "true", kStatic},
    {"auto.leader.rebalance.enable", Type::kBoolean, kAny, {}, "true", kStatic},
    {"broker.id", Type::kInt, kAny, {}, "-1", kStatic},
    {"broker.rack", Type::kString, kAny, {}, kNull, kStatic},
    {"cluster.id", Type::kString, kAny, {}, kNull, kStatic},  // kafka-storage format's
    {"compression.gzip.level", Type::kInt, -1, {}, "-1", kCluster},
    {"compression.lz4.level", Type::kInt, 1, {}, "9", kCluster},
    {"compression.type", Type::kString, kAny, "uncompressed, zstd, lz4, snappy, gzip, producer",
     "producer", kCluster},
    {"compression.zstd.level", Type::kInt, -131072, {}, "3", kCluster},
    {"connections.max.idle.ms", Type::kLong, kAny, {}, "600000", kStatic},
    {"controller.listener.names", Type::kList, kAny, {}, kNull, kStatic},
    {"controller.quorum.bootstrap.servers", Type::kList, kAny, {}, "", kStatic},
    {"controller.quorum.voters", Type::kList, kAny, {}, "", kStatic},
    {"default.replication.factor", Type::kInt, kAny, {}, "1", kStatic},
    {"delete.topic.enable", Type::kBoolean, kAny, {}, "true", kStatic},
    {"group.initial.rebalance.delay.ms", Type::kInt, kAny, {}, "3000", kStatic},
    {"group.max.session.timeout.ms", Type::kInt, kAny, {}, "1800000", kStatic},
    {"group.max.size", Type::kInt, 1, {}, "2147483647", kStatic},
    {"group.min.session.timeout.ms", Type::kInt, kAny, {}, "6000", kStatic},
    {"inter.broker.listener.name", Type::kString, kAny, {}, kNull, kStatic},
    {"listener.security.protocol.map",
     Type::kString,
     kAny,
     {},
     "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT",
     kPerBroker},
    {"listeners", Type::kList, kAny, {}, "PLAINTEXT://:9092", kPerBroker},
    {"log.cleaner.backoff.ms", Type::kLong, 0, {}, "15000", kCluster},
    {"log.cleaner.dedupe.buffer.size", Type::kLong, kAny, {}, "134217728", kCluster},
    {"log.cleaner.delete.retention.ms", Type::kLong, 0, {}, "86400000", kCluster},
    {"log.cleaner.enable", Type::kBoolean, kAny, {}, "true", kStatic},
    {"log.cleaner.io.buffer.load.factor", Type::kDouble, kAny, {}, "0.9", kCluster},
    {"log.cleaner.io.buffer.size", Type::kInt, 0, {}, "524288", kCluster},
    {"log.cleaner.io.max.bytes.per.second",
     Type::kDouble,
     kAny,
     {},
     "1.7976931348623157E308",
     kCluster},
    {"log.cleaner.max.compaction.lag.ms", Type::kLong, 1, {}, kLongMax, kCluster},
    {"log.cleaner.min.cleanable.ratio", Type::kDouble, kAny, {}, "0.5", kCluster},
    {"log.cleaner.min.compaction.lag.ms", Type::kLong, 0, {}, "0", kCluster},
    {"log.cleaner.threads", Type::kInt, 0, {}, "1", kCluster},
    {"log.cleanup.policy", Type::kList, kAny, "compact, delete", "delete", kCluster},
    {"log.dir", Type::kList, kAny, {}, "/tmp/kafka-logs", kStatic},
    {"log.dirs", Type::kList, kAny, {}, kNull, kStatic},
    {"log.flush.interval.messages", Type::kLong, 1, {}, kLongMax, kCluster},
    {"log.flush.interval.ms", Type::kLong, kAny, {}, kNull, kCluster},
    {"log.flush.offset.checkpoint.interval.ms", Type::kInt, 0, {}, "60000", kStatic},
    {"log.flush.scheduler.interval.ms", Type::kLong, kAny, {}, kLongMax, kStatic},
    {"log.flush.start.offset.checkpoint.interval.ms", Type::kInt, 0, {}, "60000", kStatic},
    {"log.fsync.before.ack", Type::kBoolean, kAny, {}, "false", kStatic},  // Runnel's own
    {"log.in.memory", Type::kBoolean, kAny, {}, "false", kStatic},         // Runnel's own
    {"log.index.interval.bytes", Type::kInt, 0, {}, "4096", kCluster},
    {"log.index.size.max.bytes", Type::kInt, 4, {}, "10485760", kCluster},
    {"log.local.retention.bytes", Type::kLong, -2, {}, "-2", kCluster},
    {"log.local.retention.ms", Type::kLong, -2, {}, "-2", kCluster},
    {"log.message.timestamp.after.max.ms", Type::kLong, 0, {}, kLongMax, kCluster},
    {"log.message.timestamp.before.max.ms", Type::kLong, 0, {}, kLongMax, kCluster},
    {"log.message.timestamp.type", Type::kString, kAny, "CreateTime, LogAppendTime", "CreateTime",
     kCluster},
    {"log.preallocate", Type::kBoolean, kAny, {}, "false", kCluster},
    {"log.retention.bytes", Type::kLong, kAny, {}, "-1", kCluster},
    {"log.retention.check.interval.ms", Type::kLong, 1, {}, "300000", kStatic},
    {"log.retention.hours", Type::kInt, kAny, {}, "168", kStatic},
    {"log.retention.minutes", Type::kInt, kAny, {}, kNull, kStatic},
    {"log.retention.ms", Type::kLong, kAny, {}, kNull, kCluster},
    {"log.roll.hours", Type::kInt, 1, {}, "168", kStatic},
    {"log.roll.jitter.hours", Type::kInt, 0, {}, "0", kStatic},
    {"log.roll.jitter.ms", Type::kLong, kAny, {}, kNull, kCluster},
    {"log.roll.ms", Type::kLong, kAny, {}, kNull, kCluster},
    // Kafka 4.0 raised the minimum from 14.
    {"log.segment.bytes", Type::kInt, 1024 * 1024, {}, "1073741824", kCluster},
    {"log.segment.delete.delay.ms", Type::kLong, 0, {}, "60000", kCluster},
    {"logging.level", Type::kString, kAny, "TRACE, DEBUG, INFO, WARN, ERROR", "INFO",
     kStatic},  // Runnel's own
    {"max.connections", Type::kInt, 0, {}, "2147483647", kCluster},
    {"max.connections.per.ip", Type::kInt, 0, {}, "2147483647", kCluster},
    {"message.max.bytes", Type::kInt, 0, {}, "1048588", kCluster},
    {"metadata.log.dir", Type::kString, kAny, {}, kNull, kStatic},
    {"metrics.listener", Type::kString, kAny, {}, kNull, kStatic},  // Runnel's own
    {"min.insync.replicas", Type::kInt, 1, {}, "1", kCluster},
    {"node.id", Type::kInt, 0, {}, "1", kStatic},  // Kafka has no default; Runnel's is 1
    {"num.io.threads", Type::kInt, 1, {}, "8", kCluster},
    {"num.network.threads", Type::kInt, 1, {}, "3", kCluster},
    {"num.partitions", Type::kInt, 1, {}, "1", kStatic},
    {"num.recovery.threads.per.data.dir", Type::kInt, 1, {}, "2", kCluster},
    {"offset.metadata.max.bytes", Type::kInt, kAny, {}, "4096", kStatic},
    {"offsets.retention.check.interval.ms", Type::kLong, 1, {}, "600000", kStatic},
    {"offsets.retention.minutes", Type::kInt, 1, {}, "10080", kStatic},
    {"offsets.topic.num.partitions", Type::kInt, 1, {}, "50", kStatic},
    {"offsets.topic.replication.factor", Type::kShort, 1, {}, "3", kStatic},
    {"process.roles", Type::kList, kAny, "broker, controller", "", kStatic},
    // Kafka defines this one as internal (for tests); it is listed here all the same.
    {"producer.id.expiration.check.interval.ms", Type::kInt, 1, {}, "600000", kStatic},
    {"producer.id.expiration.ms", Type::kInt, 1, {}, "86400000", kCluster},
    {"queued.max.requests", Type::kInt, 1, {}, "500", kStatic},
    {"share.coordinator.state.topic.min.isr", Type::kShort, 1, {}, "2", kStatic},
    {"share.coordinator.state.topic.replication.factor", Type::kShort, 1, {}, "3", kStatic},
    {"socket.listen.backlog.size", Type::kInt, 1, {}, "50", kStatic},
    {"socket.receive.buffer.bytes", Type::kInt, kAny, {}, "102400", kStatic},
    {"socket.request.max.bytes", Type::kInt, 1, {}, "104857600", kStatic},
    {"socket.send.buffer.bytes", Type::kInt, kAny, {}, "102400", kStatic},
    {"transaction.abort.timed.out.transaction.cleanup.interval.ms",
     Type::kInt,
     1,
     {},
     "10000",
     kStatic},
    {"transaction.max.timeout.ms", Type::kInt, 1, {}, "900000", kStatic},
    {"transaction.remove.expired.transaction.cleanup.interval.ms",
     Type::kInt,
     1,
     {},
     "3600000",
     kStatic},
    {"transaction.state.log.load.buffer.size", Type::kInt, 1, {}, "5242880", kStatic},
    {"transaction.state.log.min.isr", Type::kInt, 1, {}, "2", kStatic},
    {"transaction.state.log.num.partitions", Type::kInt, 1, {}, "50", kStatic},
    {"transaction.state.log.replication.factor", Type::kShort, 1, {}, "3", kStatic},
    {"transaction.state.log.segment.bytes", Type::kInt, 1, {}, "104857600", kStatic},
    {"transactional.id.expiration.ms", Type::kInt, 1, {}, "604800000", kStatic},
    {"unclean.leader.election.enable", Type::kBoolean, kAny, {}, "false", kCluster},
    // Pre-4.0 server.properties still carry these.
    {"zookeeper.connect", Type::kString, kAny, {}, kNull, kStatic},
    {"zookeeper.connection.timeout.ms", Type::kInt, kAny, {}, kNull, kStatic},
};

// Known keys that change nothing in a single Runnel broker: the KRaft quorum, internal
// topics' replication, Kafka's thread pools and socket tuning, ZooKeeper. Sorted.
constexpr std::string_view kKeysWithoutEffect[] = {
    "auto.leader.rebalance.enable",
    "broker.rack",
    "connections.max.idle.ms",
    "controller.quorum.bootstrap.servers",
    "controller.quorum.voters",
    "log.cleaner.io.buffer.load.factor",
    "log.cleaner.io.buffer.size",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.threads",
    "max.connections",
    "max.connections.per.ip",
    "metadata.log.dir",
    "num.io.threads",
    "num.network.threads",
    "num.recovery.threads.per.data.dir",
    "offsets.topic.replication.factor",
    "queued.max.requests",
    "share.coordinator.state.topic.min.isr",
    "share.coordinator.state.topic.replication.factor",
    "socket.listen.backlog.size",
    "socket.receive.buffer.bytes",
    "socket.send.buffer.bytes",
    "transaction.state.log.load.buffer.size",
    "transaction.state.log.min.isr",
    "transaction.state.log.replication.factor",
    "zookeeper.connect",
    "zookeeper.connection.timeout.ms",
};

constexpr bool KnownKeysSorted() {
  for (size_t i = 1; i < std::size(kKnownKeys); ++i) {
    if (!(kKnownKeys[i - 1].name < kKnownKeys[i].name)) return false;
  }
  return true;
}
static_assert(KnownKeysSorted(), "kKnownKeys must be sorted by name, without duplicates");

const KnownKey* FindKnownKey(absl::string_view name) {
  const KnownKey* it =
      std::lower_bound(std::begin(kKnownKeys), std::end(kKnownKeys), name,
                       [](const KnownKey& k, absl::string_view n) { return k.name < n; });
  return it != std::end(kKnownKeys) && it->name == name ? it : nullptr;
}

absl::string_view TypeName(Type type) {
  switch (type) {
    case Type::kUnknown:
      return "UNKNOWN";
    case Type::kBoolean:
      return "BOOLEAN";
    case Type::kString:
      return "STRING";
    case Type::kShort:
      return "SHORT";
    case Type::kInt:
      return "INT";
    case Type::kLong:
      return "LONG";
    case Type::kDouble:
      return "DOUBLE";
    case Type::kList:
      return "LIST";
    case Type::kClass:
      return "CLASS";
    case Type::kPassword:
      return "PASSWORD";
  }
  return "";
}

// Java's String.trim(): strips every character up to ' ', control characters included.
absl::string_view JavaTrim(absl::string_view s) {
  while (!s.empty() && static_cast<unsigned char>(s.front()) <= ' ') s.remove_prefix(1);
  while (!s.empty() && static_cast<unsigned char>(s.back()) <= ' ') s.remove_suffix(1);
  return s;
}

bool IsRegexSpace(char c) {  // Java regex \s
  return c == ' ' || c == '\t' || c == '\n' || c == '\x0b' || c == '\f' || c == '\r';
}

// A ConfigDef LIST: the trimmed value split on commas and the whitespace around them. An
// empty value is the empty list; empty items ("a,,b") are kept for validators to reject.
std::vector<std::string> ParseList(absl::string_view raw) {
  std::vector<std::string> items;
  absl::string_view s = JavaTrim(raw);
  if (s.empty()) return items;
  std::vector<absl::string_view> parts = absl::StrSplit(s, ',');
  for (size_t i = 0; i < parts.size(); ++i) {
    absl::string_view p = parts[i];
    while (i > 0 && !p.empty() && IsRegexSpace(p.front())) p.remove_prefix(1);
    while (i + 1 < parts.size() && !p.empty() && IsRegexSpace(p.back())) p.remove_suffix(1);
    items.emplace_back(p);
  }
  return items;
}

bool IsOneOf(absl::string_view s, absl::string_view valid) {
  for (absl::string_view v : absl::StrSplit(valid, ", ")) {
    if (v == s) return true;
  }
  return false;
}

// Kafka's ConfigException(name, value, message).
absl::Status InvalidValue(absl::string_view key, absl::string_view value, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("Invalid value ", value, " for configuration ", key, ": ", why));
}

// A SHORT, INT or LONG as Java parses it (optional sign, decimal digits, no overflow),
// then checked against the key's minimum.
absl::StatusOr<int64_t> ParseNumber(const KnownKey& key, absl::string_view raw) {
  absl::string_view s = JavaTrim(raw);
  absl::string_view digits = s;
  if (!digits.empty() && (digits[0] == '+' || digits[0] == '-')) digits.remove_prefix(1);
  int64_t v = 0;
  bool ok = !digits.empty() && std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit) &&
            absl::SimpleAtoi(s, &v);
  if (ok && key.type == Type::kShort) ok = v >= INT16_MIN && v <= INT16_MAX;
  if (ok && key.type == Type::kInt) ok = v >= INT32_MIN && v <= INT32_MAX;
  if (!ok)
    return InvalidValue(key.name, raw, absl::StrCat("Not a number of type ", TypeName(key.type)));
  if (key.min && v < *key.min) {
    return InvalidValue(key.name, absl::StrCat(v),
                        absl::StrCat("Value must be at least ", *key.min));
  }
  return v;
}

// A DOUBLE; log.cleaner.min.cleanable.ratio is Kafka's between(0, 1).
absl::StatusOr<double> ParseDouble(const KnownKey& key, absl::string_view raw) {
  double v = 0;
  if (!absl::SimpleAtod(JavaTrim(raw), &v)) {
    return InvalidValue(key.name, raw, "Not a number of type DOUBLE");
  }
  if (key.name != "log.cleaner.min.cleanable.ratio") return v;
  if (v < 0) return InvalidValue(key.name, raw, "Value must be at least 0");
  if (v > 1) return InvalidValue(key.name, raw, "Value must be no more than 1");
  return v;
}

absl::StatusOr<bool> ParseBoolean(const KnownKey& key, absl::string_view raw) {
  absl::string_view s = JavaTrim(raw);
  if (absl::EqualsIgnoreCase(s, "true")) return true;
  if (absl::EqualsIgnoreCase(s, "false")) return false;
  return InvalidValue(key.name, raw, "Expected value to be either true or false");
}

// Parses a value as its key's type and applies the key's validator, as ConfigDef does
// for every key it defines.
absl::Status CheckValue(const KnownKey& key, absl::string_view raw) {
  switch (key.type) {
    case Type::kBoolean:
      return ParseBoolean(key, raw).status();
    case Type::kShort:
    case Type::kInt:
    case Type::kLong:
      return ParseNumber(key, raw).status();
    case Type::kDouble:
      return ParseDouble(key, raw).status();
    case Type::kUnknown:
    case Type::kClass:
    case Type::kPassword:
      return absl::OkStatus();
    case Type::kString: {
      absl::string_view s = JavaTrim(raw);
      if (!key.valid.empty() && !IsOneOf(s, key.valid)) {
        return InvalidValue(key.name, s, absl::StrCat("String must be one of: ", key.valid));
      }
      return absl::OkStatus();
    }
    case Type::kList:
      if (key.valid.empty()) return absl::OkStatus();
      for (const std::string& item : ParseList(raw)) {
        if (!IsOneOf(item, key.valid)) {
          return InvalidValue(key.name, item, absl::StrCat("String must be one of: ", key.valid));
        }
      }
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

// Typed reads; an absent key leaves the default in place.
class Props {
 public:
  explicit Props(const std::map<std::string, std::string>& map) : map_(map) {}

  const std::string* Find(absl::string_view key) const {
    auto it = map_.find(std::string(key));
    return it == map_.end() ? nullptr : &it->second;
  }

  template <typename T>
  absl::Status ReadNumber(absl::string_view key, T* out) const {
    const std::string* raw = Find(key);
    if (raw == nullptr) return absl::OkStatus();
    absl::StatusOr<int64_t> v = ParseNumber(*FindKnownKey(key), *raw);
    if (!v.ok()) return v.status();
    *out = static_cast<T>(*v);
    return absl::OkStatus();
  }

  absl::Status ReadBoolean(absl::string_view key, bool* out) const {
    const std::string* raw = Find(key);
    if (raw == nullptr) return absl::OkStatus();
    absl::StatusOr<bool> v = ParseBoolean(*FindKnownKey(key), *raw);
    if (!v.ok()) return v.status();
    *out = *v;
    return absl::OkStatus();
  }

  absl::Status ReadDouble(absl::string_view key, double* out) const {
    const std::string* raw = Find(key);
    if (raw == nullptr) return absl::OkStatus();
    absl::StatusOr<double> v = ParseDouble(*FindKnownKey(key), *raw);
    if (!v.ok()) return v.status();
    *out = *v;
    return absl::OkStatus();
  }

  absl::string_view Get(absl::string_view key, absl::string_view fallback) const {
    const std::string* raw = Find(key);
    return raw == nullptr ? fallback : absl::string_view(*raw);
  }

 private:
  const std::map<std::string, std::string>& map_;
};

bool IsIpv4(const std::string& host) {
  in_addr addr;
  return inet_pton(AF_INET, host.c_str(), &addr) == 1;
}

bool IsIpv6(const std::string& host) {
  std::string h = host.substr(0, host.find('%'));  // fe80::1%eth0: the zone is not the address
  in6_addr addr;
  return inet_pton(AF_INET6, h.c_str(), &addr) == 1;
}

bool IsHostChar(char c) {
  return absl::ascii_isalnum(c) || c == '-' || c == '%' || c == '.' || c == '_' || c == ':';
}

// One listener, NAME://host:port, matched as Kafka's
// ^(.*)://\[?([0-9a-zA-Z\-%._:]*)\]?:(-?[0-9]+) matches it. The port follows the last
// colon, so an IPv6 host parses with or without brackets.
absl::StatusOr<Endpoint> ParseEndpoint(absl::string_view item) {
  absl::Status unparsable =
      absl::InvalidArgumentError(absl::StrCat("Unable to parse ", item, " to a broker endpoint"));
  size_t sep = item.rfind("://");  // with a '/' after it the host could not match
  if (sep == absl::string_view::npos) return unparsable;
  absl::string_view rest = item.substr(sep + 3);
  size_t colon = rest.rfind(':');
  if (colon == absl::string_view::npos) return unparsable;
  absl::string_view host = rest.substr(0, colon);
  absl::string_view port = rest.substr(colon + 1);
  if (absl::StartsWith(host, "[")) host.remove_prefix(1);
  if (absl::EndsWith(host, "]")) host.remove_suffix(1);
  absl::string_view digits = absl::StartsWith(port, "-") ? port.substr(1) : port;
  if (!std::all_of(host.begin(), host.end(), IsHostChar) || digits.empty() ||
      !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit)) {
    return unparsable;
  }
  int64_t p = 0;
  if (!absl::SimpleAtoi(port, &p) || p < 0 || p > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port out of range: ", port));
  }
  Endpoint ep;
  ep.listener_name = absl::AsciiStrToUpper(item.substr(0, sep));
  ep.host = std::string(host);
  ep.port = static_cast<uint16_t>(p);
  return ep;
}

// A listener list (listeners or advertised.listeners) with Kafka's checks: every name
// has a security protocol and appears once; with distinct_ports, no two listeners share
// a port unless one binds an IPv4 and the other an IPv6 address (port 0 is exempt).
absl::StatusOr<std::vector<Endpoint>> ParseListeners(
    absl::string_view key, absl::string_view raw,
    const std::map<std::string, std::string>& protocols, bool distinct_ports) {
  absl::string_view value = JavaTrim(raw);
  auto fail = [&](absl::string_view why) { return InvalidValue(key, value, why); };
  std::vector<Endpoint> eps;
  for (const std::string& item : ParseList(value)) {
    if (item.empty()) continue;  // Kafka's CSV parsing drops empty items
    absl::StatusOr<Endpoint> ep = ParseEndpoint(item);
    if (!ep.ok()) return fail(ep.status().message());
    if (!protocols.contains(ep->listener_name)) {
      return fail(absl::StrCat("No security protocol defined for listener ", ep->listener_name));
    }
    eps.push_back(*std::move(ep));
  }
  std::set<std::string> names;
  for (const Endpoint& ep : eps) {
    if (!names.insert(ep.listener_name).second) {
      return fail(absl::StrCat("Each listener must have a different name, listeners: ", value));
    }
  }
  if (!distinct_ports) return eps;
  std::map<uint16_t, std::vector<const Endpoint*>> by_port;
  for (const Endpoint& ep : eps) {
    if (ep.port != 0) by_port[ep.port].push_back(&ep);
  }
  for (const auto& [port, group] : by_port) {
    if (group.size() < 2) continue;
    std::vector<const Endpoint*> ip, other;
    for (const Endpoint* ep : group)
      (IsIpv4(ep->host) || IsIpv6(ep->host) ? ip : other).push_back(ep);
    if (other.size() > 1) {
      return fail(absl::StrCat("Each listener must have a different port, listeners: ", value));
    }
    if (ip.empty()) continue;
    if (ip.size() == 2) {
      bool mixed = (IsIpv4(ip[0]->host) && IsIpv6(ip[1]->host)) ||
                   (IsIpv6(ip[0]->host) && IsIpv4(ip[1]->host));
      if (mixed && other.empty()) continue;
      return fail(absl::StrCat(
          "If you have two listeners on the same port then one needs to be IPv4 and the other "
          "IPv6, listeners: ",
          value, ", port: ", port));
    }
    return fail(absl::StrCat(
        "Each listener must have a different port unless exactly one listener has an IPv4 "
        "address and the other IPv6 address, listeners: ",
        value, ", port: ", port));
  }
  return eps;
}

// listener.security.protocol.map: NAME:PROTOCOL pairs; the name is what precedes the
// last colon. Names and protocols are upper-cased as Kafka normalises them.
absl::StatusOr<std::map<std::string, std::string>> ParseProtocolMap(absl::string_view raw) {
  constexpr absl::string_view kKey = "listener.security.protocol.map";
  std::map<std::string, std::string> protocols;
  for (const std::string& entry : ParseList(raw)) {
    if (entry.empty()) continue;
    size_t colon = entry.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("Error parsing configuration property '", kKey,
                                                     "': '", entry, "' is not NAME:PROTOCOL"));
    }
    absl::string_view protocol = JavaTrim(absl::string_view(entry).substr(colon + 1));
    std::string upper = absl::AsciiStrToUpper(protocol);
    if (!IsOneOf(upper, kSecurityProtocols)) {
      return absl::InvalidArgumentError(
          absl::StrCat("Invalid security protocol `", protocol, "` defined in ", kKey));
    }
    protocols[absl::AsciiStrToUpper(JavaTrim(absl::string_view(entry).substr(0, colon)))] = upper;
  }
  return protocols;
}

bool IsSslOrSasl(absl::string_view name) {
  return name == "SSL" || name == "SASL_SSL" || name == "SASL_PLAINTEXT";
}

std::string JoinNames(const std::vector<Endpoint>& eps) {
  return absl::StrJoin(eps, ",",
                       [](std::string* out, const Endpoint& ep) { out->append(ep.listener_name); });
}

bool HasName(const std::vector<Endpoint>& eps, absl::string_view name) {
  return std::any_of(eps.begin(), eps.end(),
                     [&](const Endpoint& ep) { return ep.listener_name == name; });
}

// Kafka advertises InetAddress.getLocalHost().getCanonicalHostName() for a listener
// without a host; gethostname() is the name that lookup starts from.
std::string LocalHostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

absl::Status BuildListeners(const Props& props, BrokerConfig* cfg) {
  std::vector<std::string> controller_names;
  for (const std::string& name : ParseList(props.Get("controller.listener.names", ""))) {
    if (!name.empty()) controller_names.push_back(absl::AsciiStrToUpper(name));
  }
  auto is_controller = [&](const Endpoint& ep) {
    return std::find(controller_names.begin(), controller_names.end(), ep.listener_name) !=
           controller_names.end();
  };
  absl::string_view listeners_raw = props.Get("listeners", kDefaultListeners);

  const std::string* map_raw = props.Find("listener.security.protocol.map");
  absl::StatusOr<std::map<std::string, std::string>> protocols =
      ParseProtocolMap(map_raw != nullptr ? *map_raw : kDefaultProtocolMap);
  if (!protocols.ok()) return protocols.status();
  if (map_raw == nullptr) {
    // As in KRaft: without an explicit map, controller listeners default to PLAINTEXT
    // unless SSL or SASL is in use anywhere.
    bool secure = std::any_of(controller_names.begin(), controller_names.end(), IsSslOrSasl);
    for (const std::string& item : ParseList(listeners_raw)) {
      size_t colon = item.find(':');
      if (colon != std::string::npos && IsSslOrSasl(absl::AsciiStrToUpper(item.substr(0, colon)))) {
        secure = true;
      }
    }
    if (!secure) {
      for (const std::string& name : controller_names) (*protocols)[name] = "PLAINTEXT";
    }
  }
  cfg->listener_security_protocol_map = *protocols;

  absl::StatusOr<std::vector<Endpoint>> all =
      ParseListeners("listeners", listeners_raw, *protocols, true);
  if (!all.ok()) return all.status();
  const std::string* advertised_raw = props.Find("advertised.listeners");
  absl::StatusOr<std::vector<Endpoint>> advertised = *all;
  if (advertised_raw != nullptr) {
    advertised = ParseListeners("advertised.listeners", *advertised_raw, *protocols, false);
    if (!advertised.ok()) return advertised.status();
  }
  cfg->listeners.clear();
  for (const Endpoint& ep : *all) {
    if (!is_controller(ep)) cfg->listeners.push_back(ep);
  }
  cfg->advertised_listeners.clear();
  for (const Endpoint& ep : *advertised) {
    if (!is_controller(ep)) cfg->advertised_listeners.push_back(ep);
  }

  // KafkaConfig.validateValues, for the broker role.
  if (cfg->advertised_listeners.empty()) {
    std::string why = "There must be at least one broker advertised listener.";
    std::vector<std::string> roles = ParseList(props.Get("process.roles", ""));
    if (std::find(roles.begin(), roles.end(), "broker") != roles.end()) {
      absl::StrAppend(&why, " Perhaps all listeners appear in controller.listener.names?");
    }
    return absl::InvalidArgumentError(why);
  }
  // Kafka also requires its default inter-broker listener, PLAINTEXT, when the name is
  // not set; a single broker has no inter-broker traffic, so only an explicit name is
  // checked.
  if (const std::string* inter = props.Find("inter.broker.listener.name")) {
    std::string name = absl::AsciiStrToUpper(JavaTrim(*inter));
    if (!protocols->contains(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("Listener with name ", name,
                       " defined in inter.broker.listener.name not found in "
                       "listener.security.protocol.map."));
    }
    if (!HasName(cfg->advertised_listeners, name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "inter.broker.listener.name must be a listener name defined in advertised.listeners. "
          "The valid options based on currently configured listeners are ",
          JoinNames(cfg->advertised_listeners)));
    }
  }
  for (const Endpoint& ep : cfg->advertised_listeners) {
    if (!HasName(*all, ep.listener_name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "advertised.listeners listener names must be equal to or a subset of the ones "
          "defined in listeners. Found ",
          JoinNames(cfg->advertised_listeners),
          ". The valid options based on the current configuration are ", JoinNames(*all)));
    }
  }
  for (const Endpoint& ep : advertised_raw != nullptr ? *advertised : cfg->advertised_listeners) {
    if (ep.host == "0.0.0.0") {
      return absl::InvalidArgumentError(
          "advertised.listeners cannot use the nonroutable meta-address 0.0.0.0. Use a "
          "routable IP address.");
    }
  }
  for (Endpoint& ep : cfg->advertised_listeners) {
    if (ep.host.empty()) ep.host = LocalHostName();
  }
  return absl::OkStatus();
}

// log.dirs if set, else log.dir: a non-empty list of distinct, non-empty paths.
absl::Status BuildLogDirs(const Props& props, BrokerConfig* cfg) {
  absl::string_view key = props.Find("log.dirs") != nullptr ? "log.dirs" : "log.dir";
  std::vector<std::string> dirs = ParseList(props.Get(key, kDefaultLogDir));
  if (dirs.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Configuration '", key, "' must not be empty. Valid values include: any non-empty value"));
  }
  if (std::set<std::string>(dirs.begin(), dirs.end()).size() != dirs.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Configuration '", key, "' values must not be duplicated."));
  }
  if (std::find(dirs.begin(), dirs.end(), "") != dirs.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Configuration '", key, "' values must not be empty."));
  }
  cfg->log_dirs = std::move(dirs);
  return absl::OkStatus();
}

// node.id and its old name broker.id: Kafka copies whichever is set into the other and
// then requires them to agree.
absl::Status BuildNodeId(const Props& props, BrokerConfig* cfg) {
  int32_t broker_id = -1;
  if (absl::Status s = props.ReadNumber("broker.id", &broker_id); !s.ok()) return s;
  if (absl::Status s = props.ReadNumber("node.id", &cfg->node_id); !s.ok()) return s;
  bool has_node = props.Find("node.id") != nullptr;
  bool has_broker = props.Find("broker.id") != nullptr;
  if (has_node && has_broker && cfg->node_id != broker_id) {
    return absl::InvalidArgumentError("You must set `node.id` to the same value as `broker.id`.");
  }
  if (!has_node && has_broker) {
    if (broker_id < 0) {
      return InvalidValue("node.id", absl::StrCat(broker_id), "Value must be at least 0");
    }
    cfg->node_id = broker_id;
  }
  return absl::OkStatus();
}

absl::Status BuildScalars(const Props& props, BrokerConfig* cfg) {
  int32_t replication_factor = cfg->default_replication_factor;
  for (absl::Status s : {
           props.ReadNumber("num.partitions", &cfg->num_partitions),
           props.ReadNumber("default.replication.factor", &replication_factor),
           props.ReadBoolean("auto.create.topics.enable", &cfg->auto_create_topics_enable),
           props.ReadBoolean("delete.topic.enable", &cfg->delete_topic_enable),
           props.ReadNumber("message.max.bytes", &cfg->message_max_bytes),
           props.ReadNumber("socket.request.max.bytes", &cfg->socket_request_max_bytes),
           props.ReadBoolean("log.in.memory", &cfg->log_in_memory),
       }) {
    if (!s.ok()) return s;
  }
  cfg->cluster_id = std::string(JavaTrim(props.Get("cluster.id", "")));
  cfg->logging_level = std::string(JavaTrim(props.Get("logging.level", cfg->logging_level)));
  if (absl::string_view metrics = JavaTrim(props.Get("metrics.listener", "")); !metrics.empty()) {
    // host:port, or http://host:port; the endpoint parser wants a scheme.
    absl::StatusOr<Endpoint> ep =
        ParseEndpoint(absl::StrContains(metrics, "://") ? std::string(metrics)
                                                        : absl::StrCat("http://", metrics));
    if (!ep.ok()) return InvalidValue("metrics.listener", metrics, ep.status().message());
    cfg->metrics_listener = *std::move(ep);
  }
  // Kafka declares an INT but replication factors travel as INT16 on the wire.
  if (replication_factor < INT16_MIN || replication_factor > INT16_MAX) {
    return InvalidValue("default.replication.factor", absl::StrCat(replication_factor),
                        "Not a number of type SHORT");
  }
  cfg->default_replication_factor = static_cast<int16_t>(replication_factor);
  return absl::OkStatus();
}

// Kafka's precedence for keys with several units: ms, then minutes or hours.
absl::Status ReadDuration(const Props& props, absl::string_view ms_key,
                          absl::string_view minutes_key, absl::string_view hours_key,
                          int64_t* out) {
  int64_t ms = -2, minutes = -2, hours = -2;
  for (absl::Status s :
       {props.ReadNumber(ms_key, &ms),
        minutes_key.empty() ? absl::OkStatus() : props.ReadNumber(minutes_key, &minutes),
        props.ReadNumber(hours_key, &hours)}) {
    if (!s.ok()) return s;
  }
  if (props.Find(ms_key) != nullptr) {
    *out = ms;
  } else if (!minutes_key.empty() && props.Find(minutes_key) != nullptr) {
    *out = minutes * 60 * 1000;
  } else if (props.Find(hours_key) != nullptr) {
    *out = hours * 60 * 60 * 1000;
  }
  return absl::OkStatus();
}

// The log.* topic defaults and the storage engine's schedules.
absl::Status BuildLogSettings(const Props& props, BrokerConfig* cfg) {
  storage::LogConfig& d = cfg->log_defaults;
  int64_t retention_bytes = -1;
  int64_t flush_messages = d.flush_messages;
  int64_t flush_ms = -1;
  for (absl::Status s : {
           props.ReadNumber("log.segment.bytes", &d.segment_bytes),
           props.ReadNumber("log.index.interval.bytes", &d.index_interval_bytes),
           props.ReadNumber("log.index.size.max.bytes", &d.segment_index_bytes),
           ReadDuration(props, "log.roll.ms", "", "log.roll.hours", &d.segment_ms),
           ReadDuration(props, "log.retention.ms", "log.retention.minutes", "log.retention.hours",
                        &d.retention_ms),
           props.ReadNumber("log.retention.bytes", &retention_bytes),
           props.ReadNumber("log.cleaner.delete.retention.ms", &d.delete_retention_ms),
           props.ReadDouble("log.cleaner.min.cleanable.ratio", &d.min_cleanable_dirty_ratio),
           props.ReadNumber("log.cleaner.min.compaction.lag.ms", &d.min_compaction_lag_ms),
           props.ReadNumber("log.cleaner.max.compaction.lag.ms", &d.max_compaction_lag_ms),
           props.ReadNumber("log.flush.interval.messages", &flush_messages),
           props.ReadNumber("log.flush.scheduler.interval.ms",
                            &cfg->log_flush_scheduler_interval_ms),
           props.ReadNumber("log.flush.interval.ms", &flush_ms),
           props.ReadBoolean("log.fsync.before.ack", &cfg->log_fsync_before_ack),
           props.ReadNumber("log.retention.check.interval.ms",
                            &cfg->log_retention_check_interval_ms),
           props.ReadBoolean("log.cleaner.enable", &cfg->log_cleaner_enable),
           props.ReadNumber("log.cleaner.backoff.ms", &cfg->log_cleaner_backoff_ms),
           props.ReadNumber("log.cleaner.dedupe.buffer.size", &cfg->log_cleaner_dedupe_buffer_size),
           props.ReadNumber("log.flush.offset.checkpoint.interval.ms",
                            &cfg->log_flush_offset_checkpoint_interval_ms),
           props.ReadNumber("log.flush.start.offset.checkpoint.interval.ms",
                            &cfg->log_flush_start_offset_checkpoint_interval_ms),
           props.ReadNumber("producer.id.expiration.ms", &d.producer_id_expiration_ms),
           props.ReadNumber("producer.id.expiration.check.interval.ms",
                            &cfg->producer_id_expiration_check_interval_ms),
       }) {
    if (!s.ok()) return s;
  }
  if (d.retention_ms < 0) d.retention_ms = storage::kNoLimit;  // -1: no time limit
  d.retention_bytes = retention_bytes < 0 ? storage::kNoLimit : retention_bytes;
  d.flush_messages = flush_messages;
  // log.flush.interval.ms falls back to log.flush.scheduler.interval.ms, as in Kafka.
  d.flush_ms = props.Find("log.flush.interval.ms") != nullptr
                   ? flush_ms
                   : cfg->log_flush_scheduler_interval_ms;
  std::vector<std::string> policy = ParseList(props.Get("log.cleanup.policy", "delete"));
  d.delete_policy = std::find(policy.begin(), policy.end(), "delete") != policy.end();
  d.compact_policy = std::find(policy.begin(), policy.end(), "compact") != policy.end();
  return absl::OkStatus();
}

absl::Status UsageError(absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(problem, "\n", kUsage));
}

}  // namespace

std::span<const BrokerKey> BrokerKeys() { return kKnownKeys; }

const BrokerKey* FindBrokerKey(absl::string_view name) { return FindKnownKey(name); }

absl::Status CheckBrokerValue(const BrokerKey& key, absl::string_view value) {
  return CheckValue(key, value);
}

absl::StatusOr<ParsedCommandLine> ParseCommandLine(int argc, const char* const* argv) {
  ParsedCommandLine cmd;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    absl::string_view override_arg;
    if (arg == "--override") {
      if (i + 1 == argc) return UsageError("Option override requires an argument");
      override_arg = argv[++i];
    } else if (absl::StartsWith(arg, "--override=")) {
      override_arg = arg.substr(absl::string_view("--override=").size());
    } else if (arg == "--help" || arg == "-h") {
      return UsageError("Runnel, a Kafka-compatible broker.");
    } else if (arg.size() > 1 && arg[0] == '-') {
      return UsageError(absl::StrCat(arg, " is not a recognized option"));
    } else if (cmd.properties_file) {
      return UsageError(absl::StrCat("Found non argument parameters: ", arg));
    } else {
      cmd.properties_file = std::string(arg);
      continue;
    }
    // Kafka would take "--override key" as key="", which hides typos; require the '='.
    size_t eq = override_arg.find('=');
    if (eq == absl::string_view::npos || eq == 0) {
      return UsageError(
          absl::StrCat("Invalid override '", override_arg, "': expected property=value"));
    }
    cmd.overrides.emplace_back(override_arg.substr(0, eq), override_arg.substr(eq + 1));
  }
  return cmd;
}

absl::StatusOr<BrokerConfig> BuildConfig(const std::map<std::string, std::string>& properties,
                                         std::vector<std::string>* warnings) {
  BrokerConfig cfg;
  cfg.properties = properties;
  for (const auto& [key, value] : properties) {
    if (std::binary_search(std::begin(kKeysWithoutEffect), std::end(kKeysWithoutEffect), key)) {
      cfg.keys_without_effect.push_back(key);
    }
    const KnownKey* known = FindKnownKey(key);
    if (known == nullptr) {
      if (warnings != nullptr) {
        warnings->push_back(
            absl::StrCat("The configuration '", key, "' was supplied but isn't a known config."));
      }
      continue;
    }
    if (absl::Status s = CheckValue(*known, value); !s.ok()) return s;
  }
  Props props(properties);
  if (absl::Status s = BuildNodeId(props, &cfg); !s.ok()) return s;
  if (absl::Status s = BuildScalars(props, &cfg); !s.ok()) return s;
  if (absl::Status s = BuildLogSettings(props, &cfg); !s.ok()) return s;
  if (absl::Status s = BuildLogDirs(props, &cfg); !s.ok()) return s;
  if (absl::Status s = BuildListeners(props, &cfg); !s.ok()) return s;
  return cfg;
}

absl::StatusOr<BrokerConfig> LoadConfig(const ParsedCommandLine& cmd,
                                        std::vector<std::string>* warnings) {
  std::map<std::string, std::string> properties;
  if (cmd.properties_file) {
    absl::StatusOr<std::map<std::string, std::string>> file =
        ReadPropertiesFile(*cmd.properties_file);
    if (!file.ok()) return file.status();
    properties = *std::move(file);
  }
  for (const auto& [key, value] : cmd.overrides) properties[key] = value;
  return BuildConfig(properties, warnings);
}

}  // namespace runnel::broker
