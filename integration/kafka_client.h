// Client-side helpers for the C++ integration tests, built on librdkafka's C
// API: generate a deterministic message set, create a topic, produce it, wait
// for end offsets, read partitions back with assign(), and compare.

#ifndef RUNNEL_INTEGRATION_KAFKA_CLIENT_H_
#define RUNNEL_INTEGRATION_KAFKA_CLIENT_H_

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace runnel::integration {

struct Header {
  std::string key;
  std::optional<std::string> value;  // nullopt: a null header value
  bool operator==(const Header&) const = default;
};

struct Message {
  int32_t partition = 0;
  int64_t offset = -1;  // as read back (or as acknowledged)
  std::optional<std::string> key;
  std::optional<std::string> value;  // nullopt: a null value (tombstone)
  std::vector<Header> headers;
  int64_t timestamp = -1;  // CreateTime, ms
};

// n messages spread round-robin over partitions, each with a distinct key,
// a value of varying size (some empty, some null), 0-3 headers (one with a
// null value) and an explicit CreateTime.
std::vector<Message> MakeMessages(int n, int partitions, const std::string& tag);

// Messages of one partition, in production order.
std::vector<Message> ForPartition(const std::vector<Message>& all, int32_t partition);

// Creates a topic through the Admin API. Returns "" or an error description.
std::string CreateTopic(const std::string& bootstrap, const std::string& topic, int partitions);

struct ProduceOptions {
  std::string acks = "all";
  std::string compression = "none";
};

// Produces all messages (to their partitions) and waits for every delivery
// report. On success fills each message's offset from its report (-1 for
// acks=0) and returns ""; otherwise returns an error description.
std::string Produce(const std::string& bootstrap, const std::string& topic,
                    std::vector<Message>* messages, const ProduceOptions& options);

// One record as read back: its offset, key ("<null>" for none) and value.
struct ReadRecord {
  int64_t offset;
  std::string key;
  std::string value;
};

// Reads partition p from offset 0 to its end (partition EOF) with CRC checks on; a
// consumer error (or no EOF within 60 s) ends the read and is returned in *error.
std::vector<ReadRecord> ReadPartition(const std::string& bootstrap, const std::string& topic,
                                      int32_t p, std::string* error);

// Low and high watermarks of one partition, asked of the broker.
struct Watermarks {
  int64_t low = -1;
  int64_t high = -1;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
};
Watermarks QueryWatermarks(const std::string& bootstrap, const std::string& topic,
                           int32_t partition);

// Waits until each partition's high watermark reaches want[partition].
// Returns "" or a description of the last watermarks seen.
std::string WaitForEndOffsets(const std::string& bootstrap, const std::string& topic,
                              const std::vector<int64_t>& want, std::chrono::seconds timeout);

// Reads partitions [0, want.size()) from the beginning with assign() until
// each has want[p] messages (or timeout); returns them per partition.
// Any consumer error is returned in *error.
std::vector<std::vector<Message>> ConsumeFromBeginning(const std::string& bootstrap,
                                                       const std::string& topic,
                                                       const std::vector<int64_t>& want,
                                                       std::chrono::seconds timeout,
                                                       std::string* error);

// "" if got equals want message by message (key, value, headers, timestamp,
// partition) with offsets consecutive from 0; else the first difference.
std::string CompareLog(const std::vector<Message>& want, const std::vector<Message>& got);

std::string Describe(const Message& m);

}  // namespace runnel::integration

#endif  // RUNNEL_INTEGRATION_KAFKA_CLIENT_H_
