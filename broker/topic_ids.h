// Conversions between storage's topic ids (16 raw bytes) and the wire's Uuid.
#ifndef RUNNEL_BROKER_TOPIC_IDS_H_
#define RUNNEL_BROKER_TOPIC_IDS_H_

#include <array>
#include <cstdint>

#include "protocol/wire.h"

namespace runnel::broker {

inline protocol::Uuid ToUuid(const std::array<uint8_t, 16>& id) { return protocol::Uuid{id}; }
inline std::array<uint8_t, 16> FromUuid(const protocol::Uuid& id) { return id.bytes; }

}  // namespace runnel::broker

#endif  // RUNNEL_BROKER_TOPIC_IDS_H_
