// partition.metadata: Kafka's file in each partition directory that names the topic id
// the partition belongs to, so a directory left over from a deleted topic is never
// mistaken for a newer topic of the same name.
//
// Format (text, exactly as Kafka's PartitionMetadataFileFormatter writes it, no newline
// at the end):
//   version: 0
//   topic_id: <the 16-byte id in base64url without padding, 22 characters>
// Written atomically (partition.metadata.tmp, fsync, rename). Readers accept any
// whitespace after the colons and a trailing newline, as Kafka's does.
#ifndef RUNNEL_STORAGE_PARTITION_METADATA_H_
#define RUNNEL_STORAGE_PARTITION_METADATA_H_

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace runnel::storage {

using TopicId = std::array<uint8_t, 16>;

inline constexpr const char kPartitionMetadataFile[] = "partition.metadata";

// Kafka's Uuid.toString(): base64url, no padding.
std::string TopicIdToString(const TopicId& id);
std::optional<TopicId> TopicIdFromString(std::string_view s);

absl::Status WritePartitionMetadata(const std::filesystem::path& dir, const TopicId& id);
// NotFound if the file is absent, DataLoss if it does not parse.
absl::StatusOr<TopicId> ReadPartitionMetadata(const std::filesystem::path& dir);

}  // namespace runnel::storage

#endif  // RUNNEL_STORAGE_PARTITION_METADATA_H_
