// Disk faults, against the real runnel binary:
//
// CorruptionTest: produce several batches (1 MiB segments, so the log spans several
// files), stop the broker (SIGTERM, a clean shutdown; or SIGKILL), damage the active
// segment's .log by hand, start it again and check what recovery made of it:
//   - truncated in the middle of its last batch, or a byte flipped inside the last batch
//     (CRC-32C mismatch): the log ends at the batch before, every earlier record intact;
//   - garbage, a few 0xff bytes, or zeros (a preallocated tail) after the last batch: the
//     log keeps every record.
// In every case new produces continue at the next offset, and a further clean restart
// keeps it all.
//
// DiskFullTest: the broker's log dir is a 4 MB tmpfs; records are produced with acks=all
// (no retries) until a delivery report says KAFKA_STORAGE_ERROR. Then the broker must still
// be running, answer ApiVersions and Metadata, and serve every record acknowledged before.
// Needs root (mount(2)); skipped with a message otherwise. The tmpfs is unmounted in
// TearDown.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "broker_process.h"
#include "kafka_client.h"

namespace runnel::integration {
namespace {

using Clock = std::chrono::steady_clock;

rd_kafka_conf_t* NewConf(const std::string& bootstrap,
                         const std::vector<std::pair<std::string, std::string>>& kvs) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  auto set = [&](const std::string& k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      ADD_FAILURE() << k << "=" << v << ": " << err;
    }
  };
  set("bootstrap.servers", bootstrap);
  set("log_level", "3");
  for (const auto& [k, v] : kvs) set(k, v);
  return conf;
}

struct Record {
  std::string key;
  std::string value;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__IN_PROGRESS;  // from the delivery report
  int64_t offset = -1;
};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* records = static_cast<std::vector<Record>*>(opaque);
  Record& r = (*records)[reinterpret_cast<uintptr_t>(m->_private)];
  r.err = m->err;
  r.offset = m->err ? -1 : m->offset;
}

// A producer to partition 0 that reports into a vector of Records.
class Producer {
 public:
  Producer(const std::string& bootstrap, std::vector<Record>* records) : records_(records) {
    rd_kafka_conf_t* conf = NewConf(bootstrap, {{"acks", "all"},
                                                {"enable.idempotence", "false"},
                                                {"linger.ms", "5"},
                                                {"message.send.max.retries", "0"},
                                                {"message.timeout.ms", "30000"}});
    rd_kafka_conf_set_dr_msg_cb(conf, OnDelivery);
    rd_kafka_conf_set_opaque(conf, records_);
    char err[512];
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (rk_ == nullptr) ADD_FAILURE() << err;
  }
  ~Producer() {
    if (rk_ != nullptr) rd_kafka_destroy(rk_);
  }

  // Sends records [from, to) of *records and waits for their reports. Returns "" or an
  // error.
  std::string SendAndWait(const std::string& topic, size_t from, size_t to) {
    if (rk_ == nullptr) return "no producer";
    for (size_t i = from; i < to; i++) {
      const Record& r = (*records_)[i];
      rd_kafka_resp_err_t e = rd_kafka_producev(
          rk_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(0),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(r.key.data(), r.key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
          RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(i)), RD_KAFKA_V_END);
      if (e) return std::string("producev: ") + rd_kafka_err2name(e);
    }
    rd_kafka_resp_err_t e = rd_kafka_flush(rk_, 60000);
    if (e) return std::string("flush: ") + rd_kafka_err2name(e);
    return "";
  }

 private:
  std::vector<Record>* records_;
  rd_kafka_t* rk_ = nullptr;
};

std::vector<Record> MakeRecords(const std::string& tag, size_t n, size_t value_size,
                                size_t first = 0) {
  std::vector<Record> out;
  std::mt19937 rng(static_cast<uint32_t>(first * 7919 + n));
  for (size_t i = first; i < first + n; i++) {
    Record r;
    r.key = tag + "-" + std::to_string(i);
    r.value = r.key + ":";
    while (r.value.size() < value_size) r.value += static_cast<char>('a' + rng() % 26);
    out.push_back(std::move(r));
  }
  return out;
}

// The log holds exactly want[0..] at offsets 0.., and its high watermark is want.size().
void ExpectExactly(const std::string& bootstrap, const std::string& topic,
                   const std::vector<Record>& want) {
  Watermarks w = QueryWatermarks(bootstrap, topic, 0);
  EXPECT_EQ(w.err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2name(w.err);
  EXPECT_EQ(w.low, 0);
  EXPECT_EQ(w.high, static_cast<int64_t>(want.size()));
  std::string error;
  std::vector<ReadRecord> got = ReadPartition(bootstrap, topic, 0, &error);
  EXPECT_EQ(error, "");
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); i++) {
    ASSERT_EQ(got[i].offset, static_cast<int64_t>(i));
    ASSERT_EQ(got[i].key, want[i].key) << "offset " << i;
    ASSERT_EQ(got[i].value, want[i].value) << "offset " << i;
  }
}

