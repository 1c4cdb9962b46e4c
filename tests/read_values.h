// Test helper shared by the storage tests: reads a PartitionLog back through its public
// Read() (the FileRanges the broker would sendfile) and decodes every record.
#ifndef RUNNEL_TESTS_READ_VALUES_H_
#define RUNNEL_TESTS_READ_VALUES_H_

#include <unistd.h>

#include <map>
#include <string>
#include <string_view>

#include "gtest/gtest.h"
#include "protocol/record_batch.h"
#include "storage/partition_log.h"

namespace runnel::storage {

// The bytes of the batches a Read returned, as one string.
inline std::string ReadRanges(const ReadInfo& info) {
  std::string bytes;
  for (const FileRange& r : info.ranges) {
    std::string part(r.length, '\0');
    EXPECT_EQ(::pread(r.fd, part.data(), part.size(), static_cast<off_t>(r.position)),
              static_cast<ssize_t>(r.length));
    bytes += part;
  }
  return bytes;
}

// offset -> value of every record from `offset` on, each value cut at its first '.' (the
// tests pad values as "<value>.<padding>").
inline std::map<int64_t, std::string> ReadValues(PartitionLog& log, int64_t offset) {
  std::map<int64_t, std::string> out;
  while (offset < log.log_end_offset()) {
    auto info = log.Read(offset, 1 << 20, true);
    EXPECT_TRUE(info.ok()) << info.status();
    if (!info.ok() || info->ranges.empty()) break;
    std::string bytes = ReadRanges(*info);
    protocol::BatchIterator batches(bytes);
    std::string_view batch;
    protocol::BatchHeader header;
    while (batches.Next(&batch, &header)) {
      std::string scratch;
      auto records = protocol::ReadRecords(batch, &scratch);
      EXPECT_TRUE(records.ok()) << records.status();
      if (!records.ok()) return out;
      for (const protocol::Record& r : *records) {
        std::string_view value = r.value.value_or("");
        if (r.offset >= offset) out[r.offset] = std::string(value.substr(0, value.find('.')));
      }
      offset = header.last_offset() + 1;
    }
  }
  return out;
}

}  // namespace runnel::storage

#endif  // RUNNEL_TESTS_READ_VALUES_H_
