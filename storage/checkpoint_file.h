// Kafka's offset checkpoint files, one per log dir:
//   recovery-point-offset-checkpoint   offsets below which each partition was fsynced
//   log-start-offset-checkpoint        log start offsets raised above the first segment
// Format (text, as Kafka's OffsetCheckpointFile):
//   0                      the version
//   <entry count>
//   <topic> <partition> <offset>     one line per entry
// Written atomically (temp file, fsync, rename, fsync the dir). A missing file reads as
// empty; a malformed one is DataLoss, which callers treat as "no checkpoint" (a full
// recovery) rather than trusting any of it.
#ifndef RUNNEL_STORAGE_CHECKPOINT_FILE_H_
#define RUNNEL_STORAGE_CHECKPOINT_FILE_H_

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace runnel::storage {

using PartitionOffsets = std::map<std::pair<std::string, int32_t>, int64_t>;

absl::Status WriteCheckpointFile(const std::filesystem::path& path,
                                 const PartitionOffsets& offsets);
absl::StatusOr<PartitionOffsets> ReadCheckpointFile(const std::filesystem::path& path);

}  // namespace runnel::storage

#endif  // RUNNEL_STORAGE_CHECKPOINT_FILE_H_
