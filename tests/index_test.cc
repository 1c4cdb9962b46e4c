// OffsetIndex and TimeIndex on their own: the preallocated, memory-mapped files, their
// bytes (Kafka's formats), lookups, trimming, reopening and the sanity checks.
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "gtest/gtest.h"
#include "storage/offset_index.h"
#include "storage/time_index.h"
#include "tests/slurp.h"

namespace runnel::storage {
namespace {

namespace fs = std::filesystem;

void WriteFile(const fs::path& path, const std::string& contents) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
}

std::string BigEndian(uint64_t v, int bytes) {
  std::string out;
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i)));
  return out;
}

class IndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "index_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
};

TEST_F(IndexTest, OffsetIndexPreallocatesAppendsTrimsAndReopens) {
  const fs::path path = dir_ / "00000000000000001000.index";
  WriteFile(path, "old contents are replaced");
  auto index = OffsetIndex::Create(path, 1000, 100);
  ASSERT_TRUE(index.ok()) << index.status();
  // 100 bytes rounded down to whole 8-byte entries, all zeros.
  EXPECT_EQ((*index)->max_entries(), 12u);
  EXPECT_EQ((*index)->file_bytes(), 96u);
  EXPECT_EQ(Slurp(path), std::string(96, '\0'));
  EXPECT_EQ((*index)->Lookup(5000), (OffsetIndex::Entry{1000, 0}));
  EXPECT_EQ((*index)->last_entry(), (OffsetIndex::Entry{1000, 0}));

  ASSERT_TRUE((*index)->Append(1005, 70).ok());
  ASSERT_TRUE((*index)->Append(1009, 140).ok());
  ASSERT_TRUE((*index)->Append(1000 + 0x01020304, 0x0A0B0C0D).ok());
  // Not after the last entry: refused, nothing written.
  EXPECT_FALSE((*index)->Append(1000 + 0x01020304, 0x0A0B0C0E).ok());
  EXPECT_FALSE((*index)->Append(1000 + 0x01020305, 0x0A0B0C0D).ok());
  EXPECT_FALSE((*index)->Append(999, 0x7FFFFFFF).ok());
  EXPECT_EQ((*index)->size(), 3u);
  const std::string entries = BigEndian(5, 4) + BigEndian(70, 4) + BigEndian(9, 4) +
                              BigEndian(140, 4) + "\x01\x02\x03\x04\x0A\x0B\x0C\x0D";
  // Written through the shared mapping: visible to read(2) at once.
  EXPECT_EQ(Slurp(path), entries + std::string(96 - 24, '\0'));

  EXPECT_EQ((*index)->Lookup(1004), (OffsetIndex::Entry{1000, 0}));
  EXPECT_EQ((*index)->Lookup(1005), (OffsetIndex::Entry{1005, 70}));
  EXPECT_EQ((*index)->Lookup(1008), (OffsetIndex::Entry{1005, 70}));
  EXPECT_EQ((*index)->Lookup(1009), (OffsetIndex::Entry{1009, 140}));
  EXPECT_EQ((*index)->Lookup(int64_t{1} << 40),
            (OffsetIndex::Entry{1000 + 0x01020304, 0x0A0B0C0D}));
  EXPECT_EQ((*index)->FloorPosition(69), 0u);
  EXPECT_EQ((*index)->FloorPosition(70), 70u);
  EXPECT_EQ((*index)->FloorPosition(1000), 140u);
  ASSERT_TRUE((*index)->Sync().ok());

  ASSERT_TRUE((*index)->Trim().ok());
  EXPECT_EQ((*index)->file_bytes(), 24u);
  EXPECT_EQ(Slurp(path), entries);
  EXPECT_EQ((*index)->entry(1), (OffsetIndex::Entry{1009, 140}));
  ASSERT_TRUE((*index)->Sync().ok());
  index->reset();

  auto reopened = OffsetIndex::Open(path, 1000, 100);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->size(), 3u);
  EXPECT_EQ((*reopened)->entry(0), (OffsetIndex::Entry{1005, 70}));
  EXPECT_EQ((*reopened)->last_entry(), (OffsetIndex::Entry{1000 + 0x01020304, 0x0A0B0C0D}));
  EXPECT_TRUE((*reopened)->SanityCheck(0x0A0B0C0E).ok());
  // The last entry must lie inside the log.
  EXPECT_EQ((*reopened)->SanityCheck(0x0A0B0C0D).code(), absl::StatusCode::kDataLoss);
  // Appending to a trimmed index preallocates it again.
  ASSERT_TRUE((*reopened)->Append(1000 + 0x01020305, 0x0A0B0C0E).ok());
  EXPECT_EQ((*reopened)->file_bytes(), 96u);
  EXPECT_EQ(Slurp(path), entries + "\x01\x02\x03\x05\x0A\x0B\x0C\x0E" + std::string(64, '\0'));
}

