#pragma once
// Session state (MQTT 3.1.1 section 4.1, 5.0 section 4.1): what outlives a network
// connection. Owned by one worker; touched only on that worker's thread.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/message.hpp"
#include "broker/ring.hpp"
#include "broker/subscription_index.hpp"
#include "mqtt/packet.hpp"

namespace iothub::broker {

class connection;
struct hub_space;

struct session_subscription {
    std::string filter;  // without "$share/group/"
    std::string group;   // empty unless shared
    subscription_options options;
};

enum class outgoing_state : std::uint8_t { queued = 0, awaiting_ack = 1, awaiting_comp = 2 };

struct outgoing_message {
    message_ptr msg;  // null once released (PUBREL sent: only the id matters)
    std::uint8_t qos = 0;
    bool retain = false;
    std::vector<std::uint32_t> subscription_ids;
    std::uint16_t packet_id = 0;
    outgoing_state state = outgoing_state::queued;
    bool dup = false;
};

// A will waiting for its delay (MQTT 5.0 section 3.1.3.2.2). Its message expiry interval
// starts when it is published (section 3.1.3.2.4), so the message is stamped then.
struct pending_will {
    std::shared_ptr<message> msg;
    std::optional<std::uint32_t> expiry_interval;
    std::uint64_t due_ms = 0;
};

class session {
public:
    session_id id = 0;
    hub_space* hub = nullptr;
    std::string client_id;
    mqtt::protocol_version version = mqtt::protocol_version::v311;
    std::uint32_t expiry_interval = 0;  // seconds; 0xFFFFFFFF never expires
    std::uint64_t disconnected_at_ms = 0;
    std::unordered_map<std::string, session_subscription> subscriptions;  // key: as subscribed
    ring<outgoing_message> inflight;  // sent (or being re-sent), awaiting the client
    ring<outgoing_message> queue;     // waiting for room in the in-flight window
    std::size_t held_bytes = 0;  // bytes of the messages in `queue` and `inflight`
    std::unordered_set<std::uint16_t> incoming_qos2;  // PUBREC sent, PUBREL awaited
    std::uint16_t last_packet_id = 0;
    connection* conn = nullptr;  // null while offline
    std::unique_ptr<pending_will> will;  // a delayed will waiting for its time (rare: out of line)

    // Next packet id not used by an in-flight message (never 0).
    std::uint16_t next_packet_id();
    bool persistent() const noexcept { return expiry_interval != 0; }
    bool stored = false;  // written to the store at least once

    // Room for one more message of `bytes` under the per-session limits: `max_messages`
    // counts the messages waiting beyond the in-flight window (as mosquitto's
    // max_queued_messages does), `max_bytes` everything held, in flight included.
    bool has_room(std::size_t bytes, std::size_t max_messages, std::size_t max_bytes) const noexcept {
        return queue.size() < max_messages && held_bytes + bytes <= max_bytes;
    }
    void hold(const outgoing_message& m) noexcept { held_bytes += m.msg ? message_size(*m.msg) : 0; }
    void release(const outgoing_message& m) noexcept {
        const std::size_t b = m.msg ? message_size(*m.msg) : 0;
        held_bytes -= b < held_bytes ? b : held_bytes;
    }
    // When an offline session ends (ms), or 0 for never.
    std::uint64_t expires_at_ms() const noexcept;
};

}  // namespace iothub::broker