// ---- Corruption ----

struct OnDiskBatch {
  uint64_t position;
  uint64_t size;
  int64_t base_offset;
  int64_t last_offset;
};

uint64_t BigEndian(const std::string& s, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v = (v << 8) | static_cast<uint8_t>(s[pos + i]);
  return v;
}

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The batches of a .log file (BaseOffset at 0, BatchLength at 8, LastOffsetDelta at 23).
std::vector<OnDiskBatch> ScanBatches(const std::string& log) {
  std::vector<OnDiskBatch> out;
  for (size_t pos = 0; pos + 61 <= log.size();) {
    OnDiskBatch b;
    b.position = pos;
    b.size = 12 + BigEndian(log, pos + 8, 4);
    b.base_offset = static_cast<int64_t>(BigEndian(log, pos, 8));
    b.last_offset = b.base_offset + static_cast<int32_t>(BigEndian(log, pos + 23, 4));
    if (pos + b.size > log.size()) break;
    out.push_back(b);
    pos += b.size;
  }
  return out;
}

enum class Damage {
  kTruncateLastBatch,
  kFlipByteInLastBatch,
  kGarbageAfter,
  kShortGarbageAfter,
  kZerosAfter
};

void PrintTo(Damage d, std::ostream* os) {
  switch (d) {
    case Damage::kTruncateLastBatch:
      *os << "TruncateLastBatch";
      break;
    case Damage::kFlipByteInLastBatch:
      *os << "FlipByteInLastBatch";
      break;
    case Damage::kGarbageAfter:
      *os << "GarbageAfter";
      break;
    case Damage::kShortGarbageAfter:
      *os << "ShortGarbageAfter";
      break;
    case Damage::kZerosAfter:
      *os << "ZerosAfter";
      break;
  }
}

// How the broker is stopped before the damage.
enum class StopBy { kSigterm, kSigkill };

class CorruptionTest : public ::testing::TestWithParam<std::tuple<Damage, StopBy>> {};

