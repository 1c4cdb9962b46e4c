// Compactor: the offset map, Clean's record and batch rules (fixed cases), and a
// property test against an in-memory model of compaction.
#include "storage/compactor.h"

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "protocol/record_batch.h"
#include "storage/log_config.h"
#include "storage/segment.h"
#include "tests/slurp.h"

namespace runnel::storage {
namespace {

namespace fs = std::filesystem;
using protocol::BatchHeader;
using protocol::BatchOptions;
using protocol::Compression;
using protocol::RecordToAdd;

constexpr int64_t kRetention = 1000;
constexpr int16_t kDeleteHorizonFlag = 0x40;

using Headers = std::vector<std::pair<std::string, std::optional<std::string>>>;

// A record as the model and the reader see it.
struct Rec {
  int64_t offset = 0;
  int64_t timestamp = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
  Headers headers;
  bool operator==(const Rec&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Rec& r) {
  return os << "{offset " << r.offset << " ts " << r.timestamp << " key "
            << r.key.value_or("<null>") << " value " << (r.value ? r.value->size() : -1)
            << "B headers " << r.headers.size() << "}";
}

RecordToAdd ToAdd(const Rec& r) {
  RecordToAdd a;
  a.key = r.key;
  a.value = r.value;
  a.headers = r.headers;
  a.timestamp = r.timestamp;
  return a;
}

// A batch of consecutive records starting at records.front().offset.
std::string MakeBatch(const std::vector<Rec>& records, BatchOptions options = {}) {
  std::vector<RecordToAdd> adds;
  for (const Rec& r : records) adds.push_back(ToAdd(r));
  options.base_offset = records.front().offset;
  return protocol::BuildBatch(adds, options);
}

Rec R(int64_t offset, std::optional<std::string> key, std::optional<std::string> value,
      int64_t ts = -2) {
  return Rec{offset, ts == -2 ? 1000 + offset : ts, std::move(key), std::move(value), {}};
}

struct OutBatch {
  BatchHeader header;
  std::string bytes;
  std::vector<Rec> records;
};

// Reads a cleaned file, checking what every consumer and Segment::Recover rely on: whole
// batches, CRC-32C, records that parse and match the count, offsets strictly increasing and
// within each batch's [base, last].
std::vector<OutBatch> ReadAll(const fs::path& path) {
  std::string data = Slurp(path);
  std::vector<OutBatch> out;
  protocol::BatchIterator it(data);
  std::string_view batch;
  BatchHeader h;
  int64_t last = -1;
  while (it.Next(&batch, &h)) {
    OutBatch b;
    b.header = h;
    b.bytes = std::string(batch);
    EXPECT_EQ(protocol::Crc32c(batch.data() + protocol::kAttributesOffset,
                               batch.size() - protocol::kAttributesOffset),
              h.crc)
        << "batch at " << h.base_offset;
    EXPECT_GT(h.base_offset, last);
    std::string scratch;
    absl::StatusOr<std::vector<protocol::Record>> records = protocol::ReadRecords(batch, &scratch);
    EXPECT_TRUE(records.ok()) << records.status();
    if (!records.ok()) break;
    EXPECT_EQ(static_cast<size_t>(h.record_count), records->size());
    for (const protocol::Record& r : *records) {
      EXPECT_GT(r.offset, last);
      EXPECT_LE(r.offset, h.last_offset());
      last = r.offset;
      Rec rec{r.offset, r.timestamp, std::nullopt, std::nullopt, {}};
      if (r.key) rec.key = std::string(*r.key);
      if (r.value) rec.value = std::string(*r.value);
      for (const auto& hd : r.headers) {
        rec.headers.emplace_back(
            std::string(hd.key),
            hd.value ? std::optional<std::string>(std::string(*hd.value)) : std::nullopt);
      }
      b.records.push_back(std::move(rec));
    }
    last = std::max(last, h.last_offset());
    out.push_back(std::move(b));
  }
  EXPECT_FALSE(it.truncated());
  return out;
}

std::vector<Rec> AllRecords(const std::vector<OutBatch>& batches) {
  std::vector<Rec> out;
  for (const OutBatch& b : batches) out.insert(out.end(), b.records.begin(), b.records.end());
  return out;
}

class CompactorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "compactor_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes `batches` as a segment file; next_offset is one past the last batch.
  CompactionSource WriteSegment(const std::vector<std::string>& batches,
                                std::optional<int64_t> next_offset = std::nullopt) {
    CompactionSource s;
    std::string data;
    for (const std::string& b : batches) data += b;
    absl::StatusOr<BatchHeader> first = protocol::ParseBatchHeader(batches.front());
    EXPECT_TRUE(first.ok());
    s.base_offset = first->base_offset;
    int64_t last = 0;
    for (const std::string& b : batches) last = protocol::ParseBatchHeader(b)->last_offset();
    s.next_offset = next_offset.value_or(last + 1);
    s.log_path = dir_ / Segment::FileName(s.base_offset, ".log.src" + std::to_string(files_++));
    std::ofstream(s.log_path, std::ios::binary) << data;
    return s;
  }

  // A source for a cleaned file (to clean it again).
  CompactionSource SourceOf(const fs::path& path, int64_t base, int64_t next) {
    return CompactionSource{base, next, path, -1};
  }

  fs::path Out(const std::string& name) { return dir_ / (name + ".log.cleaned"); }

