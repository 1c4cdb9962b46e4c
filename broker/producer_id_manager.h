// ProducerIdManager: hands out the producer ids of InitProducerId, never the same one
// twice, across restarts and crashes, in blocks of 1000 as Kafka's controller hands them
// to brokers (ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE).
//
// The latest block claimed is kept in the log dir, in the file and format of Kafka's
// ZooKeeper znode /latest_producer_id_block (ProducerIdBlockZNode, version 1; ids
// inclusive, as decimal strings):
//   <log.dir>/latest_producer_id_block
//   {"version":1,"broker":<node.id>,"block_start":"<first id>","block_end":"<last id>"}
// Invariant: an id is handed out only from a block whose record is durable (written
// atomically and fsynced) beforehand. A block is claimed at the first request after a
// start and whenever the current one runs out; the ids left in a block when the broker
// stops are never used, so ids only grow: the first block is 0-999, the first id after a
// restart is the previous block's end + 1. No file is touched before the first request.
// A record that cannot be parsed fails the claim (DataLoss) rather than risk reuse.
// Thread-compatible: the broker's event loop.
#ifndef RUNNEL_BROKER_PRODUCER_ID_MANAGER_H_
#define RUNNEL_BROKER_PRODUCER_ID_MANAGER_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace runnel::broker {

inline constexpr std::string_view kProducerIdBlockFile = "latest_producer_id_block";
inline constexpr int64_t kProducerIdBlockSize = 1000;

class ProducerIdManager {
 public:
  ProducerIdManager(std::filesystem::path log_dir, int32_t node_id)
      : path_(log_dir / kProducerIdBlockFile), node_id_(node_id) {}

  // The next unused producer id; claims a new block first if needed. Errors: the record
  // could not be read, parsed or written, or every id is used.
  absl::StatusOr<int64_t> Next();

  // The record's text for a block, and its parse (the last id of the block).
  static std::string FormatBlock(int32_t node_id, int64_t first, int64_t last);
  static absl::StatusOr<int64_t> ParseBlockEnd(absl::string_view text);

 private:
  absl::Status ClaimBlock();

  std::filesystem::path path_;
  int32_t node_id_;
  int64_t next_ = 0;
  int64_t block_end_ = -1;  // next_ > block_end_: no usable block
};

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_PRODUCER_ID_MANAGER_H_
