// DescribeLogDirs (key 35): the log dir with the size of every partition in it, and the
// file system's total and usable bytes (v4), as Kafka's ReplicaManager.describeLogDirs.
//
// Kafka quirks kept: when specific partitions are asked for, every topic of the dir is
// still listed, with the partitions not asked for left out (possibly none); a dir with
// no partitions carries no sizes (-1); an offline dir answers KAFKA_STORAGE_ERROR.
#include <sys/statvfs.h>

#include <filesystem>
#include <map>
#include <set>

#include "broker/broker.h"
#include "broker/handlers.h"
#include "protocol/messages/describe_log_dirs_request.h"
#include "protocol/messages/describe_log_dirs_response.h"

namespace runnel::broker {
namespace {

using Response = protocol::DescribeLogDirsResponse;

// Kafka's adjustForLargeFileSystems: a size that overflowed a Java long reads as max.
int64_t ClampToLong(unsigned long long bytes) {
  return bytes > static_cast<unsigned long long>(INT64_MAX) ? INT64_MAX
                                                            : static_cast<int64_t>(bytes);
}

}  // namespace

void HandleDescribeLogDirs(RequestContext& ctx) {
  protocol::DescribeLogDirsRequest request;
  if (!ctx.Decode(&request)) return;
  std::set<std::pair<std::string, int32_t>> wanted;
  if (request.topics) {
    for (const auto& t : *request.topics) {
      for (int32_t p : t.partitions) wanted.emplace(t.topic, p);
    }
  }
  auto is_wanted = [&](const std::string& topic, int32_t partition) {
    return !request.topics || wanted.contains({topic, partition});
  };

  Broker& broker = ctx.broker();
  Response response;
  auto& result = response.results.emplace_back();
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::absolute(broker.logs().log_dir(), ec);
  result.log_dir = (ec ? broker.logs().log_dir() : dir).string();
  if (broker.logs().offline()) {
    result.error_code = protocol::Code(protocol::ErrorCode::kKafkaStorageError);
    return ctx.Respond(response);
  }

  std::map<std::string, std::vector<Response::DescribeLogDirsPartition>> topics;
  auto add = [&](const std::string& topic, int32_t partition, const storage::PartitionLog& log) {
    auto& partitions = topics[topic];
    if (is_wanted(topic, partition)) {
      // offset_lag: 0 for a current (not future) replica at or behind its high watermark.
      partitions.push_back({partition, static_cast<int64_t>(log.size_bytes()), 0, false});
    }
  };
  broker.logs().ForEachPartition([&](const std::string& topic, int32_t partition,
                                     storage::PartitionLog& log) { add(topic, partition, log); });
  broker.ForEachInternalLog(add);
  if (topics.empty()) return ctx.Respond(response);

  for (auto& [name, partitions] : topics) {
    result.topics.push_back({name, std::move(partitions)});
  }
  struct statvfs fs;
  if (::statvfs(result.log_dir.c_str(), &fs) == 0) {
    result.total_bytes = ClampToLong(static_cast<unsigned long long>(fs.f_blocks) * fs.f_frsize);
    result.usable_bytes = ClampToLong(static_cast<unsigned long long>(fs.f_bavail) * fs.f_frsize);
  }
  ctx.Respond(response);
}

}  // namespace runnel::broker