  // Maps [0, end) of `sources` and cleans them all with upper bound `end`.
  absl::StatusOr<CleanResult> MapAndClean(const std::vector<CompactionSource>& sources, int64_t end,
                                          int64_t now, const fs::path& out, OffsetMap* map,
                                          CleanerTransactions* txns = nullptr,
                                          const std::vector<AbortedTxn>& aborted = {},
                                          CleanOptions options = {}) {
    absl::StatusOr<OffsetMapBuildResult> built = BuildOffsetMap(sources, 0, end, aborted, map);
    if (!built.ok()) return built.status();
    options.now_ms = now;
    options.delete_retention_ms = kRetention;
    options.upper_bound_offset = end;
    return Clean(sources, *map, options, txns, out);
  }

  fs::path dir_;
  int files_ = 0;
};

// ---------------------------------------------------------------------------------------
// OffsetMap

TEST_F(CompactorTest, OffsetMapBudget) {
  // Room for exactly three entries with 2-byte keys.
  OffsetMap map(3 * (OffsetMap::kEntryOverhead + 2), 1.0);
  EXPECT_EQ(map.Get("k1"), -1);
  EXPECT_TRUE(map.Put("k1", 1));
  EXPECT_TRUE(map.Put("k2", 2));
  EXPECT_TRUE(map.Put("k3", 3));
  EXPECT_FALSE(map.Put("k4", 4));  // new key, no room
  EXPECT_TRUE(map.Put("k1", 10));  // existing key always fits
  EXPECT_EQ(map.Get("k1"), 10);
  EXPECT_EQ(map.Get("k4"), -1);
  EXPECT_EQ(map.size(), 3u);
  map.Erase("k2");
  EXPECT_TRUE(map.Put("k4", 4));
  EXPECT_EQ(map.memory_bytes(), 3 * (OffsetMap::kEntryOverhead + 2));
  map.Clear();
  EXPECT_EQ(map.size(), 0u);
  EXPECT_EQ(map.latest_offset(), -1);
  // The load factor scales the budget.
  OffsetMap loaded(10 * (OffsetMap::kEntryOverhead + 2), 0.5);
  EXPECT_EQ(loaded.budget_bytes(), 5 * (OffsetMap::kEntryOverhead + 2));
}

TEST_F(CompactorTest, BuildOffsetMapRangeAndControl) {
  // Offsets 0-2, an aborted transactional batch 3-4, its ABORT marker 5, then 6-7.
  BatchOptions txn;
  txn.producer_id = 9;
  txn.producer_epoch = 0;
  txn.base_sequence = 0;
  txn.transactional = true;
  BatchOptions marker = txn;
  marker.control = true;
  marker.base_sequence = -1;
  CompactionSource s = WriteSegment({
      MakeBatch({R(0, "a", "a0"), R(1, "b", "b1"), R(2, std::nullopt, "n2")}),
      MakeBatch({R(3, "a", "a3"), R(4, "c", "c4")}, txn),
      MakeBatch({R(5, std::string("\0\0\0\0", 4), std::string("\0\0\0\0\0\0", 6))}, marker),
      MakeBatch({R(6, "b", "b6"), R(7, "d", "d7")}),
  });
  OffsetMap map;
  // Dirty range [1, 7): record 0 and offset 7 are outside it.
  absl::StatusOr<OffsetMapBuildResult> r = BuildOffsetMap({s}, 1, 7, {{9, 3, 5, 5}}, &map);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->full);
  EXPECT_EQ(r->end_offset, 7);
  EXPECT_EQ(map.latest_offset(), 6);
  EXPECT_EQ(map.Get("a"), -1);  // 0 is before start, 3 is aborted
  EXPECT_EQ(map.Get("b"), 6);
  EXPECT_EQ(map.Get("c"), -1);
  EXPECT_EQ(map.Get("d"), -1);  // 7 is past end
  EXPECT_EQ(map.size(), 1u);
}

TEST_F(CompactorTest, BuildOffsetMapStopsAtBatchBoundaryWhenFull) {
  // Three batches of two new keys each; room for three keys.
  CompactionSource s = WriteSegment({
      MakeBatch({R(0, "k0", "v"), R(1, "k1", "v")}),
      MakeBatch({R(2, "k0", "v"), R(3, "k2", "v")}),
      MakeBatch({R(4, "k3", "v"), R(5, "k4", "v")}),
  });
  OffsetMap map(3 * (OffsetMap::kEntryOverhead + 2), 1.0);
  absl::StatusOr<OffsetMapBuildResult> r = BuildOffsetMap({s}, 0, 6, {}, &map);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->full);
  EXPECT_EQ(r->end_offset, 4);
  EXPECT_EQ(map.latest_offset(), 3);
  EXPECT_EQ(map.Get("k0"), 2);
  EXPECT_EQ(map.Get("k3"), -1);  // the partial batch was undone
  EXPECT_EQ(map.size(), 3u);

  // Cleaning with that map keeps everything past offset 3.
  CleanOptions options;
  options.now_ms = 5000;
  options.upper_bound_offset = 6;
  absl::StatusOr<CleanResult> c = Clean({s}, map, options, nullptr, Out("full"));
  ASSERT_TRUE(c.ok()) << c.status();
  std::vector<Rec> expected = {R(1, "k1", "v"), R(2, "k0", "v"), R(3, "k2", "v"), R(4, "k3", "v"),
                               R(5, "k4", "v")};
  EXPECT_EQ(AllRecords(ReadAll(Out("full"))), expected);

