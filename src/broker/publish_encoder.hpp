#pragma once
// PUBLISH bytes for one subscriber, written straight from the shared message: the topic and
// payload are copied once, into the connection's output buffer.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "broker/message.hpp"
#include "broker/output_queue.hpp"
#include "mqtt/packet.hpp"

namespace iothub::broker {

// The v5 properties a broker forwards unchanged, encoded without their length prefix.
std::string forwarded_properties(const mqtt::properties& p);

// Size on the wire of the PUBLISH encode_publish() would write.
std::size_t publish_size(mqtt::protocol_version v, const message& m, std::uint8_t qos,
                         const std::vector<std::uint32_t>& subscription_ids,
                         std::uint32_t expiry_left);

// Appends a PUBLISH packet; a large payload is queued by reference, not copied.
// `expiry_left` (seconds, 0 = none) and `subscription_ids` are added to the message's
// forwarded properties on v5; nothing of them on 3.x.
void encode_publish(output_queue& out, mqtt::protocol_version v, const message_ptr& msg,
                    std::uint8_t qos, bool retain, bool dup, std::uint16_t packet_id,
                    const std::vector<std::uint32_t>& subscription_ids,
                    std::uint32_t expiry_left);

}  // namespace iothub::broker
