// LogManager: topic creation, deletion and growth, persisted across reopen; the
// partition.metadata and topics.metadata files; cleanup of leftovers.
#include "storage/log_manager.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "protocol/record_batch.h"
#include "tests/slurp.h"

namespace runnel::storage {
namespace {

namespace fs = std::filesystem;
using Configs = std::map<std::string, std::string>;

std::string OneRecordBatch(const std::string& value) {
  protocol::RecordToAdd r;
  r.value = value;
  r.timestamp = 1;
  return protocol::BuildBatch({r});
}

// The broker's job in production; here segment.bytes is the only key honoured.
LogConfig Resolve(const Configs& configs) {
  LogConfig config;
  if (auto it = configs.find("segment.bytes"); it != configs.end()) {
    config.segment_bytes = std::stoll(it->second);
  }
  return config;
}

class LogManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "log_manager_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<LogManager> OpenManager() {
    auto m = LogManager::Open(dir_, Resolve);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *std::move(m) : nullptr;
  }

  fs::path dir_;
};

TEST_F(LogManagerTest, CreateTopicMakesPartitionDirectories) {
  auto m = OpenManager();
  ASSERT_NE(m, nullptr);
  auto t = m->CreateTopic("orders", 3, {{"cleanup.policy", "delete"}});
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->name, "orders");
  EXPECT_EQ((*t)->partitions, 3);
  EXPECT_EQ((*t)->configs, (Configs{{"cleanup.policy", "delete"}}));
  // A random version 4, variant 1 UUID.
  EXPECT_EQ((*t)->id[6] >> 4, 4);
  EXPECT_EQ((*t)->id[8] >> 6, 2);

  const std::string id = TopicIdToString((*t)->id);
  ASSERT_EQ(id.size(), 22u);
  EXPECT_NE(id[0], '-');
  for (int p = 0; p < 3; ++p) {
    fs::path pdir = dir_ / ("orders-" + std::to_string(p));
    EXPECT_TRUE(fs::exists(pdir / "00000000000000000000.log"));
    EXPECT_EQ(Slurp(pdir / "partition.metadata"), "version: 0\ntopic_id: " + id);
    ASSERT_NE(m->Partition("orders", p), nullptr);
  }
  EXPECT_EQ(m->Partition("orders", 3), nullptr);
  EXPECT_EQ(m->Partition("orders", -1), nullptr);
  EXPECT_EQ(m->Partition("other", 0), nullptr);
  EXPECT_EQ(m->FindTopic("orders"), *t);
  EXPECT_EQ(m->FindTopicById((*t)->id), *t);
  EXPECT_EQ(m->FindTopic("other"), nullptr);
  EXPECT_EQ(m->FindTopicById(std::array<uint8_t, 16>{}), nullptr);

  EXPECT_EQ(m->CreateTopic("orders", 1, {}).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(m->CreateTopic("bad/name", 1, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m->CreateTopic("..", 1, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m->CreateTopic(std::string(250, 'a'), 1, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m->CreateTopic("zero", 0, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir_ / "zero-0"));
}

TEST_F(LogManagerTest, PartitionMetadataRoundTrips) {
  TopicId id{};
  for (size_t i = 0; i < id.size(); ++i) id[i] = static_cast<uint8_t>(0xf0 + i);
  // Kafka's Uuid.toString(): URL-safe base64 without padding.
  EXPECT_EQ(TopicIdToString(id), "8PHy8_T19vf4-fr7_P3-_w");
  EXPECT_EQ(TopicIdFromString("8PHy8_T19vf4-fr7_P3-_w"), id);
  EXPECT_EQ(TopicIdFromString("8PHy8_T19vf4-fr7_P3-_w=="), std::nullopt);
  ASSERT_TRUE(WritePartitionMetadata(dir_, id).ok());
  EXPECT_EQ(Slurp(dir_ / "partition.metadata"), "version: 0\ntopic_id: 8PHy8_T19vf4-fr7_P3-_w");
  EXPECT_FALSE(fs::exists(dir_ / "partition.metadata.tmp"));
  auto read = ReadPartitionMetadata(dir_);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, id);
  std::ofstream(dir_ / "partition.metadata") << "version: 0\ntopic_id:   8PHy8_T19vf4-fr7_P3-_w\n";
  read = ReadPartitionMetadata(dir_);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, id);
  std::ofstream(dir_ / "partition.metadata") << "version: 1\ntopic_id: 8PHy8_T19vf4-fr7_P3-_w";
  EXPECT_EQ(ReadPartitionMetadata(dir_).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(LogManagerTest, TopicsPersistAcrossReopen) {
  std::array<uint8_t, 16> orders_id, users_id;
  std::string stored;
  {
    auto m = OpenManager();
    ASSERT_NE(m, nullptr);
    auto users = m->CreateTopic("users", 1, {{"segment.bytes", "1000"}, {"a", ""}});
    auto orders = m->CreateTopic("orders", 2, {});
    ASSERT_TRUE(users.ok() && orders.ok());
    users_id = (*users)->id;
    orders_id = (*orders)->id;
    EXPECT_NE(users_id, orders_id);
    stored = OneRecordBatch("hello");
    ASSERT_TRUE(m->Partition("orders", 1)->Append(stored.data(), stored.size()).ok());
    ASSERT_TRUE(m->Close().ok());
  }
  EXPECT_FALSE(fs::exists(dir_ / "topics.metadata.tmp"));
  auto m = OpenManager();
  ASSERT_NE(m, nullptr);
  std::vector<const TopicMetadata*> topics = m->Topics();
  ASSERT_EQ(topics.size(), 2u);
  EXPECT_EQ(topics[0]->name, "orders");  // sorted by name
  EXPECT_EQ(topics[0]->id, orders_id);
  EXPECT_EQ(topics[0]->partitions, 2);
  EXPECT_TRUE(topics[0]->configs.empty());
  EXPECT_EQ(topics[1]->name, "users");
  EXPECT_EQ(topics[1]->id, users_id);
  EXPECT_EQ(topics[1]->configs, (Configs{{"a", ""}, {"segment.bytes", "1000"}}));
  EXPECT_EQ(m->FindTopicById(users_id), topics[1]);

  PartitionLog* p = m->Partition("orders", 1);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->log_end_offset(), 1);
  auto info = p->Read(0, 1 << 20, false);
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->ranges.size(), 1u);
  std::string got(info->bytes, '\0');
  ASSERT_EQ(::pread(info->ranges[0].fd, got.data(), got.size(),
                    static_cast<off_t>(info->ranges[0].position)),
            static_cast<ssize_t>(got.size()));
  EXPECT_EQ(got, stored);
  EXPECT_EQ(m->Partition("orders", 0)->log_end_offset(), 0);
}

// After a clean stop, logs open on first use; Close keeps the checkpointed state of the
// ones never opened, so the next start still trusts them.
TEST_F(LogManagerTest, OpeningAfterACleanStopIsDeferred) {
  {
    auto m = OpenManager();
    ASSERT_NE(m, nullptr);
    ASSERT_TRUE(m->CreateTopic("orders", 3, {}).ok());
    for (int p = 0; p < 3; ++p) {
      for (int i = 0; i <= p; ++i) {
        std::string batch = OneRecordBatch("v" + std::to_string(i));
        ASSERT_TRUE(m->Partition("orders", p)->Append(batch.data(), batch.size()).ok());
      }
    }
    EXPECT_FALSE(m->OpenDeferredPartitions(0));  // nothing deferred without a clean stop
    ASSERT_TRUE(m->Close().ok());
  }
  {
    auto m = OpenManager();
    ASSERT_NE(m, nullptr);
    EXPECT_TRUE(m->opened_after_clean_shutdown());
    EXPECT_TRUE(m->OpenDeferredPartitions(0));  // all three still closed
    ASSERT_NE(m->Partition("orders", 1), nullptr);
    EXPECT_EQ(m->Partition("orders", 1)->log_end_offset(), 2);
    ASSERT_TRUE(m->Close().ok());  // orders-0 and orders-2 never opened
  }
  absl::StatusOr<PartitionOffsets> points =
      ReadCheckpointFile(dir_ / "recovery-point-offset-checkpoint");
  ASSERT_TRUE(points.ok()) << points.status();
  EXPECT_EQ(*points,
            (PartitionOffsets{{{"orders", 0}, 1}, {{"orders", 1}, 2}, {{"orders", 2}, 3}}));
  EXPECT_TRUE(fs::exists(dir_ / ".kafka_cleanshutdown"));

  auto m = OpenManager();
  ASSERT_NE(m, nullptr);
  std::vector<int64_t> ends;
  m->ForEachPartition([&](const std::string&, int32_t, PartitionLog& log) {
    ends.push_back(log.log_end_offset());
  });
  EXPECT_EQ(ends, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_FALSE(m->OpenDeferredPartitions(0));  // ForEachPartition opened them all
}

TEST_F(LogManagerTest, TopicsMetadataFileFormat) {
  auto m = OpenManager();
  ASSERT_NE(m, nullptr);
  auto t = m->CreateTopic("t", 7, {{"k", "vv"}});
  ASSERT_TRUE(t.ok());
  std::string file = Slurp(dir_ / "topics.metadata");
  std::string expected("RNTM\0\0\0\0\0\0\0\1\0\1t", 15);
  expected.append(reinterpret_cast<const char*>((*t)->id.data()), 16);
  expected += std::string("\0\0\0\7\0\0\0\1\0\1k\0\0\0\2vv", 17);
  ASSERT_EQ(file.size(), expected.size() + 4);
  EXPECT_EQ(file.substr(0, expected.size()), expected);
  uint32_t crc = protocol::Crc32c(expected.data(), expected.size());
  EXPECT_EQ(file.substr(expected.size()),
            std::string({static_cast<char>(crc >> 24), static_cast<char>(crc >> 16),
                         static_cast<char>(crc >> 8), static_cast<char>(crc)}));
}

TEST_F(LogManagerTest, CorruptTopicsMetadataFailsOpen) {
  {
    auto m = OpenManager();
    ASSERT_NE(m, nullptr);
    ASSERT_TRUE(m->CreateTopic("t", 1, {}).ok());
  }
  std::string file = Slurp(dir_ / "topics.metadata");
  file[10] ^= 1;
  std::ofstream(dir_ / "topics.metadata", std::ios::binary | std::ios::trunc) << file;
  auto m = LogManager::Open(dir_, Resolve);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(fs::exists(dir_ / "t-0"));  // nothing was cleaned up on the strength of it
}

TEST_F(LogManagerTest, DeleteTopicRemovesDirectoriesButNotOpenRanges) {
  std::string stored = OneRecordBatch("bye");
  FileRange range;
  {
    auto m = OpenManager();
    ASSERT_NE(m, nullptr);
    ASSERT_TRUE(m->CreateTopic("gone", 2, {}).ok());
    ASSERT_TRUE(m->CreateTopic("kept", 1, {}).ok());
    ASSERT_TRUE(m->Partition("gone", 0)->Append(stored.data(), stored.size()).ok());
    auto info = m->Partition("gone", 0)->Read(0, 1 << 20, false);
    ASSERT_TRUE(info.ok() && info->ranges.size() == 1);
    range = info->ranges[0];

    ASSERT_TRUE(m->DeleteTopic("gone").ok());
    EXPECT_EQ(m->DeleteTopic("gone").code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(m->FindTopic("gone"), nullptr);
    EXPECT_EQ(m->Partition("gone", 0), nullptr);
    EXPECT_FALSE(fs::exists(dir_ / "gone-0"));
    EXPECT_FALSE(fs::exists(dir_ / "gone-1"));
    ASSERT_TRUE(m->Close().ok());
  }
  for (const auto& entry : fs::directory_iterator(dir_)) {
    EXPECT_EQ(entry.path().filename().string().find("gone"), std::string::npos) << entry.path();
  }
  std::string got(range.length, '\0');
  ASSERT_EQ(::pread(range.fd, got.data(), got.size(), static_cast<off_t>(range.position)),
            static_cast<ssize_t>(got.size()));
  EXPECT_EQ(got, stored);

  auto m = OpenManager();
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->FindTopic("gone"), nullptr);
  ASSERT_EQ(m->Topics().size(), 1u);
  // Recreating the name gives a new id and an empty log.
  auto again = m->CreateTopic("gone", 1, {});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(m->Partition("gone", 0)->log_end_offset(), 0);
}

TEST_F(LogManagerTest, AddPartitionsPersists) {
  std::array<uint8_t, 16> id;
  {
    auto m = OpenManager();
    ASSERT_NE(m, nullptr);
    auto t = m->CreateTopic("grow", 1, {});
    ASSERT_TRUE(t.ok());
    id = (*t)->id;
    EXPECT_EQ(m->AddPartitions("grow", 1).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(m->AddPartitions("nope", 5).code(), absl::StatusCode::kNotFound);
    ASSERT_TRUE(m->AddPartitions("grow", 4).ok());
    EXPECT_EQ((*t)->partitions, 4);
    ASSERT_NE(m->Partition("grow", 3), nullptr);
    EXPECT_EQ(Slurp(dir_ / "grow-3" / "partition.metadata"),
              "version: 0\ntopic_id: " + TopicIdToString(id));
  }
  auto m = OpenManager();
  ASSERT_NE(m, nullptr);
  const TopicMetadata* t = m->FindTopic("grow");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->partitions, 4);
  EXPECT_EQ(t->id, id);
  EXPECT_NE(m->Partition("grow", 3), nullptr);
  EXPECT_EQ(m->Partition("grow", 4), nullptr);
}

TEST_F(LogManagerTest, TopicConfigsReachThePartitionLogs) {
  std::string batch = OneRecordBatch("0123456789");
  auto m = OpenManager();
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(m->CreateTopic("small", 1, {{"segment.bytes", std::to_string(batch.size())}}).ok());
  PartitionLog* p = m->Partition("small", 0);
  for (int i = 0; i < 3; ++i) {
    std::string b = batch;
    ASSERT_TRUE(p->Append(b.data(), b.size()).ok());
  }
  EXPECT_EQ(p->segment_count(), 3u);  // one batch per segment

  ASSERT_TRUE(m->SetTopicConfigs("small", {{"segment.bytes", "1000000"}}).ok());
  std::string b = batch;
  ASSERT_TRUE(p->Append(b.data(), b.size()).ok());
  EXPECT_EQ(p->segment_count(), 3u);
  EXPECT_EQ(m->FindTopic("small")->configs, (Configs{{"segment.bytes", "1000000"}}));
  EXPECT_EQ(m->SetTopicConfigs("none", {}).code(), absl::StatusCode::kNotFound);
}

TEST_F(LogManagerTest, OpenRemovesLeftovers) {
  std::array<uint8_t, 16> id;
  {
    auto m = OpenManager();
    ASSERT_NE(m, nullptr);
    auto t = m->CreateTopic("live", 1, {});
    ASSERT_TRUE(t.ok());
    id = (*t)->id;
  }
  // A deletion interrupted after the rename, one interrupted before it (the directory
  // names an id nobody has), a partition beyond the topic's count, and a directory that
  // is not ours.
  fs::create_directories(dir_ / "old-0.0123456789abcdef0123456789abcdef-delete");
  fs::create_directories(dir_ / "old-1");
  std::array<uint8_t, 16> stale{};
  stale[0] = 9;
  ASSERT_TRUE(WritePartitionMetadata(dir_ / "old-1", stale).ok());
  fs::create_directories(dir_ / "live-1");
  ASSERT_TRUE(WritePartitionMetadata(dir_ / "live-1", id).ok());
  fs::create_directories(dir_ / "lost+found");

  auto m = OpenManager();
  ASSERT_NE(m, nullptr);
  EXPECT_FALSE(fs::exists(dir_ / "old-0.0123456789abcdef0123456789abcdef-delete"));
  EXPECT_FALSE(fs::exists(dir_ / "old-1"));
  EXPECT_FALSE(fs::exists(dir_ / "live-1"));
  EXPECT_TRUE(fs::exists(dir_ / "live-0" / "partition.metadata"));
  EXPECT_TRUE(fs::exists(dir_ / "lost+found"));

  // A partition directory that went missing is recreated empty.
  ASSERT_TRUE(m->Close().ok());
  m.reset();
  fs::remove_all(dir_ / "live-0");
  m = OpenManager();
  ASSERT_NE(m, nullptr);
  ASSERT_NE(m->Partition("live", 0), nullptr);
  EXPECT_EQ(Slurp(dir_ / "live-0" / "partition.metadata"),
            "version: 0\ntopic_id: " + TopicIdToString(id));
}

TEST_F(LogManagerTest, LeftoversOfACleanStopAreRemovedByTheBackgroundOpening) {
  {
    auto m = OpenManager();
    ASSERT_NE(m, nullptr);
    ASSERT_TRUE(m->CreateTopic("live", 2, {}).ok());
    ASSERT_TRUE(m->Close().ok());
  }
  // What a failed deletion and a failed atomic write leave behind.
  fs::create_directories(dir_ / "old-0.0123456789abcdef0123456789abcdef-delete");
  std::ofstream(dir_ / "topics.metadata.tmp") << "partial";

  auto m = OpenManager();
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(m->opened_after_clean_shutdown());
  EXPECT_TRUE(fs::exists(dir_ / "old-0.0123456789abcdef0123456789abcdef-delete"));
  EXPECT_TRUE(fs::exists(dir_ / "topics.metadata.tmp"));
  EXPECT_FALSE(m->OpenDeferredPartitions(10));
  EXPECT_FALSE(fs::exists(dir_ / "old-0.0123456789abcdef0123456789abcdef-delete"));
  EXPECT_FALSE(fs::exists(dir_ / "topics.metadata.tmp"));
  EXPECT_TRUE(fs::exists(dir_ / "live-1" / "partition.metadata"));
  EXPECT_FALSE(m->offline());
}

}  // namespace
}  // namespace runnel::storage