  // A budget smaller than one batch cannot make progress.
  OffsetMap tiny(OffsetMap::kEntryOverhead + 2, 1.0);
  EXPECT_EQ(BuildOffsetMap({s}, 0, 6, {}, &tiny).status().code(),
            absl::StatusCode::kResourceExhausted);
}

// ---------------------------------------------------------------------------------------
// Clean: fixed cases

TEST_F(CompactorTest, LatestRecordWinsAndUntouchedBatchesAreCopied) {
  std::string a = MakeBatch({R(0, "k1", "a"), R(1, "k2", "b", 5000), R(2, "k3", "c", 900)});
  std::string b = MakeBatch({R(3, "k1", "d"), R(4, "k3", "e")});
  std::string c = MakeBatch({R(5, "k4", "f")});
  CompactionSource s = WriteSegment({a, b, c});
  OffsetMap map;
  absl::StatusOr<CleanResult> r = MapAndClean({s}, 6, 10000, Out("x"), &map);
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<OutBatch> out = ReadAll(Out("x"));
  ASSERT_EQ(out.size(), 3u);
  // a keeps only k2: same base offset and last offset delta, BaseTimestamp and
  // MaxTimestamp from the kept record, no delete horizon.
  EXPECT_EQ(out[0].header.base_offset, 0);
  EXPECT_EQ(out[0].header.last_offset_delta, 2);
  EXPECT_EQ(out[0].header.record_count, 1);
  EXPECT_EQ(out[0].header.base_timestamp, 5000);
  EXPECT_EQ(out[0].header.max_timestamp, 5000);
  EXPECT_EQ(out[0].header.attributes & kDeleteHorizonFlag, 0);
  EXPECT_EQ(out[0].records, std::vector<Rec>{R(1, "k2", "b", 5000)});
  EXPECT_EQ(out[1].bytes, b);
  EXPECT_EQ(out[2].bytes, c);
  EXPECT_EQ(r->batches_read, 3);
  EXPECT_EQ(r->records_read, 6);
  EXPECT_EQ(r->batches_written, 3);
  EXPECT_EQ(r->batches_copied, 2);
  EXPECT_EQ(r->records_written, 4);
  EXPECT_EQ(r->first_offset, 0);
  EXPECT_EQ(r->last_offset, 5);
  EXPECT_EQ(r->max_timestamp, 5000);
  EXPECT_EQ(r->offset_of_max_timestamp, 2);
  EXPECT_EQ(r->bytes_written, fs::file_size(Out("x")));
}

TEST_F(CompactorTest, EmptiedBatchesAreDroppedButTheRoundsLastIsKept) {
  std::string a = MakeBatch({R(0, "k1", "a")});
  std::string b = MakeBatch({R(1, "k1", "b")});
  std::string c = MakeBatch({R(2, "k2", "c"), R(3, "k1", "d")});
  std::string d = MakeBatch({R(4, "k2", "e")}, {.compression = Compression::kZstd});
  CompactionSource s = WriteSegment({a, b, c, d});
  OffsetMap map;
  absl::StatusOr<OffsetMapBuildResult> built = BuildOffsetMap({s}, 0, 5, {}, &map);
  ASSERT_TRUE(built.ok());
  // a and b are emptied and dropped; c keeps k1.
  CleanOptions options;
  options.now_ms = 1;
  options.upper_bound_offset = 4;
  absl::StatusOr<CleanResult> r = Clean({s}, map, options, nullptr, Out("e"));
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<OutBatch> out = ReadAll(Out("e"));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].header.base_offset, 2);
  EXPECT_EQ(out[0].records, std::vector<Rec>{R(3, "k1", "d")});
  EXPECT_EQ(out[1].bytes, d);

  // Now with c emptied: k1 and k2 both superseded by a later batch.
  std::string e = MakeBatch({R(5, "k1", "f"), R(6, "k2", "g")});
  CompactionSource s2 = WriteSegment({a, b, c, e});
  OffsetMap map2;
  ASSERT_TRUE(BuildOffsetMap({s2}, 0, 7, {}, &map2).ok());
  options.upper_bound_offset = 4;  // c ends right before it
  r = Clean({s2}, map2, options, nullptr, Out("e2"));
  ASSERT_TRUE(r.ok()) << r.status();
  out = ReadAll(Out("e2"));
  ASSERT_EQ(out.size(), 2u);
  // c as a bare header: Kafka's writeEmptyHeader.
  BatchHeader want = *protocol::ParseBatchHeader(c);
  EXPECT_EQ(out[0].bytes.size(), protocol::kBatchHeaderSize);
  EXPECT_EQ(out[0].header.base_offset, 2);
  EXPECT_EQ(out[0].header.last_offset_delta, 1);
  EXPECT_EQ(out[0].header.record_count, 0);
  EXPECT_EQ(out[0].header.base_timestamp, -1);
  EXPECT_EQ(out[0].header.max_timestamp, want.max_timestamp);
  EXPECT_EQ(out[0].header.attributes, 0);
  EXPECT_EQ(out[1].bytes, e);
  EXPECT_EQ(r->empty_batches_written, 1);
}