TEST_F(IndexTest, OffsetIndexFullAndZeroLength) {
  const fs::path path = dir_ / "i.index";
  auto index = OffsetIndex::Create(path, 0, 17);  // two entries
  ASSERT_TRUE(index.ok());
  EXPECT_EQ((*index)->file_bytes(), 16u);
  ASSERT_TRUE((*index)->Trim().ok());  // to nothing: no mapping at all
  EXPECT_EQ((*index)->file_bytes(), 0u);
  EXPECT_EQ(fs::file_size(path), 0u);
  EXPECT_EQ((*index)->Lookup(10), (OffsetIndex::Entry{0, 0}));
  EXPECT_EQ((*index)->FloorPosition(10), 0u);
  ASSERT_TRUE((*index)->Sync().ok());
  ASSERT_TRUE((*index)->Append(3, 100).ok());
  ASSERT_TRUE((*index)->Append(4, 200).ok());
  EXPECT_TRUE((*index)->full());
  EXPECT_EQ((*index)->Append(5, 300).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Slurp(path), BigEndian(3, 4) + BigEndian(100, 4) + BigEndian(4, 4) + BigEndian(200, 4));
  (*index)->set_max_index_bytes(24);
  EXPECT_FALSE((*index)->full());
  ASSERT_TRUE((*index)->Append(5, 300).ok());  // grows the file to the new bound
  EXPECT_EQ((*index)->file_bytes(), 24u);
  (*index)->Close();
  EXPECT_EQ((*index)->size(), 0u);

  auto empty = OffsetIndex::Open(dir_ / "empty.index", 0, 100);
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kNotFound);
  WriteFile(dir_ / "empty.index", "");
  empty = OffsetIndex::Open(dir_ / "empty.index", 0, 100);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ((*empty)->size(), 0u);
  EXPECT_TRUE((*empty)->SanityCheck(0).ok());
}

TEST_F(IndexTest, OffsetIndexLookupsOverManyEntries) {
  auto index = OffsetIndex::Create(dir_ / "many.index", 500, 8 * 5000);
  ASSERT_TRUE(index.ok());
  for (int i = 1; i <= 4000; ++i) ASSERT_TRUE((*index)->Append(500 + 3 * i, 10 * i).ok());
  for (int64_t target = 490; target < 500 + 3 * 4000 + 10; ++target) {
    int64_t i = std::min<int64_t>((target - 500) / 3, 4000);
    OffsetIndex::Entry expected =
        i <= 0 ? OffsetIndex::Entry{500, 0}
               : OffsetIndex::Entry{500 + 3 * i, static_cast<uint64_t>(10 * i)};
    ASSERT_EQ((*index)->Lookup(target), expected) << target;
  }
  for (uint64_t position = 0; position < 40010; position += 3) {
    uint64_t i = std::min<uint64_t>(position / 10, 4000);
    ASSERT_EQ((*index)->FloorPosition(position), 10 * i) << position;
  }
}

