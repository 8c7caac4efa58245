// Name-based (version 5, SHA-1) UUIDs, RFC 4122 §4.3: the same namespace and name give the same
// UUID on every machine, so an event published again carries the event_id it had the first time.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace segmentor::messaging {

using UuidBytes = std::array<std::uint8_t, 16>;

// The namespace of the events this worker names (a fixed random UUID,
// 3d1f6c52-8c0e-4b6f-9a57-2f4e1c7d9b20).
inline constexpr UuidBytes kSegmentorEventNamespace = {
    0x3d, 0x1f, 0x6c, 0x52, 0x8c, 0x0e, 0x4b, 0x6f, 0x9a, 0x57, 0x2f, 0x4e, 0x1c, 0x7d, 0x9b, 0x20};

// The canonical lowercase form of a UUID's bytes: 8-4-4-4-12 hex digits.
std::string format_uuid(const UuidBytes& bytes);

// The version-5 UUID of `name` in `name_space`, canonical lowercase form. Thread-safe.
std::string uuid5(const UuidBytes& name_space, std::string_view name);

// The SHA-1 digest of `data` (FIPS 180-4). Only for uuid5: not for anything secret.
std::array<std::uint8_t, 20> sha1(std::string_view data);

}  // namespace segmentor::messaging