TEST_F(CompactorTest, TombstoneDeleteHorizonLifecycle) {
  std::string a = MakeBatch({R(0, "k1", "a"), R(1, "k2", "b")});
  std::string b = MakeBatch({R(2, "k1", std::nullopt, 3000), R(3, "k3", "c", 2000)},
                            {.compression = Compression::kLz4});
  std::string tail = MakeBatch({R(4, "k4", "d")});
  CompactionSource s = WriteSegment({a, b, tail});
  const int64_t now = 100000;

  // First clean: k1's tombstone is the latest and is kept; its batch gets the horizon.
  OffsetMap map;
  absl::StatusOr<CleanResult> r = MapAndClean({s}, 5, now, Out("t1"), &map);
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<OutBatch> out = ReadAll(Out("t1"));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].records, std::vector<Rec>{R(1, "k2", "b")});
  EXPECT_EQ(out[1].header.attributes & kDeleteHorizonFlag, kDeleteHorizonFlag);
  EXPECT_EQ(out[1].header.compression(), Compression::kLz4);
  EXPECT_EQ(out[1].header.base_timestamp, now + kRetention);
  EXPECT_EQ(out[1].header.max_timestamp, 3000);
  EXPECT_EQ(out[1].header.last_offset_delta, 1);
  std::vector<Rec> want_b = {R(2, "k1", std::nullopt, 3000), R(3, "k3", "c", 2000)};
  EXPECT_EQ(out[1].records, want_b);
  EXPECT_EQ(out[2].bytes, tail);
  EXPECT_EQ(r->tombstones_removed, 0);

  // Before the horizon a second clean changes nothing: the horizon is not moved.
  CompactionSource s1 = SourceOf(Out("t1"), 0, 5);
  r = MapAndClean({s1}, 5, now + kRetention - 1, Out("t2"), &map);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Slurp(Out("t2")), Slurp(Out("t1")));
  EXPECT_EQ(r->batches_copied, 3);

  // At the horizon (Kafka keeps tombstones while now < horizon) the tombstone goes; the
  // rebuilt batch keeps its horizon.
  r = MapAndClean({s1}, 5, now + kRetention, Out("t3"), &map);
  ASSERT_TRUE(r.ok()) << r.status();
  out = ReadAll(Out("t3"));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1].records, std::vector<Rec>{R(3, "k3", "c", 2000)});
  EXPECT_EQ(out[1].header.base_timestamp, now + kRetention);
  EXPECT_EQ(out[1].header.attributes & kDeleteHorizonFlag, kDeleteHorizonFlag);
  EXPECT_EQ(out[1].header.max_timestamp, 2000);
  EXPECT_EQ(r->tombstones_removed, 1);
}

TEST_F(CompactorTest, NullKeysAndRecordsPastTheMap) {
  std::string a = MakeBatch({R(0, std::nullopt, "n0"), R(1, "k1", "a"), R(2, "k1", "b")});
  std::string b = MakeBatch({R(3, std::nullopt, "n3"), R(4, "k1", "c")});
  CompactionSource s = WriteSegment({a, b});
  OffsetMap map;
  ASSERT_TRUE(BuildOffsetMap({s}, 0, 3, {}, &map).ok());  // covers [0, 3)
  EXPECT_EQ(map.latest_offset(), 2);
  CleanOptions options;
  options.now_ms = 1;
  options.upper_bound_offset = 3;
  absl::StatusOr<CleanResult> r = Clean({s}, map, options, nullptr, Out("n"));
  ASSERT_TRUE(r.ok()) << r.status();
  // The covered null-key record goes (Kafka: invalid in a compacted log); everything past
  // offset 2 stays, including a null key.
  std::vector<OutBatch> out = ReadAll(Out("n"));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].records, std::vector<Rec>{R(2, "k1", "b")});
  EXPECT_EQ(out[1].bytes, b);
  EXPECT_EQ(r->null_key_records_removed, 1);
}

TEST_F(CompactorTest, LogAppendTimeBatchKeepsItsMaxTimestamp) {
  std::string a =
      MakeBatch({R(0, "k1", "a"), R(1, "k2", "b")}, {.compression = Compression::kGzip});
  protocol::SetLogAppendTime(a.data(), a.size(), 777777);
  std::string b = MakeBatch({R(2, "k1", "c")});
  CompactionSource s = WriteSegment({a, b});
  OffsetMap map;
  absl::StatusOr<CleanResult> r = MapAndClean({s}, 3, 1, Out("l"), &map);
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<OutBatch> out = ReadAll(Out("l"));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].header.log_append_time());
  EXPECT_EQ(out[0].header.compression(), Compression::kGzip);
  EXPECT_EQ(out[0].header.max_timestamp, 777777);
  EXPECT_EQ(out[0].records, std::vector<Rec>{R(1, "k2", "b", 777777)});
}