TEST_F(IndexTest, OffsetIndexSanityChecks) {
  const fs::path path = dir_ / "00000000000000000100.index";
  auto check = [&](const std::string& contents, uint64_t log_size) {
    WriteFile(path, contents);
    auto index = OffsetIndex::Open(path, 100, 1 << 20);
    EXPECT_TRUE(index.ok());
    return index.ok() ? (*index)->SanityCheck(log_size) : index.status();
  };
  const std::string a = BigEndian(5, 4) + BigEndian(70, 4);
  const std::string b = BigEndian(9, 4) + BigEndian(140, 4);
  EXPECT_TRUE(check("", 0).ok());
  EXPECT_TRUE(check(a + b, 141).ok());
  // Kafka's: a length that is not whole entries.
  EXPECT_EQ(check(a + b + "x", 141).code(), absl::StatusCode::kDataLoss);
  // Kafka's: an offset below the base (a negative relative offset).
  EXPECT_EQ(check(BigEndian(0xFFFFFFFF, 4) + BigEndian(70, 4), 141).code(),
            absl::StatusCode::kDataLoss);
  // The zero tail of a preallocated, untrimmed file (an unclean stop).
  EXPECT_EQ(check(a + b + std::string(80, '\0'), 1 << 20).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(check(std::string(80, '\0'), 1 << 20).code(), absl::StatusCode::kDataLoss);
  // Out of order, or a position that does not advance.
  EXPECT_EQ(check(b + a, 141).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(check(a + BigEndian(9, 4) + BigEndian(70, 4), 141).code(), absl::StatusCode::kDataLoss);
  // The last entry not inside the log.
  EXPECT_EQ(check(a + b, 140).code(), absl::StatusCode::kDataLoss);
}

TEST_F(IndexTest, TimeIndexPreallocatesAppendsTrimsAndReopens) {
  const fs::path path = dir_ / "00000000000000001000.timeindex";
  auto index = TimeIndex::Create(path, 1000, 100);
  ASSERT_TRUE(index.ok()) << index.status();
  // 100 bytes rounded down to whole 12-byte entries.
  EXPECT_EQ((*index)->max_entries(), 8u);
  EXPECT_EQ((*index)->file_bytes(), 96u);
  EXPECT_EQ(Slurp(path), std::string(96, '\0'));
  EXPECT_EQ((*index)->Lookup(5), (TimeIndex::Entry{-1, 1000}));
  EXPECT_EQ((*index)->last_entry(), (TimeIndex::Entry{-1, 1000}));

  // Only a greater timestamp makes an entry.
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE((*index)->MaybeAppend(1700000000000 + 10 * (i / 2), 1000 + 4 * i).ok());
  }
  ASSERT_TRUE((*index)->MaybeAppend(-1, 2000).ok());
  EXPECT_EQ((*index)->size(), 5u);
  EXPECT_EQ((*index)->entry(1), (TimeIndex::Entry{1700000000010, 1008}));
  std::string entries;
  for (int i = 0; i < 5; ++i) {
    entries += BigEndian(1700000000000 + 10 * i, 8) + BigEndian(8 * i, 4);
  }
  EXPECT_EQ(Slurp(path), entries + std::string(96 - 60, '\0'));
  // Offsets must not go back.
  EXPECT_FALSE((*index)->MaybeAppend(1800000000000, 1031).ok());

  // Full at max_entries - 1: the last slot is kept for the roll entry.
  ASSERT_TRUE((*index)->MaybeAppend(1700000000050, 1040).ok());
  ASSERT_TRUE((*index)->MaybeAppend(1700000000060, 1044).ok());
  EXPECT_TRUE((*index)->full());
  ASSERT_TRUE((*index)->MaybeAppend(1700000000070, 1048).ok());
  EXPECT_EQ((*index)->size(), 7u);
  ASSERT_TRUE((*index)->MaybeAppend(1700000000070, 1048, /*skip_full_check=*/true).ok());
  EXPECT_EQ((*index)->size(), 8u);

  EXPECT_EQ((*index)->Lookup(1700000000000), (TimeIndex::Entry{1700000000000, 1000}));
  EXPECT_EQ((*index)->Lookup(1700000000029), (TimeIndex::Entry{1700000000020, 1016}));
  EXPECT_EQ((*index)->Lookup(1699999999999), (TimeIndex::Entry{-1, 1000}));
  EXPECT_EQ((*index)->Lookup(INT64_MAX), (TimeIndex::Entry{1700000000070, 1048}));

  ASSERT_TRUE((*index)->Trim().ok());  // already exactly full: no change
  EXPECT_EQ((*index)->file_bytes(), 96u);
  ASSERT_TRUE((*index)->Sync().ok());
  index->reset();

  auto reopened = TimeIndex::Open(path, 1000, 100);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->size(), 8u);
  EXPECT_TRUE((*reopened)->SanityCheck().ok());
  EXPECT_EQ((*reopened)->last_entry(), (TimeIndex::Entry{1700000000070, 1048}));
  // The roll entry may go past max_entries on a trimmed file.
  ASSERT_TRUE((*reopened)->MaybeAppend(1700000000080, 1052, true).ok());
  EXPECT_EQ((*reopened)->file_bytes(), 108u);
  ASSERT_TRUE((*reopened)->Trim().ok());
  EXPECT_EQ(Slurp(path).size(), 108u);
  EXPECT_EQ(Slurp(path).substr(96), BigEndian(1700000000080, 8) + BigEndian(52, 4));
}

