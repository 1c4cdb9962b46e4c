#include "broker/producer_id_manager.h"

#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "storage/file.h"

namespace runnel::broker {
namespace {

// The string value of "key":"value" in the record, or empty.
absl::string_view StringField(absl::string_view text, absl::string_view key) {
  std::string quoted = absl::StrCat("\"", key, "\":\"");
  size_t at = text.find(quoted);
  if (at == absl::string_view::npos) return {};
  text.remove_prefix(at + quoted.size());
  size_t end = text.find('"');
  return end == absl::string_view::npos ? absl::string_view() : text.substr(0, end);
}

}  // namespace

std::string ProducerIdManager::FormatBlock(int32_t node_id, int64_t first, int64_t last) {
  return absl::StrCat("{\"version\":1,\"broker\":", node_id, ",\"block_start\":\"", first,
                      "\",\"block_end\":\"", last, "\"}");
}

absl::StatusOr<int64_t> ProducerIdManager::ParseBlockEnd(absl::string_view text) {
  int64_t start = 0;
  int64_t end = 0;
  if (text.find("\"version\":1") == absl::string_view::npos ||
      !absl::SimpleAtoi(StringField(text, "block_start"), &start) ||
      !absl::SimpleAtoi(StringField(text, "block_end"), &end) || start < 0 || end < start) {
    return absl::DataLossError(absl::StrCat("Failed to parse the producer id block: ", text));
  }
  return end;
}

absl::StatusOr<int64_t> ProducerIdManager::Next() {
  if (next_ > block_end_) {
    if (absl::Status s = ClaimBlock(); !s.ok()) return s;
  }
  return next_++;
}

absl::Status ProducerIdManager::ClaimBlock() {
  int64_t first = 0;
  absl::StatusOr<std::string> text = storage::ReadFileToString(path_);
  if (text.ok()) {
    absl::StatusOr<int64_t> last_end = ParseBlockEnd(*text);
    if (!last_end.ok()) {
      return absl::DataLossError(absl::StrCat(path_.string(), ": ", last_end.status().message()));
    }
    if (*last_end > std::numeric_limits<int64_t>::max() - kProducerIdBlockSize) {
      return absl::ResourceExhaustedError("Have exhausted all producerIds.");
    }
    first = *last_end + 1;
  } else if (!absl::IsNotFound(text.status())) {
    return text.status();
  }
  const int64_t last = first + kProducerIdBlockSize - 1;
  // Durable before any id of the block leaves the broker.
  if (absl::Status s = storage::WriteFileAtomically(path_, FormatBlock(node_id_, first, last));
      !s.ok()) {
    return s;
  }
  next_ = first;
  block_end_ = last;
  return absl::OkStatus();
}

}  // namespace runnel::broker