TEST_F(CompactorTest, ProducerStateIsPreserved) {
  BatchOptions idem;
  idem.producer_id = 7;
  idem.producer_epoch = 3;
  idem.base_sequence = 40;
  std::string a = MakeBatch({R(0, "k1", "a"), R(1, "k2", "b"), R(2, "k3", "c")}, idem);
  protocol::SetPartitionLeaderEpoch(a.data(), 12);
  idem.base_sequence = 43;
  std::string b = MakeBatch({R(3, "k1", "d")}, idem);
  std::string c = MakeBatch({R(4, "k2", "e"), R(5, "k3", "f")});
  CompactionSource s = WriteSegment({a, b, c});

  // Producer 7 not active: a is emptied and dropped, b and c are copied.
  OffsetMap map;
  absl::StatusOr<CleanResult> r = MapAndClean({s}, 6, 1, Out("p"), &map);
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<OutBatch> out = ReadAll(Out("p"));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].bytes, b);
  EXPECT_EQ(out[1].bytes, c);

  // b is superseded too once k1 is rewritten later; with producer 7 active and its last
  // data offset at 3, b survives as an empty batch carrying its sequence.
  std::string d = MakeBatch({R(6, "k1", "g")});
  CompactionSource s2 = WriteSegment({a, b, c, d});
  CleanOptions options;
  options.active_producers[7] = ProducerLastRecord{3, 3};
  r = MapAndClean({s2}, 7, 1, Out("p2"), &map, nullptr, {}, options);
  ASSERT_TRUE(r.ok()) << r.status();
  out = ReadAll(Out("p2"));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].header.base_offset, 3);
  EXPECT_EQ(out[0].header.record_count, 0);
  EXPECT_EQ(out[0].header.producer_id, 7);
  EXPECT_EQ(out[0].header.producer_epoch, 3);
  EXPECT_EQ(out[0].header.base_sequence, 43);
  EXPECT_EQ(out[1].bytes, c);
  EXPECT_EQ(out[2].bytes, d);

  // A partly kept idempotent batch keeps every header field but the timestamps and count.
  std::string e = MakeBatch({R(6, "k2", "g")});
  CompactionSource s3 = WriteSegment({a, e});
  r = MapAndClean({s3}, 7, 1, Out("p3"), &map);
  ASSERT_TRUE(r.ok()) << r.status();
  out = ReadAll(Out("p3"));
  ASSERT_EQ(out.size(), 2u);
  BatchHeader want = *protocol::ParseBatchHeader(a);
  EXPECT_EQ(out[0].header.partition_leader_epoch, 12);
  EXPECT_EQ(out[0].header.producer_id, 7);
  EXPECT_EQ(out[0].header.producer_epoch, 3);
  EXPECT_EQ(out[0].header.base_sequence, 40);
  EXPECT_EQ(out[0].header.last_offset_delta, 2);
  EXPECT_EQ(out[0].header.attributes, want.attributes);
  std::vector<Rec> kept = {R(0, "k1", "a"), R(2, "k3", "c")};
  EXPECT_EQ(out[0].records, kept);
}

TEST_F(CompactorTest, TransactionMarkers) {
  BatchOptions txn;
  txn.producer_id = 9;
  txn.producer_epoch = 1;
  txn.base_sequence = 0;
  txn.transactional = true;
  BatchOptions marker = txn;
  marker.control = true;
  marker.base_sequence = -1;
  const std::string kAbortKey("\0\0\0\0", 4);
  const std::string kCommitKey("\0\0\0\1", 4);
  const std::string kMarkerValue("\0\0\0\0\0\0", 6);
  BatchOptions txn2 = txn;
  txn2.producer_id = 5;
  BatchOptions marker2 = marker;
  marker2.producer_id = 5;
  std::vector<std::string> batches = {
      MakeBatch({R(0, "a", "aborted"), R(1, "b", "aborted")}, txn),  // aborted
      MakeBatch({R(2, kAbortKey, kMarkerValue)}, marker),            // ABORT
      MakeBatch({R(3, "c", "committed")}, txn2),                     // committed
      MakeBatch({R(4, kCommitKey, kMarkerValue)}, marker2),          // COMMIT
      MakeBatch({R(5, "z", "tail")}),
  };
  CompactionSource s = WriteSegment(batches);
  std::vector<AbortedTxn> aborted = {{9, 0, 2, 2}};

  // First clean: aborted data goes, both markers stay (their transactions had batches here),
  // the aborted transaction goes to the cleaned transaction index.
  OffsetMap map;
  CleanerTransactions txns;
  txns.AddAbortedTransactions(aborted);
  absl::StatusOr<CleanResult> r = MapAndClean({s}, 6, 1000, Out("x1"), &map, &txns, aborted);
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<OutBatch> out = ReadAll(Out("x1"));
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].bytes, batches[1]);
  EXPECT_EQ(out[1].bytes, batches[2]);
  EXPECT_EQ(out[2].bytes, batches[3]);
  EXPECT_EQ(out[3].bytes, batches[4]);
  EXPECT_EQ(r->aborted_records_removed, 2);
  EXPECT_EQ(r->retained_aborted_transactions, aborted);

  // Second clean: the ABORT marker's transaction is empty now, so it gets a horizon; the
  // COMMIT marker still has its batch.
  CompactionSource s1 = SourceOf(Out("x1"), 0, 6);
  CleanerTransactions txns2;
  txns2.AddAbortedTransactions(aborted);
  r = MapAndClean({s1}, 6, 2000, Out("x2"), &map, &txns2, aborted);
  ASSERT_TRUE(r.ok()) << r.status();
  out = ReadAll(Out("x2"));
  ASSERT_EQ(out.size(), 4u);
  EXPECT_TRUE(out[0].header.is_control());
  EXPECT_EQ(out[0].header.attributes & kDeleteHorizonFlag, kDeleteHorizonFlag);
  EXPECT_EQ(out[0].header.base_timestamp, 2000 + kRetention);
  EXPECT_EQ(out[0].records.size(), 1u);
  EXPECT_EQ(out[2].bytes, batches[3]);
  EXPECT_TRUE(r->retained_aborted_transactions.empty());

  // Third clean, at the horizon, with c superseded: the ABORT marker goes; c's batch goes
  // but was seen in this pass, so the COMMIT marker stays as it is (as in Kafka).
  std::string later = MakeBatch({R(6, "c", "new")});
  CompactionSource s2 = SourceOf(Out("x2"), 0, 6);
  CompactionSource s3 = WriteSegment({later});
  CleanerTransactions txns3;
  r = MapAndClean({s2, s3}, 7, 2000 + kRetention, Out("x3"), &map, &txns3);
  ASSERT_TRUE(r.ok()) << r.status();
  out = ReadAll(Out("x3"));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].bytes, batches[3]);
  EXPECT_EQ(out[1].bytes, batches[4]);
  EXPECT_EQ(out[2].bytes, later);
  EXPECT_EQ(r->markers_removed, 1);

  // Fourth clean: the COMMIT marker's transaction is empty, so it gets its horizon; past
  // that a fifth clean removes it (it is not the round's last batch).
  CompactionSource s4 = SourceOf(Out("x3"), 0, 7);
  CleanerTransactions txns4;
  r = MapAndClean({s4}, 7, 5000, Out("x4"), &map, &txns4);
  ASSERT_TRUE(r.ok()) << r.status();
  out = ReadAll(Out("x4"));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(out[0].header.is_control());
  EXPECT_EQ(out[0].header.base_offset, 4);
  EXPECT_EQ(out[0].header.base_timestamp, 5000 + kRetention);
  EXPECT_EQ(out[0].header.attributes & kDeleteHorizonFlag, kDeleteHorizonFlag);
  CleanerTransactions txns5;
  r = MapAndClean({SourceOf(Out("x4"), 0, 7)}, 7, 5000 + kRetention, Out("x5"), &map, &txns5);
  ASSERT_TRUE(r.ok()) << r.status();
  out = ReadAll(Out("x5"));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].bytes, batches[4]);
  EXPECT_EQ(r->markers_removed, 1);
}

