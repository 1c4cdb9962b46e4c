#include "storage/partition_metadata.h"

#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "storage/file.h"

namespace runnel::storage {

std::string TopicIdToString(const TopicId& id) {
  return absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<const char*>(id.data()), id.size()));
}

std::optional<TopicId> TopicIdFromString(std::string_view s) {
  std::string bytes;
  if (s.size() != 22 ||
      !absl::WebSafeBase64Unescape(absl::string_view(s.data(), s.size()), &bytes) ||
      bytes.size() != 16) {
    return std::nullopt;
  }
  TopicId id;
  std::memcpy(id.data(), bytes.data(), id.size());
  return id;
}

absl::Status WritePartitionMetadata(const std::filesystem::path& dir, const TopicId& id) {
  return WriteFileAtomically(dir / kPartitionMetadataFile,
                             absl::StrCat("version: 0\ntopic_id: ", TopicIdToString(id)));
}

absl::StatusOr<TopicId> ReadPartitionMetadata(const std::filesystem::path& dir) {
  std::filesystem::path path = dir / kPartitionMetadataFile;
  absl::StatusOr<std::string> contents = ReadFileToString(path);
  if (!contents.ok()) return contents.status();
  std::optional<absl::string_view> version;
  std::optional<absl::string_view> topic_id;
  for (absl::string_view line : absl::StrSplit(*contents, '\n', absl::SkipWhitespace())) {
    std::vector<absl::string_view> kv = absl::StrSplit(line, absl::MaxSplits(':', 1));
    if (kv.size() != 2) continue;
    absl::string_view key = absl::StripAsciiWhitespace(kv[0]);
    absl::string_view value = absl::StripAsciiWhitespace(kv[1]);
    if (key == "version") version = value;
    if (key == "topic_id") topic_id = value;
  }
  if (version != "0" || !topic_id) {
    return absl::DataLossError(absl::StrCat("unreadable ", path.string()));
  }
  std::optional<TopicId> id =
      TopicIdFromString(std::string_view(topic_id->data(), topic_id->size()));
  if (!id) return absl::DataLossError(absl::StrCat("bad topic_id in ", path.string()));
  return *id;
}

}  // namespace runnel::storage