TEST_P(CorruptionTest, RecoveryKeepsEveryWholeBatchBeforeTheDamage) {
  const Damage damage = std::get<0>(GetParam());
  const StopBy stop_by = std::get<1>(GetParam());
  BrokerProcess broker(BrokerProcess::DefaultBinary(), {"log.segment.bytes=1048576"});
  std::string error;
  ASSERT_TRUE(broker.Start(&error)) << error;
  const std::string topic = "damaged";
  ASSERT_EQ(CreateTopic(broker.bootstrap(), topic, 1), "");

  // 10 produce rounds of 25 records of ~10 KB: ~2.5 MB, over several 1 MiB segments.
  std::vector<Record> records = MakeRecords(topic, 250, 10000);
  {
    Producer producer(broker.bootstrap(), &records);
    for (size_t from = 0; from < records.size(); from += 25) {
      ASSERT_EQ(producer.SendAndWait(topic, from, from + 25), "");
    }
  }
  for (size_t i = 0; i < records.size(); i++) {
    ASSERT_EQ(records[i].err, RD_KAFKA_RESP_ERR_NO_ERROR) << records[i].key;
    ASSERT_EQ(records[i].offset, static_cast<int64_t>(i)) << records[i].key;
  }
  // A clean shutdown must not let the broker skip checking the damaged tail on start.
  if (stop_by == StopBy::kSigterm) {
    ASSERT_EQ(broker.Stop(), 0) << broker.Output();
  } else {
    broker.Kill();
  }

  // The active segment: the .log with the greatest base offset.
  const std::filesystem::path dir = std::filesystem::path(broker.data_dir()) / (topic + "-0");
  std::vector<std::filesystem::path> logs;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".log") logs.push_back(e.path());
  }
  ASSERT_GE(logs.size(), 2u) << "expected several segments in " << dir;
  std::sort(logs.begin(), logs.end());
  const std::filesystem::path active = logs.back();
  const std::string bytes = ReadFile(active);
  std::vector<OnDiskBatch> batches = ScanBatches(bytes);
  ASSERT_FALSE(batches.empty()) << active;
  const OnDiskBatch last = batches.back();
  ASSERT_EQ(last.position + last.size, bytes.size()) << "the .log does not end with whole batches";
  ASSERT_EQ(last.last_offset, static_cast<int64_t>(records.size()) - 1);
  ASSERT_GT(last.base_offset, 0);

  size_t expect_end = records.size();
  switch (damage) {
    case Damage::kTruncateLastBatch:
      std::filesystem::resize_file(active, last.position + last.size / 2);
      expect_end = static_cast<size_t>(last.base_offset);
      break;
    case Damage::kFlipByteInLastBatch: {
      std::fstream f(active, std::ios::in | std::ios::out | std::ios::binary);
      const uint64_t at = last.position + last.size / 2;  // in the records, CRC-covered
      f.seekp(static_cast<std::streamoff>(at));
      f.put(static_cast<char>(bytes[at] ^ 0x5a));
      ASSERT_TRUE(f.good());
      expect_end = static_cast<size_t>(last.base_offset);
      break;
    }
    case Damage::kGarbageAfter:
    case Damage::kShortGarbageAfter:
    case Damage::kZerosAfter: {
      std::string tail;
      if (damage == Damage::kGarbageAfter) {
        std::mt19937 rng(7);
        for (int i = 0; i < 3000; i++) tail += static_cast<char>(rng() & 0xff);
      } else if (damage == Damage::kShortGarbageAfter) {
        tail = std::string(30, '\xff');
      } else {
        tail = std::string(8192, '\0');
      }
      std::ofstream f(active, std::ios::binary | std::ios::app);
      f.write(tail.data(), static_cast<std::streamsize>(tail.size()));
      ASSERT_TRUE(f.good());
      break;
    }
  }

  ASSERT_TRUE(broker.Restart(&error)) << error;
  std::vector<Record> want(records.begin(), records.begin() + expect_end);
  ExpectExactly(broker.bootstrap(), topic, want);
  if (HasFatalFailure()) return;

  // New records continue at the next offset.
  std::vector<Record> more = MakeRecords(topic + "-more", 30, 500);
  {
    Producer producer(broker.bootstrap(), &more);
    ASSERT_EQ(producer.SendAndWait(topic, 0, more.size()), "");
  }
  for (size_t i = 0; i < more.size(); i++) {
    EXPECT_EQ(more[i].err, RD_KAFKA_RESP_ERR_NO_ERROR) << more[i].key;
    EXPECT_EQ(more[i].offset, static_cast<int64_t>(expect_end + i)) << more[i].key;
  }
  want.insert(want.end(), more.begin(), more.end());
  ExpectExactly(broker.bootstrap(), topic, want);
  if (HasFatalFailure()) return;

  // And a clean restart keeps it all.
  ASSERT_EQ(broker.Stop(), 0) << broker.Output();
  ASSERT_TRUE(broker.Restart(&error)) << error;
  ExpectExactly(broker.bootstrap(), topic, want);
  EXPECT_EQ(broker.Stop(), 0) << broker.Output();
}

INSTANTIATE_TEST_SUITE_P(
    Damages, CorruptionTest,
    ::testing::Combine(::testing::Values(Damage::kTruncateLastBatch, Damage::kFlipByteInLastBatch,
                                         Damage::kGarbageAfter, Damage::kShortGarbageAfter,
                                         Damage::kZerosAfter),
                       ::testing::Values(StopBy::kSigterm, StopBy::kSigkill)),
    [](const ::testing::TestParamInfo<std::tuple<Damage, StopBy>>& info) {
      std::ostringstream s;
      PrintTo(std::get<0>(info.param), &s);
      s << (std::get<1>(info.param) == StopBy::kSigterm ? "AfterSigterm" : "AfterSigkill");
      return s.str();
    });

// ---- Disk full ----

// ApiVersions v0 over a plain socket; returns its error code, or -1 on any failure.
int ApiVersionsErrorCode(const std::string& host, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  int result = -1;
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) == 1 &&
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    // size | api_key 18 | api_version 0 | correlation_id 4242 | client_id "t"
    const unsigned char req[] = {0, 0, 0, 11, 0, 18, 0, 0, 0, 0, 0x10, 0x92, 0, 1, 't'};
    unsigned char resp[10];
    size_t got = 0;
    if (write(fd, req, sizeof(req)) == static_cast<ssize_t>(sizeof(req))) {
      while (got < sizeof(resp)) {
        ssize_t n = read(fd, resp + got, sizeof(resp) - got);
        if (n <= 0) break;
        got += static_cast<size_t>(n);
      }
    }
    // size(4) | correlation_id(4) | error_code(2)
    if (got == sizeof(resp) && resp[4] == 0 && resp[5] == 0 && resp[6] == 0x10 && resp[7] == 0x92) {
      result = (resp[8] << 8) | resp[9];
    }
  }
  close(fd);
  return result;
}

