// ExpectLog: reads every partition of a topic from offset 0 and checks it, record by
// record, against what was produced, and that the watermarks are [0, count).
#ifndef RUNNEL_INTEGRATION_EXPECT_LOG_H_
#define RUNNEL_INTEGRATION_EXPECT_LOG_H_

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "kafka_client.h"

namespace runnel::integration {

inline void ExpectLog(const std::string& bootstrap, const std::string& topic,
                      const std::vector<Message>& messages, const std::vector<int64_t>& counts,
                      std::chrono::seconds timeout = std::chrono::seconds(90)) {
  std::string error;
  std::vector<std::vector<Message>> got =
      ConsumeFromBeginning(bootstrap, topic, counts, timeout, &error);
  ASSERT_EQ(error, "");
  for (size_t p = 0; p < counts.size(); p++) {
    SCOPED_TRACE("partition " + std::to_string(p));
    EXPECT_EQ(CompareLog(ForPartition(messages, static_cast<int>(p)), got[p]), "");
    Watermarks w = QueryWatermarks(bootstrap, topic, static_cast<int>(p));
    EXPECT_EQ(w.err, RD_KAFKA_RESP_ERR_NO_ERROR);
    EXPECT_EQ(w.low, 0);
    EXPECT_EQ(w.high, counts[p]);
  }
}

}  // namespace runnel::integration

#endif  // RUNNEL_INTEGRATION_EXPECT_LOG_H_
