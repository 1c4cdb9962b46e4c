#include "broker/dynamic_config.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "broker/config.h"
#include "broker/properties.h"
#include "storage/file.h"

namespace runnel::broker {
namespace {

constexpr absl::string_view kClusterPrefix = "cluster/";
constexpr absl::string_view kBrokerPrefix = "broker/";

// Escapes a key or value for a .properties line, as Properties.store does for the
// characters properties.h would otherwise read differently.
std::string Escape(absl::string_view s, bool is_key) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\f':
        out += "\\f";
        break;
      case '=':
      case ':':
      case '#':
      case '!':
        out += '\\';
        out += c;
        break;
      case ' ':
        if (is_key || i == 0) out += '\\';
        out += ' ';
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string BracketedList(const std::set<std::string>& keys) {
  return absl::StrCat("[", absl::StrJoin(keys, ", "), "]");
}

}  // namespace

std::optional<int32_t> ParseBrokerId(absl::string_view name) {
  absl::string_view digits = name;
  if (!digits.empty() && (digits[0] == '+' || digits[0] == '-')) digits.remove_prefix(1);
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit)) {
    return std::nullopt;
  }
  int32_t id = 0;
  if (!absl::SimpleAtoi(name, &id)) return std::nullopt;
  return id;
}

std::string BrokerResourceNameError(absl::string_view name, int32_t node_id) {
  if (name.empty()) return "";
  std::optional<int32_t> id = ParseBrokerId(name);
  if (!id) return absl::StrCat("Node id must be an integer, but it is: ", name);
  if (*id != node_id) {
    return absl::StrCat("Unexpected broker id, expected ", node_id, ", but received ", name);
  }
  return "";
}

std::string SerializeDynamicConfigs(const DynamicBrokerConfigs& configs) {
  std::string out = "# Dynamic broker configs (AlterConfigs), written by Runnel\n";
  for (const auto& [prefix, map] : {std::pair{kClusterPrefix, &configs.cluster_defaults},
                                    std::pair{kBrokerPrefix, &configs.per_broker}}) {
    for (const auto& [key, value] : *map) {
      absl::StrAppend(&out, Escape(absl::StrCat(prefix, key), true), "=", Escape(value, false),
                      "\n");
    }
  }
  return out;
}

absl::StatusOr<DynamicBrokerConfigs> ParseDynamicConfigs(absl::string_view text) {
  absl::StatusOr<std::map<std::string, std::string>> props =
      ParseProperties(std::string_view(text.data(), text.size()));
  if (!props.ok()) return props.status();
  DynamicBrokerConfigs configs;
  for (auto& [key, value] : *props) {
    absl::string_view k = key;
    if (absl::StartsWith(k, kClusterPrefix)) {
      configs.cluster_defaults[std::string(k.substr(kClusterPrefix.size()))] = value;
    } else if (absl::StartsWith(k, kBrokerPrefix)) {
      configs.per_broker[std::string(k.substr(kBrokerPrefix.size()))] = value;
    } else {
      return absl::DataLossError(absl::StrCat("unexpected key in ", kDynamicConfigFile, ": ", key));
    }
  }
  return configs;
}

absl::StatusOr<DynamicBrokerConfigs> LoadDynamicConfigs(const std::filesystem::path& dir) {
  absl::StatusOr<std::string> text = storage::ReadFileToString(dir / kDynamicConfigFile);
  if (absl::IsNotFound(text.status())) return DynamicBrokerConfigs{};
  if (!text.ok()) return text.status();
  return ParseDynamicConfigs(*text);
}

absl::Status SaveDynamicConfigs(const std::filesystem::path& dir,
                                const DynamicBrokerConfigs& configs) {
  return storage::WriteFileAtomically(dir / kDynamicConfigFile, SerializeDynamicConfigs(configs));
}

absl::Status ValidateDynamicBrokerConfigs(const std::map<std::string, std::string>& configs,
                                          bool per_broker) {
  std::set<std::string> read_only, broker_only;
  for (const auto& [key, value] : configs) {
    const BrokerKey* k = FindBrokerKey(key);
    if (k == nullptr) continue;
    if (k->dynamic == DynamicUpdate::kReadOnly) read_only.insert(key);
    if (k->dynamic == DynamicUpdate::kPerBroker) broker_only.insert(key);
  }
  if (!read_only.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Cannot update these configs dynamically: ", BracketedList(read_only)));
  }
  for (const auto& [key, value] : configs) {
    const BrokerKey* k = FindBrokerKey(key);
    if (k == nullptr) continue;
    if (absl::Status s = CheckBrokerValue(*k, value); !s.ok()) return s;
  }
  if (!per_broker && !broker_only.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Cannot update these configs at default cluster level, broker id must be specified: ",
        BracketedList(broker_only)));
  }
  return absl::OkStatus();
}

}  // namespace runnel::broker
