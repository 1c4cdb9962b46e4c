// The in-memory file system (log.in.memory=true): its POSIX-like semantics, file.h's
// operations routed to it, and a whole LogManager (topics, appends, rolls, compaction,
// DeleteRecords, deletion, reopening) living in it without touching the disk.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "protocol/record_batch.h"
#include "storage/file.h"
#include "storage/log_cleaner.h"
#include "storage/log_manager.h"
#include "storage/memory_file_system.h"
#include "tests/read_values.h"

namespace runnel::storage {
namespace {

namespace fs = std::filesystem;

// Owns a descriptor MemoryFileSystem::Open returned.
class Fd {
 public:
  explicit Fd(absl::StatusOr<int> fd) : fd_(fd.ok() ? *fd : -1) {
    EXPECT_TRUE(fd.ok()) << fd.status();
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

void Write(int fd, uint64_t pos, const std::string& data) {
  ASSERT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(pos)),
            static_cast<ssize_t>(data.size()));
}

std::string ReadAll(int fd) {
  std::string out(4096, '\0');
  ssize_t n = ::pread(fd, out.data(), out.size(), 0);
  EXPECT_GE(n, 0);
  out.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return out;
}

std::vector<std::string> Names(const absl::StatusOr<std::vector<std::string>>& entries) {
  EXPECT_TRUE(entries.ok()) << entries.status();
  std::vector<std::string> out;
  if (entries.ok()) out = *entries;
  std::sort(out.begin(), out.end());
  return out;
}

TEST(MemoryFileSystemTest, OpenCreatesOnlyWithOCreatInAnExistingDirectory) {
  MemoryFileSystem mem;
  absl::StatusOr<int> missing = mem.Open("/d/f", O_RDWR);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "open /d/f: No such file or directory");
  EXPECT_EQ(mem.Open("/d/f", O_RDWR | O_CREAT).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(mem.CreateDirectories("/d").ok());
  {
    Fd f(mem.Open("/d/f", O_RDWR | O_CREAT));
    Write(f.get(), 0, "hello");
  }
  // The data outlive every descriptor: the namespace holds the file.
  Fd g(mem.Open("/d/f", O_RDONLY));
  EXPECT_EQ(ReadAll(g.get()), "hello");
  EXPECT_EQ(fcntl(g.get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  absl::StatusOr<int> excl = mem.Open("/d/f", O_RDWR | O_CREAT | O_EXCL);
  EXPECT_EQ(excl.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(excl.status().message(), "open /d/f: File exists");
  // A file as a parent, or as a directory.
  EXPECT_EQ(mem.Open("/d/f/x", O_RDWR | O_CREAT).status().message(),
            "open /d/f/x: Not a directory");
  EXPECT_EQ(mem.Open("/d/f", O_RDONLY | O_DIRECTORY).status().message(),
            "open /d/f: Not a directory");
  EXPECT_EQ(mem.Open("/d", O_RDWR).status().message(), "open /d: Is a directory");
  // Descriptors of one file share its bytes; O_TRUNC empties it for everyone.
  Fd h(mem.Open("/d/f", O_RDWR | O_TRUNC));
  EXPECT_EQ(ReadAll(g.get()), "");
  Write(h.get(), 0, "abc");
  EXPECT_EQ(ReadAll(g.get()), "abc");
}

TEST(MemoryFileSystemTest, TruncateStatAndPathNormalisation) {
  MemoryFileSystem mem;
  ASSERT_TRUE(mem.CreateDirectories("/a/b/").ok());
  Fd f(mem.Open("/a/./b/../b/f", O_RDWR | O_CREAT));
  Write(f.get(), 0, "0123456789");
  ASSERT_EQ(::ftruncate(f.get(), 4), 0);
  absl::StatusOr<FileInfo> info = mem.Stat("/a/b/f");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_FALSE(info->is_directory);
  EXPECT_EQ(info->size, 4u);
  EXPECT_GT(info->mtime_ms, 0);
  EXPECT_TRUE(mem.Stat("/a/b")->is_directory);
  EXPECT_TRUE(mem.Stat("/")->is_directory);
  EXPECT_EQ(mem.Stat("/a/c").status().code(), absl::StatusCode::kNotFound);
  // Relative paths are relative to the working directory.
  ASSERT_TRUE(mem.CreateDirectories(fs::current_path()).ok());
  {
    Fd rel(mem.Open("relative-file", O_RDWR | O_CREAT));
    Write(rel.get(), 0, "r");
  }
  EXPECT_EQ(mem.Stat(fs::current_path() / "relative-file")->size, 1u);
  EXPECT_FALSE(fs::exists("relative-file"));
}

TEST(MemoryFileSystemTest, RenameReplacesAndUnlinkKeepsOpenDescriptorsReadable) {
  MemoryFileSystem mem;
  ASSERT_TRUE(mem.CreateDirectories("/d").ok());
  Fd old_file(mem.Open("/d/target", O_RDWR | O_CREAT));
  Write(old_file.get(), 0, "old");
  {
    Fd tmp(mem.Open("/d/target.tmp", O_RDWR | O_CREAT));
    Write(tmp.get(), 0, "new");
  }
  ASSERT_TRUE(mem.Rename("/d/target.tmp", "/d/target").ok());
  EXPECT_EQ(mem.Stat("/d/target.tmp").status().code(), absl::StatusCode::kNotFound);
  Fd now(mem.Open("/d/target", O_RDONLY));
  EXPECT_EQ(ReadAll(now.get()), "new");
  EXPECT_EQ(ReadAll(old_file.get()), "old");  // the replaced file lives on while open

  ASSERT_TRUE(mem.Unlink("/d/target").ok());
  EXPECT_EQ(ReadAll(now.get()), "new");
  Write(now.get(), 3, "er");
  EXPECT_EQ(ReadAll(now.get()), "newer");
  EXPECT_EQ(mem.Open("/d/target", O_RDONLY).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(mem.Unlink("/d/target").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(mem.Unlink("/d").message(), "unlink /d: Is a directory");
  EXPECT_EQ(mem.Rename("/d/none", "/d/x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(mem.Rename("/d", "/d/inside").message(), "rename /d: Invalid argument");
}

TEST(MemoryFileSystemTest, DirectoriesListRenameAndRemoveWholeSubtrees) {
  MemoryFileSystem mem;
  ASSERT_TRUE(mem.CreateDirectories("/logs/t-0").ok());
  ASSERT_TRUE(mem.CreateDirectories("/logs/t-0").ok());  // already there: fine
  // Siblings that sort between "t" and "t/..." must not confuse the listing.
  for (const char* dir : {"/logs/t", "/logs/t-1", "/logs/t.x"}) {
    ASSERT_TRUE(mem.CreateDirectories(dir).ok());
  }
  for (const char* file : {"/logs/t/b", "/logs/t/a", "/logs/t-0/f", "/logs/top"}) {
    Fd f(mem.Open(file, O_RDWR | O_CREAT));
  }
  ASSERT_TRUE(mem.CreateDirectories("/logs/t/sub/deeper").ok());
  EXPECT_EQ(Names(mem.List("/logs/t")), (std::vector<std::string>{"a", "b", "sub"}));
  EXPECT_EQ(Names(mem.List("/logs")), (std::vector<std::string>{"t", "t-0", "t-1", "t.x", "top"}));
  EXPECT_EQ(Names(mem.List("/")), (std::vector<std::string>{"logs"}));
  EXPECT_EQ(mem.List("/nowhere").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(mem.List("/logs/top").status().message(), "readdir /logs/top: Not a directory");
  EXPECT_EQ(mem.CreateDirectories("/logs/top").message(), "mkdir /logs/top: File exists");
  EXPECT_EQ(mem.CreateDirectories("/logs/top/x").message(), "mkdir /logs/top/x: Not a directory");

  // A directory's subtree moves with it; a non-empty target refuses, a file too.
  EXPECT_EQ(mem.Rename("/logs/t", "/logs/t-0").message(), "rename /logs/t: Directory not empty");
  EXPECT_EQ(mem.Rename("/logs/t", "/logs/top").message(), "rename /logs/t: Not a directory");
  EXPECT_EQ(mem.Rename("/logs/top", "/logs/t-1").message(), "rename /logs/top: Is a directory");
  ASSERT_TRUE(mem.Rename("/logs/t", "/logs/t-1").ok());  // over an empty directory
  EXPECT_EQ(Names(mem.List("/logs/t-1")), (std::vector<std::string>{"a", "b", "sub"}));
  EXPECT_TRUE(mem.Stat("/logs/t-1/sub/deeper")->is_directory);
  EXPECT_EQ(mem.Stat("/logs/t/a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Names(mem.List("/logs/t-0")), (std::vector<std::string>{"f"}));

  ASSERT_TRUE(mem.RemoveAll("/logs/t-1").ok());
  ASSERT_TRUE(mem.RemoveAll("/logs/never-was").ok());
  EXPECT_EQ(Names(mem.List("/logs")), (std::vector<std::string>{"t-0", "t.x", "top"}));
  EXPECT_TRUE(mem.SyncDir("/logs").ok());
  EXPECT_EQ(mem.SyncDir("/logs/t-1").code(), absl::StatusCode::kNotFound);
}

TEST(MemoryFileSystemTest, DescriptorsMapAndSendfileLikeFiles) {
  MemoryFileSystem mem;
  Fd f(mem.Open("/index", O_RDWR | O_CREAT));
  ASSERT_EQ(::ftruncate(f.get(), 4096), 0);
  void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f.get(), 0);
  ASSERT_NE(p, MAP_FAILED);
  std::memcpy(p, "mapped", 6);
  ASSERT_EQ(::msync(p, 4096, MS_SYNC), 0);
  ASSERT_EQ(::munmap(p, 4096), 0);
  Fd g(mem.Open("/index", O_RDONLY));
  EXPECT_EQ(ReadAll(g.get()).substr(0, 7), std::string("mapped\0", 7));
  EXPECT_EQ(::fsync(g.get()), 0);
  // sendfile(2), as the broker serves fetches.
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  off_t offset = 2;
  EXPECT_EQ(::sendfile(pipe_fds[1], g.get(), &offset, 4), 4);
  char buf[4];
  EXPECT_EQ(::read(pipe_fds[0], buf, 4), 4);
  EXPECT_EQ(std::string(buf, 4), "pped");
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

// file.h with the memory file system swapped in; a real path that must stay absent.
class FileHInMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) /
            ("memory_fs_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_FALSE(fs::exists(root_));
    previous_ = SwapFileSystemForTesting(&mem_);
    ASSERT_EQ(previous_, nullptr);
    ASSERT_TRUE(UsingMemoryFileSystem());
  }
  void TearDown() override {
    SwapFileSystemForTesting(previous_);
    EXPECT_FALSE(fs::exists(root_)) << "the memory file system wrote to disk";
  }

  MemoryFileSystem mem_;
  MemoryFileSystem* previous_ = nullptr;
  fs::path root_;
};

TEST_F(FileHInMemoryTest, OperationsGoToMemory) {
  EXPECT_EQ(SyncDir(root_).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(CreateDirectories(root_ / "a").ok());
  EXPECT_TRUE(IsDirectory(root_ / "a"));
  ASSERT_TRUE(WriteFileAtomically(root_ / "a" / "meta", "contents").ok());
  EXPECT_EQ(*ReadFileToString(root_ / "a" / "meta"), "contents");
  EXPECT_TRUE(IsRegularFile(root_ / "a" / "meta"));
  EXPECT_TRUE(PathExists(root_ / "a" / "meta"));
  EXPECT_FALSE(PathExists(root_ / "a" / "meta.tmp"));
  EXPECT_EQ(Names(ListDir(root_ / "a")), (std::vector<std::string>{"meta"}));
  ASSERT_TRUE(RenameFile(root_ / "a" / "meta", root_ / "a" / "moved").ok());
  EXPECT_EQ(ReadFileToString(root_ / "a" / "meta").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(RemoveFile(root_ / "a" / "moved").ok());
  EXPECT_EQ(RemoveFile(root_ / "a" / "moved").code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(RemoveAll(root_).ok());
  EXPECT_FALSE(PathExists(root_));
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Ten records "<tag>-<i>" under keys k0..k9, padded to ~1.3 KB.
std::string TenRecords(const std::string& tag) {
  std::vector<protocol::RecordToAdd> records;
  for (int i = 0; i < 10; ++i) {
    protocol::RecordToAdd r;
    r.key = "k" + std::to_string(i);
    r.value = tag + "-" + std::to_string(i) + std::string(100, '.');
    r.timestamp = NowMs();
    records.push_back(std::move(r));
  }
  return protocol::BuildBatch(records);
}

LogConfig Resolve(const std::map<std::string, std::string>& configs) {
  LogConfig c;
  c.segment_bytes = 2000;  // one TenRecords batch per segment
  if (auto it = configs.find("cleanup.policy"); it != configs.end() && it->second == "compact") {
    c.delete_policy = false;
    c.compact_policy = true;
  }
  return c;
}

TEST_F(FileHInMemoryTest, LogManagerLivesInMemoryAcrossReopen) {
  const fs::path logs = root_ / "logs";
  {
    auto m = LogManager::Open(logs, Resolve);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_FALSE((*m)->opened_after_clean_shutdown());
    ASSERT_TRUE((*m)->CreateTopic("events", 2, {}).ok());
    ASSERT_TRUE((*m)->CreateTopic("table", 1, {{"cleanup.policy", "compact"}}).ok());
    ASSERT_TRUE((*m)->CreateTopic("doomed", 1, {}).ok());
    PartitionLog* events = (*m)->Partition("events", 0);
    for (int round = 0; round < 4; ++round) {
      std::string batch = TenRecords("e" + std::to_string(round));
      ASSERT_TRUE(events->Append(batch.data(), batch.size()).ok());
    }
    EXPECT_EQ(events->log_end_offset(), 40);
    EXPECT_EQ(events->segment_count(), 4u);  // rolled three times
    ASSERT_EQ(*events->DeleteRecordsBefore(15), 15);
    EXPECT_EQ(events->segment_count(), 3u);  // [0, 10) deleted

    PartitionLog* table = (*m)->Partition("table", 0);
    for (int round = 0; round < 4; ++round) {
      std::string batch = TenRecords("t" + std::to_string(round));
      ASSERT_TRUE(table->Append(batch.data(), batch.size()).ok());
    }
    absl::StatusOr<CleanerPass> pass = MaybeCleanLog(*table, 0, NowMs(), 1 << 20);
    ASSERT_TRUE(pass.ok()) << pass.status();
    EXPECT_TRUE(pass->cleaned);
    ASSERT_TRUE((*m)->SetCleanerOffset("table", 0, pass->first_dirty_offset).ok());
    ASSERT_TRUE((*m)->WriteLogStartOffsetCheckpoint().ok());
    ASSERT_TRUE((*m)->DeleteTopic("doomed").ok());

    // Kafka's layout, a producer-state snapshot per roll included.
    EXPECT_EQ(
        Names(ListDir(logs / "events-0")),
        (std::vector<std::string>{"00000000000000000010.index", "00000000000000000010.log",
                                  "00000000000000000010.snapshot", "00000000000000000010.timeindex",
                                  "00000000000000000020.index", "00000000000000000020.log",
                                  "00000000000000000020.snapshot", "00000000000000000020.timeindex",
                                  "00000000000000000030.index", "00000000000000000030.log",
                                  "00000000000000000030.snapshot", "00000000000000000030.timeindex",
                                  "partition.metadata"}));
    ASSERT_TRUE((*m)->Close().ok());
  }
  EXPECT_EQ(*ReadFileToString(logs / ".kafka_cleanshutdown"), "{\"version\":0,\"brokerEpoch\":-1}");
  EXPECT_EQ(*ReadFileToString(logs / "log-start-offset-checkpoint"), "0\n1\nevents 0 15\n");
  EXPECT_EQ(
      Names(ListDir(logs)),
      (std::vector<std::string>{".kafka_cleanshutdown", "cleaner-offset-checkpoint", "events-0",
                                "events-1", "log-start-offset-checkpoint",
                                "recovery-point-offset-checkpoint", "table-0", "topics.metadata"}));

  // Reopened within the process: the same files, hence the same logs.
  auto m = LogManager::Open(logs, Resolve);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE((*m)->opened_after_clean_shutdown());
  EXPECT_FALSE(PathExists(logs / ".kafka_cleanshutdown"));
  EXPECT_EQ((*m)->FindTopic("doomed"), nullptr);
  PartitionLog* events = (*m)->Partition("events", 0);
  EXPECT_EQ(events->log_start_offset(), 15);
  EXPECT_EQ(events->log_end_offset(), 40);
  std::map<int64_t, std::string> values = ReadValues(*events, 15);
  ASSERT_EQ(values.size(), 25u);
  EXPECT_EQ(values.begin()->first, 15);
  EXPECT_EQ(values[15], "e1-5");
  EXPECT_EQ(values[39], "e3-9");
  EXPECT_EQ((*m)->Partition("events", 1)->log_end_offset(), 0);
  // Compaction kept round 2 below the active segment, and every offset.
  EXPECT_EQ((*m)->CleanerOffset("table", 0), 30);
  values = ReadValues(*(*m)->Partition("table", 0), 0);
  ASSERT_EQ(values.size(), 20u);
  EXPECT_EQ(values.begin()->first, 20);
  EXPECT_EQ(values[20], "t2-0");
  EXPECT_EQ(values[39], "t3-9");
  // An append after reopening continues the offsets.
  std::string batch = TenRecords("e4");
  absl::StatusOr<AppendInfo> appended = events->Append(batch.data(), batch.size());
  ASSERT_TRUE(appended.ok()) << appended.status();
  EXPECT_EQ(events->log_end_offset(), 50);
  EXPECT_EQ(ReadValues(*events, 45)[49], "e4-9");
  ASSERT_TRUE((*m)->Close().ok());
}

}  // namespace
}  // namespace runnel::storage