// Whether the process is alive (not exited, not a zombie).
bool Alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), {});
  size_t paren = content.rfind(')');
  return paren != std::string::npos && paren + 2 < content.size() && content[paren + 2] != 'Z';
}

class DiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/runnel-diskfull.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    mount_dir_ = tmpl;
    if (mount("tmpfs", mount_dir_.c_str(), "tmpfs", 0, "size=4m") != 0) {
      const int err = errno;
      GTEST_SKIP() << "cannot mount a tmpfs on " << mount_dir_ << " (" << std::strerror(err)
                   << "); the disk-full test needs root";
    }
    mounted_ = true;
  }
  void TearDown() override {
    broker_.reset();  // SIGKILLs a broker still running
    if (mounted_ && umount2(mount_dir_.c_str(), MNT_DETACH) != 0) {
      ADD_FAILURE() << "umount " << mount_dir_ << ": " << std::strerror(errno);
    }
    if (!mount_dir_.empty()) rmdir(mount_dir_.c_str());
  }

  std::string mount_dir_;
  bool mounted_ = false;
  std::unique_ptr<BrokerProcess> broker_;
};

TEST_F(DiskFullTest, StorageErrorThenStillServing) {
  // The later log.dirs override wins over the harness's own.
  broker_ = std::make_unique<BrokerProcess>(
      BrokerProcess::DefaultBinary(),
      std::vector<std::string>{"log.dirs=" + mount_dir_, "log.fsync.before.ack=true"});
  std::string error;
  ASSERT_TRUE(broker_->Start(&error)) << error;
  const std::string topic = "full";
  ASSERT_EQ(CreateTopic(broker_->bootstrap(), topic, 1), "");

  // ~4 KB records, 25 a round, up to 12 MB in all: three times the file system.
  std::vector<Record> records = MakeRecords(topic, 3000, 4000);
  size_t sent = 0;
  rd_kafka_resp_err_t first_error = RD_KAFKA_RESP_ERR_NO_ERROR;
  {
    Producer producer(broker_->bootstrap(), &records);
    while (sent < records.size() && first_error == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ASSERT_EQ(producer.SendAndWait(topic, sent, sent + 25), "");
      for (size_t i = sent; i < sent + 25; i++) {
        if (records[i].err != RD_KAFKA_RESP_ERR_NO_ERROR && first_error == 0) {
          first_error = records[i].err;
        }
      }
      sent += 25;
    }
  }
  ASSERT_EQ(first_error, RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR)
      << "first failed delivery: " << rd_kafka_err2name(first_error) << " after " << sent
      << " records sent; broker output:\n"
      << broker_->Output();

  // Still running, and answering.
  ASSERT_TRUE(Alive(broker_->pid())) << "broker died; output:\n" << broker_->Output();
  EXPECT_EQ(ApiVersionsErrorCode(broker_->host(), broker_->port()), 0);
  {
    char err[512];
    rd_kafka_t* rk =
        rd_kafka_new(RD_KAFKA_PRODUCER, NewConf(broker_->bootstrap(), {}), err, sizeof(err));
    ASSERT_NE(rk, nullptr) << err;
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, nullptr, &md, 10000);
    EXPECT_EQ(e, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2name(e);
    bool found = false;
    for (int i = 0; md != nullptr && i < md->topic_cnt; i++) {
      if (topic == md->topics[i].topic) found = true;
    }
    EXPECT_TRUE(found) << "Metadata does not list " << topic;
    if (md != nullptr) rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
  }

  // Everything acknowledged is there, at its offset, intact; and at least some was.
  std::string read_error;
  std::vector<ReadRecord> got = ReadPartition(broker_->bootstrap(), topic, 0, &read_error);
  EXPECT_EQ(read_error, "");
  size_t acked = 0;
  for (size_t i = 0; i < sent; i++) {
    const Record& r = records[i];
    if (r.err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    acked++;
    ASSERT_GE(r.offset, 0);
    ASSERT_LT(r.offset, static_cast<int64_t>(got.size())) << r.key << " acknowledged but not read";
    EXPECT_EQ(got[r.offset].key, r.key) << "offset " << r.offset;
    EXPECT_EQ(got[r.offset].value, r.value) << "offset " << r.offset;
  }
  EXPECT_GT(acked, 100u) << "expected most of 4 MB to be acknowledged before the disk filled";
  for (size_t i = 0; i < got.size(); i++) EXPECT_EQ(got[i].offset, static_cast<int64_t>(i));
  ASSERT_TRUE(Alive(broker_->pid())) << "broker died; output:\n" << broker_->Output();
}

}  // namespace
}  // namespace runnel::integration