// A transaction whose data is in one group and whose markers are in the next: the round's
// CleanerTransactions carries it across, so the data goes and each group reports only the
// aborted transactions whose ABORT markers it kept (its own transaction index).
TEST_F(CompactorTest, TransactionsAcrossGroups) {
  BatchOptions txn;
  txn.producer_id = 9;
  txn.producer_epoch = 0;
  txn.base_sequence = 0;
  txn.transactional = true;
  BatchOptions marker = txn;
  marker.control = true;
  marker.base_sequence = -1;
  BatchOptions txn2 = txn;
  txn2.producer_id = 5;
  BatchOptions marker2 = marker;
  marker2.producer_id = 5;
  const std::string kAbortKey("\0\0\0\0", 4);
  const std::string kCommitKey("\0\0\0\1", 4);
  const std::string kMarkerValue("\0\0\0\0\0\0", 6);
  CompactionSource g1 = WriteSegment({
      MakeBatch({R(0, "a", "aborted")}, txn),     // aborted, marker in group 2
      MakeBatch({R(1, "b", "committed")}, txn2),  // committed, marker in group 2
  });
  const std::string abort_marker = MakeBatch({R(2, kAbortKey, kMarkerValue)}, marker);
  const std::string commit_marker = MakeBatch({R(3, kCommitKey, kMarkerValue)}, marker2);
  const std::string tail = MakeBatch({R(4, "z", "tail")});
  CompactionSource g2 = WriteSegment({abort_marker, commit_marker, tail});
  const std::vector<AbortedTxn> aborted = {{9, 0, 2, 3}};

  OffsetMap map;
  ASSERT_TRUE(BuildOffsetMap({g1, g2}, 0, 5, aborted, &map).ok());
  EXPECT_EQ(map.Get("a"), -1);  // aborted records are not mapped
  EXPECT_EQ(map.Get("b"), 1);
  CleanOptions options;
  options.now_ms = 1000;
  options.delete_retention_ms = kRetention;
  options.upper_bound_offset = 5;
  CleanerTransactions txns;
  txns.AddAbortedTransactions(aborted);
  absl::StatusOr<CleanResult> r1 = Clean({g1}, map, options, &txns, Out("g1"));
  ASSERT_TRUE(r1.ok()) << r1.status();
  EXPECT_EQ(r1->aborted_records_removed, 1);
  EXPECT_TRUE(r1->retained_aborted_transactions.empty());
  std::vector<OutBatch> out1 = ReadAll(Out("g1"));
  ASSERT_EQ(out1.size(), 1u);
  EXPECT_EQ(out1[0].header.base_offset, 1);
  absl::StatusOr<CleanResult> r2 = Clean({g2}, map, options, &txns, Out("g2"));
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r2->retained_aborted_transactions, aborted);
  std::vector<OutBatch> out2 = ReadAll(Out("g2"));
  ASSERT_EQ(out2.size(), 3u);
  EXPECT_EQ(out2[0].bytes, abort_marker);
  EXPECT_EQ(out2[1].bytes, commit_marker);

  // Without the round's tracker the second group knows neither transaction: both markers
  // look empty and get a delete horizon, and no entry is retained.
  CleanerTransactions fresh;
  fresh.AddAbortedTransactions(aborted);
  r2 = Clean({g2}, map, options, &fresh, Out("g2b"));
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_TRUE(r2->retained_aborted_transactions.empty());
  out2 = ReadAll(Out("g2b"));
  ASSERT_EQ(out2.size(), 3u);
  EXPECT_EQ(out2[0].header.attributes & kDeleteHorizonFlag, kDeleteHorizonFlag);
  EXPECT_EQ(out2[1].header.attributes & kDeleteHorizonFlag, kDeleteHorizonFlag);
}

