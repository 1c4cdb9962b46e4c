// TransactionIndex (storage/transaction_index.h): Kafka's .txnindex entry format byte for
// byte, append/reopen round trip, a torn or damaged tail, truncation, the overlap search,
// and the in-memory file system.
#include "storage/transaction_index.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "storage/file.h"
#include "storage/memory_file_system.h"
#include "tests/slurp.h"

namespace runnel::storage {
namespace {

namespace fs = std::filesystem;

void Spit(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

class TransactionIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "transaction_index_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ / "00000000000000000100.txnindex";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<TransactionIndex> Open(int64_t base = 100) {
    auto index = TransactionIndex::Open(path_, base);
    EXPECT_TRUE(index.ok()) << index.status();
    return index.ok() ? *std::move(index) : nullptr;
  }

  fs::path dir_;
  fs::path path_;
};

TEST_F(TransactionIndexTest, EntryIsKafkasAbortedTxn) {
  // version 0 | producer id | first offset | last offset | last stable offset, big-endian.
  EXPECT_EQ(absl::BytesToHexString(TransactionIndex::Encode({{0x0102, 100, 0x1ff, 300}})),
            "0000"
            "0000000000000102"
            "0000000000000064"
            "00000000000001ff"
            "000000000000012c");
  EXPECT_EQ(TransactionIndex::Encode({{1, 2, 3, 4}, {5, 6, 7, 8}}).size(),
            2 * TransactionIndex::kEntrySize);
  EXPECT_EQ(TransactionIndex::kEntrySize, 34u);
}

TEST_F(TransactionIndexTest, AppendsAndReopens) {
  auto index = Open();
  EXPECT_TRUE(index->empty());
  EXPECT_FALSE(index->has_file());
  EXPECT_FALSE(fs::exists(path_));  // created by the first entry, as Kafka's

  const std::vector<AbortedTxn> entries = {{7, 90, 100, 101}, {8, 95, 110, 95}, {7, 111, 120, 121}};
  for (const AbortedTxn& e : entries) ASSERT_TRUE(index->Append(e).ok());
  EXPECT_TRUE(index->has_file());
  EXPECT_EQ(index->entries(), entries);
  EXPECT_EQ(Slurp(path_), TransactionIndex::Encode(entries));
  ASSERT_TRUE(index->Sync().ok());

  // Last offsets must increase and not fall below the base.
  EXPECT_EQ(index->Append({9, 100, 120, 121}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index->Append({9, 100, 119, 121}).code(), absl::StatusCode::kInvalidArgument);
  auto fresh = TransactionIndex::Open(dir_ / "00000000000000000200.txnindex", 200);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ((*fresh)->Append({9, 100, 199, 200}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Slurp(path_).size(), 3 * TransactionIndex::kEntrySize);

  auto reopened = Open();
  EXPECT_TRUE(reopened->has_file());
  EXPECT_EQ(reopened->entries(), entries);
  ASSERT_TRUE(reopened->Append({9, 121, 130, 131}).ok());
  EXPECT_EQ(Open()->entries().size(), 4u);
}

TEST_F(TransactionIndexTest, TornOrDamagedTailIsDropped) {
  const std::vector<AbortedTxn> entries = {{7, 90, 100, 101}, {8, 95, 110, 111}};
  const std::string good = TransactionIndex::Encode(entries);

  // A partial entry, as a crash during an append leaves.
  Spit(path_, good + TransactionIndex::Encode({{9, 111, 120, 121}}).substr(0, 20));
  auto index = Open();
  EXPECT_EQ(index->entries(), entries);
  EXPECT_EQ(Slurp(path_), good);  // truncated to whole entries
  ASSERT_TRUE(index->Append({9, 111, 120, 121}).ok());
  EXPECT_EQ(Open()->entries().size(), 3u);

  // An unknown version, an entry below the base, an entry out of order: dropped with
  // everything after.
  std::string newer = TransactionIndex::Encode({{9, 111, 120, 121}});
  newer[1] = 1;
  Spit(path_, good + newer + TransactionIndex::Encode({{9, 121, 130, 131}}));
  EXPECT_EQ(Open()->entries(), entries);
  EXPECT_EQ(Slurp(path_), good);
  Spit(path_, TransactionIndex::Encode({{1, 10, 99, 100}}) + good);
  EXPECT_TRUE(Open()->entries().empty());
  EXPECT_EQ(Slurp(path_), "");
  Spit(path_, good + TransactionIndex::Encode({{1, 10, 105, 106}}));
  EXPECT_EQ(Open()->entries(), entries);

  size_t valid = 0;
  EXPECT_EQ(TransactionIndex::Decode(good.substr(0, 40), 100, &valid),
            (std::vector<AbortedTxn>{entries[0]}));
  EXPECT_EQ(valid, TransactionIndex::kEntrySize);
}

TEST_F(TransactionIndexTest, TruncateToKeepsEntriesEndingBelow) {
  auto index = Open();
  for (const AbortedTxn& e :
       std::vector<AbortedTxn>{{1, 100, 100, 101}, {2, 101, 105, 106}, {3, 106, 110, 111}}) {
    ASSERT_TRUE(index->Append(e).ok());
  }
  ASSERT_TRUE(index->TruncateTo(111).ok());  // nothing at or past 111
  EXPECT_EQ(index->entries().size(), 3u);
  ASSERT_TRUE(index->TruncateTo(110).ok());
  EXPECT_EQ(index->entries().size(), 2u);
  EXPECT_EQ(Slurp(path_).size(), 2 * TransactionIndex::kEntrySize);
  ASSERT_TRUE(index->TruncateTo(101).ok());
  EXPECT_EQ(index->entries(), (std::vector<AbortedTxn>{{1, 100, 100, 101}}));
  EXPECT_EQ(Open()->entries(), index->entries());
  // The last offset to follow is the kept one's.
  EXPECT_TRUE(index->Append({2, 101, 103, 104}).ok());
  ASSERT_TRUE(index->Delete().ok());
  EXPECT_FALSE(fs::exists(path_));
  EXPECT_TRUE(index->empty());
  EXPECT_TRUE(index->Delete().ok());  // already gone: fine
}

TEST_F(TransactionIndexTest, CollectFindsOverlappingTransactions) {
  auto index = Open(0);
  // Producer 1: [0, 10] (LSO 3: producer 2 open from 3), producer 2: [3, 20], producer 3:
  // [21, 30].
  for (const AbortedTxn& e :
       std::vector<AbortedTxn>{{1, 0, 10, 3}, {2, 3, 20, 21}, {3, 21, 30, 31}}) {
    ASSERT_TRUE(index->Append(e).ok());
  }
  auto collect = [&](int64_t from, int64_t to, bool* complete = nullptr) {
    std::vector<AbortedTxn> out;
    bool done = index->Collect(from, to, &out);
    if (complete != nullptr) *complete = done;
    std::vector<int64_t> pids;
    for (const AbortedTxn& t : out) pids.push_back(t.producer_id);
    return pids;
  };
  bool complete = false;
  EXPECT_EQ(collect(0, 5, &complete), (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(complete);  // producer 2's LSO 21 >= 5
  EXPECT_EQ(collect(0, 3), (std::vector<int64_t>{1}));
  EXPECT_EQ(collect(11, 15), (std::vector<int64_t>{2}));
  EXPECT_EQ(collect(20, 40, &complete), (std::vector<int64_t>{2, 3}));
  EXPECT_FALSE(complete);  // a later segment may hold more
  EXPECT_EQ(collect(31, 40), (std::vector<int64_t>{}));
  EXPECT_EQ(collect(15, 21), (std::vector<int64_t>{2}));
}

TEST(TransactionIndexInMemoryTest, LivesInTheMemoryFileSystem) {
  const fs::path dir = fs::temp_directory_path() / ("txnindex_mem_" + std::to_string(::getpid()));
  MemoryFileSystem mem;
  MemoryFileSystem* previous = SwapFileSystemForTesting(&mem);
  ASSERT_TRUE(CreateDirectories(dir).ok());
  const fs::path path = dir / "00000000000000000000.txnindex";
  {
    auto index = TransactionIndex::Open(path, 0);
    ASSERT_TRUE(index.ok());
    ASSERT_TRUE((*index)->Append({4, 0, 5, 6}).ok());
    ASSERT_TRUE((*index)->Append({4, 6, 9, 10}).ok());
    ASSERT_TRUE((*index)->Sync().ok());
  }
  EXPECT_TRUE(IsRegularFile(path));
  auto bytes = ReadFileToString(path);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, TransactionIndex::Encode({{4, 0, 5, 6}, {4, 6, 9, 10}}));
  {
    auto index = TransactionIndex::Open(path, 0);
    ASSERT_TRUE(index.ok());
    EXPECT_EQ((*index)->entries().size(), 2u);
    ASSERT_TRUE((*index)->Delete().ok());
  }
  EXPECT_FALSE(PathExists(path));
  SwapFileSystemForTesting(previous);
  EXPECT_FALSE(fs::exists(dir));
}

}  // namespace
}  // namespace runnel::storage