TEST_F(IndexTest, TimeIndexTrimsToEntriesAndChecksSanity) {
  const fs::path path = dir_ / "00000000000000000100.timeindex";
  {
    auto index = TimeIndex::Create(path, 100, 1200);
    ASSERT_TRUE(index.ok());
    ASSERT_TRUE((*index)->MaybeAppend(50, 103).ok());
    ASSERT_TRUE((*index)->MaybeAppend(60, 103).ok());  // same offset: allowed
    EXPECT_EQ(fs::file_size(path), 1200u);
    // Dropped untrimmed.
  }
  auto untrimmed = TimeIndex::Open(path, 100, 1200);
  ASSERT_TRUE(untrimmed.ok());
  EXPECT_EQ((*untrimmed)->size(), 100u);
  EXPECT_EQ((*untrimmed)->SanityCheck().code(), absl::StatusCode::kDataLoss);
  untrimmed->reset();

  auto check = [&](const std::string& contents) {
    WriteFile(path, contents);
    auto index = TimeIndex::Open(path, 100, 1 << 20);
    EXPECT_TRUE(index.ok());
    return index.ok() ? (*index)->SanityCheck() : index.status();
  };
  const std::string a = BigEndian(50, 8) + BigEndian(3, 4);
  const std::string b = BigEndian(60, 8) + BigEndian(3, 4);
  EXPECT_TRUE(check("").ok());
  EXPECT_TRUE(check(a + b).ok());
  EXPECT_EQ(check(a + b + "12345").code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(check(b + a).code(), absl::StatusCode::kDataLoss);  // timestamps go back
  EXPECT_EQ(check(a + BigEndian(60, 8) + BigEndian(2, 4)).code(),
            absl::StatusCode::kDataLoss);  // offsets go back
  EXPECT_EQ(check(BigEndian(50, 8) + BigEndian(0xFFFFFFFF, 4)).code(),
            absl::StatusCode::kDataLoss);  // below the base

  auto index = TimeIndex::Create(path, 100, 1200);
  ASSERT_TRUE(index.ok());
  ASSERT_TRUE((*index)->MaybeAppend(50, 103).ok());
  ASSERT_TRUE((*index)->Trim().ok());
  EXPECT_EQ(Slurp(path), BigEndian(50, 8) + BigEndian(3, 4));
  ASSERT_TRUE((*index)->Sync().ok());
}

}  // namespace
}  // namespace runnel::storage