TEST_F(CompactorTest, OutputRecoversAsASegment) {
  std::vector<std::string> batches;
  for (int i = 0; i < 50; ++i) {
    batches.push_back(MakeBatch({R(100 + 2 * i, "k" + std::to_string(i % 7), std::string(200, 'x')),
                                 R(101 + 2 * i, "u" + std::to_string(i), "v")}));
  }
  CompactionSource s = WriteSegment(batches);
  OffsetMap map;
  fs::path out = dir_ / Segment::FileName(100, ".log");
  absl::StatusOr<CleanResult> r = MapAndClean({s}, 200, 1, out, &map);
  ASSERT_TRUE(r.ok()) << r.status();
  LogConfig config;
  config.index_interval_bytes = 256;
  uint64_t truncated = 99;
  absl::StatusOr<std::unique_ptr<Segment>> seg = Segment::Recover(dir_, 100, config, &truncated);
  ASSERT_TRUE(seg.ok()) << seg.status();
  EXPECT_EQ(truncated, 0u);
  EXPECT_EQ((*seg)->next_offset(), 200);
  EXPECT_EQ((*seg)->size(), r->bytes_written);
  absl::StatusOr<std::optional<Segment::BatchLocation>> loc = (*seg)->FindBatch(150);
  ASSERT_TRUE(loc.ok());
  ASSERT_TRUE(loc->has_value());
  EXPECT_EQ((*loc)->header.base_offset, 150);
}

