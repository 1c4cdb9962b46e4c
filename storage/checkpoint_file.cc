#include "storage/checkpoint_file.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "storage/file.h"

namespace runnel::storage {

absl::Status WriteCheckpointFile(const std::filesystem::path& path,
                                 const PartitionOffsets& offsets) {
  std::string text = absl::StrCat("0\n", offsets.size(), "\n");
  for (const auto& [tp, offset] : offsets) {
    absl::StrAppend(&text, tp.first, " ", tp.second, " ", offset, "\n");
  }
  return WriteFileAtomically(path, text);
}

absl::StatusOr<PartitionOffsets> ReadCheckpointFile(const std::filesystem::path& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (absl::IsNotFound(text.status())) return PartitionOffsets{};
  if (!text.ok()) return text.status();
  auto malformed = [&](absl::string_view why) {
    return absl::DataLossError(
        absl::StrCat("malformed checkpoint file ", path.string(), ": ", why));
  };
  std::vector<absl::string_view> lines = absl::StrSplit(*text, '\n', absl::SkipEmpty());
  size_t count = 0;
  if (lines.size() < 2 || lines[0] != "0") return malformed("unknown version");
  if (!absl::SimpleAtoi(lines[1], &count) || count != lines.size() - 2) {
    return malformed("wrong entry count");
  }
  PartitionOffsets out;
  for (size_t i = 2; i < lines.size(); ++i) {
    std::vector<absl::string_view> fields = absl::StrSplit(lines[i], ' ');
    int32_t partition;
    int64_t offset;
    if (fields.size() != 3 || fields[0].empty() || !absl::SimpleAtoi(fields[1], &partition) ||
        !absl::SimpleAtoi(fields[2], &offset)) {
      return malformed(absl::StrCat("line ", i + 1));
    }
    out[{std::string(fields[0]), partition}] = offset;
  }
  return out;
}

}  // namespace runnel::storage