TEST_F(CompactorTest, CorruptSourceFailsAndRemovesTheOutput) {
  std::string a = MakeBatch({R(0, "k1", "a")});
  std::string b = MakeBatch({R(1, "k1", "b")});
  b[b.size() - 1] ^= 1;
  CompactionSource s = WriteSegment({a, b});
  OffsetMap map;
  EXPECT_EQ(BuildOffsetMap({s}, 0, 2, {}, &map).status().code(), absl::StatusCode::kDataLoss);
  CleanOptions options;
  absl::StatusOr<CleanResult> r = Clean({s}, map, options, nullptr, Out("bad"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(fs::exists(Out("bad")));
  // Offsets outside the described segment are refused too.
  CompactionSource wrong = WriteSegment({a});
  wrong.next_offset = 0;
  EXPECT_EQ(Clean({wrong}, map, options, nullptr, Out("bad")).status().code(),
            absl::StatusCode::kDataLoss);
}

// ---------------------------------------------------------------------------------------
// Property test

struct Generated {
  std::vector<CompactionSource> sources;
  std::vector<std::string> batches;  // as written
  std::vector<std::vector<Rec>> batch_records;
  int64_t end = 0;
};

class CompactorPropertyTest : public CompactorTest {
 protected:
  Generated Generate(std::mt19937& rng, int key_space) {
    auto uniform = [&rng](int lo, int hi) {
      return std::uniform_int_distribution<int>(lo, hi)(rng);
    };
    Generated g;
    int64_t offset = uniform(0, 100);
    int segments = uniform(2, 4);
    for (int s = 0; s < segments; ++s) {
      std::vector<std::string> seg;
      int nbatches = uniform(2, 6);
      for (int b = 0; b < nbatches; ++b) {
        if (uniform(0, 9) == 0) offset += uniform(1, 5);  // an offset gap (earlier clean)
        std::vector<Rec> recs;
        int n = uniform(1, 6);
        for (int i = 0; i < n; ++i) {
          Rec r;
          r.offset = offset++;
          r.timestamp = 1000000 + r.offset * 10 + uniform(-30, 30);
          if (uniform(0, 9) != 0) r.key = "key-" + std::to_string(uniform(0, key_space - 1));
          if (uniform(0, 5) != 0)
            r.value = std::string(uniform(0, 300), static_cast<char>('a' + uniform(0, 25)));
          int nh = uniform(0, 2);
          for (int j = 0; j < nh; ++j) {
            r.headers.emplace_back("h" + std::to_string(j), uniform(0, 3) == 0
                                                                ? std::nullopt
                                                                : std::optional<std::string>("hv"));
          }
          recs.push_back(std::move(r));
        }
        BatchOptions options;
        options.compression = static_cast<Compression>(uniform(0, 4));
        std::string batch = MakeBatch(recs, options);
        seg.push_back(batch);
        g.batches.push_back(batch);
        g.batch_records.push_back(std::move(recs));
      }
      g.sources.push_back(WriteSegment(seg));
    }
    // Segments are contiguous in offsets: each describes up to the next one's base.
    for (size_t i = 0; i + 1 < g.sources.size(); ++i) {
      g.sources[i].next_offset = g.sources[i + 1].base_offset;
    }
    g.end = offset;
    return g;
  }
};

TEST_F(CompactorPropertyTest, MatchesModel) {
  for (int seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937 rng(seed);
    Generated g = Generate(rng, seed % 2 == 0 ? 6 : 30);
    const int64_t now = 5000000;

    // The model: latest offset per key over everything.
    std::map<std::string, int64_t> latest;
    for (const auto& recs : g.batch_records) {
      for (const Rec& r : recs) {
        if (r.key) latest[*r.key] = r.offset;
      }
    }
    auto survives = [&](const Rec& r) { return r.key && latest[*r.key] == r.offset; };

    OffsetMap map;
    fs::path out1 = Out("p1-" + std::to_string(seed));
    absl::StatusOr<CleanResult> r = MapAndClean(g.sources, g.end, now, out1, &map);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(map.size(), latest.size());
    std::vector<OutBatch> out = ReadAll(out1);

    std::vector<Rec> expected;
    std::vector<std::string> untouched;  // batches that must be copied byte for byte
    for (size_t i = 0; i < g.batches.size(); ++i) {
      bool all = true;
      bool tombstone = false;
      for (const Rec& rec : g.batch_records[i]) {
        if (survives(rec)) {
          expected.push_back(rec);
          tombstone |= !rec.value;
        } else {
          all = false;
        }
      }
      if (all && !tombstone) untouched.push_back(g.batches[i]);
    }
    EXPECT_EQ(AllRecords(out), expected);
    size_t copied = 0;
    for (const OutBatch& b : out) {
      if (std::find(untouched.begin(), untouched.end(), b.bytes) != untouched.end()) ++copied;
      bool has_tombstone =
          std::any_of(b.records.begin(), b.records.end(), [](const Rec& x) { return !x.value; });
      EXPECT_EQ((b.header.attributes & kDeleteHorizonFlag) != 0, has_tombstone);
      if (has_tombstone) {
        EXPECT_EQ(b.header.base_timestamp, now + kRetention);
      }
      if (b.records.empty()) {
        EXPECT_EQ(b.header.last_offset() + 1, g.end);  // only the round's last batch
      }
    }
    EXPECT_EQ(copied, untouched.size());
    EXPECT_EQ(r->batches_copied, static_cast<int64_t>(untouched.size()));
    EXPECT_EQ(r->records_written, static_cast<int64_t>(expected.size()));

    // Cleaning the output again before the horizon is idempotent, byte for byte.
    std::vector<CompactionSource> again = {SourceOf(out1, g.sources.front().base_offset, g.end)};
    fs::path out2 = Out("p2-" + std::to_string(seed));
    r = MapAndClean(again, g.end, now + kRetention - 1, out2, &map);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(Slurp(out2), Slurp(out1));

    // Past the horizon the tombstones are gone and nothing else changes.
    fs::path out3 = Out("p3-" + std::to_string(seed));
    r = MapAndClean(again, g.end, now + kRetention, out3, &map);
    ASSERT_TRUE(r.ok()) << r.status();
    std::vector<Rec> live;
    for (const Rec& rec : expected) {
      if (rec.value) live.push_back(rec);
    }
    std::vector<OutBatch> out3_batches = ReadAll(out3);
    EXPECT_EQ(AllRecords(out3_batches), live);
    EXPECT_EQ(r->tombstones_removed, static_cast<int64_t>(expected.size() - live.size()));
    for (const OutBatch& b : out3_batches) {
      // Batches that had no delete horizon after the first clean are copied again.
      if ((b.header.attributes & kDeleteHorizonFlag) == 0 && !b.records.empty()) {
        EXPECT_TRUE(std::any_of(out.begin(), out.end(),
                                [&b](const OutBatch& o) { return o.bytes == b.bytes; }));
      }
    }
  }
}

TEST_F(CompactorPropertyTest, PartialMapMatchesModel) {
  int full_runs = 0;
  for (int seed = 100; seed < 130; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937 rng(seed);
    Generated g = Generate(rng, 40);
    const int64_t now = 5000000;
    // Room for about eight keys.
    OffsetMap map(8 * (OffsetMap::kEntryOverhead + 6), 1.0);
    absl::StatusOr<OffsetMapBuildResult> built = BuildOffsetMap(g.sources, 0, g.end, {}, &map);
    ASSERT_TRUE(built.ok()) << built.status();
    int64_t covered = built->end_offset;
    if (!built->full) {
      EXPECT_EQ(covered, g.end);
      continue;
    }
    ++full_runs;
    // The map stops after a whole batch and holds exactly the latest offsets below it.
    bool boundary = false;
    for (const CompactionSource& src : g.sources) boundary |= src.base_offset == covered;
    std::map<std::string, int64_t> latest;
    for (const auto& recs : g.batch_records) {
      if (recs.back().offset + 1 == covered) boundary = true;
      for (const Rec& r : recs) {
        if (r.key && r.offset < covered) latest[*r.key] = r.offset;
      }
    }
    EXPECT_TRUE(boundary) << covered;
    EXPECT_EQ(map.size(), latest.size());
    for (const auto& [key, offset] : latest) EXPECT_EQ(map.Get(key), offset) << key;

    CleanOptions options;
    options.now_ms = now;
    options.delete_retention_ms = kRetention;
    options.upper_bound_offset = g.end;
    fs::path out = Out("pm-" + std::to_string(seed));
    absl::StatusOr<CleanResult> r = Clean(g.sources, map, options, nullptr, out);
    ASSERT_TRUE(r.ok()) << r.status();
    std::vector<Rec> expected;
    for (const auto& recs : g.batch_records) {
      for (const Rec& rec : recs) {
        if (rec.offset >= covered || (rec.key && latest[*rec.key] == rec.offset)) {
          expected.push_back(rec);
        }
      }
    }
    EXPECT_EQ(AllRecords(ReadAll(out)), expected);
  }
  EXPECT_GE(full_runs, 20);  // the budget really cuts most runs short
}

}  // namespace
}  // namespace runnel::storage
