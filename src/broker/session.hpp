#pragma once
// Session state (MQTT 3.1.1 section 4.1, 5.0 section 4.1): what outlives a network
// connection. Owned by one worker; touched only on that worker's thread.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/message.hpp"
#include "broker/packet_id_set.hpp"
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

// The subscriptions of a session, by the filter as subscribed ("$share/g/f" included). Most
// devices never subscribe, so the map is made on the first subscription and given back when
// the last one goes: an idle session holds a null pointer.
class subscription_map {
    using map_type = std::unordered_map<std::string, session_subscription>;

public:
    using const_iterator = map_type::const_iterator;

    const_iterator begin() const noexcept { return map_ ? map_->cbegin() : none().cbegin(); }
    const_iterator end() const noexcept { return map_ ? map_->cend() : none().cend(); }
    std::size_t size() const noexcept { return map_ ? map_->size() : 0; }
    bool empty() const noexcept { return size() == 0; }
    const_iterator find(const std::string& key) const { return map_ ? map_->find(key) : end(); }
    std::size_t count(const std::string& key) const { return map_ ? map_->count(key) : 0; }

    void insert_or_assign(const std::string& key, session_subscription sub) {
        if (!map_) map_ = std::make_unique<map_type>();
        map_->insert_or_assign(key, std::move(sub));
    }
    // `it` is a valid position of this map (from find).
    void erase(const_iterator it) {
        map_->erase(it);
        if (map_->empty()) map_.reset();
    }

private:
    static const map_type& none() noexcept {
        static const map_type empty;
        return empty;
    }
    std::unique_ptr<map_type> map_;
};

// Made only by the worker that owns it (see session_table), with its client id stored after
// it in the same allocation.
class session {
public:
    session_id id = 0;
    hub_space* hub = nullptr;
    connection* conn = nullptr;  // null while offline
    std::string_view client_id;  // kept in the session's own allocation
    std::uint64_t disconnected_at_ms = 0;
    subscription_map subscriptions;   // key: as subscribed
    ring<outgoing_message> inflight;  // sent (or being re-sent), awaiting the client
    ring<outgoing_message> queue;     // waiting for room in the in-flight window
    std::size_t held_bytes = 0;       // bytes of the messages in `queue` and `inflight`
    packet_id_set incoming_qos2;      // PUBREC sent, PUBREL awaited
    std::unique_ptr<pending_will> will;  // a delayed will waiting for its time (rare: out of line)
    std::uint32_t expiry_interval = 0;   // seconds; 0xFFFFFFFF never expires
    std::uint16_t last_packet_id = 0;
    mqtt::protocol_version version = mqtt::protocol_version::v311;
    bool stored = false;  // written to the store at least once

    session() = default;
    session(const session&) = delete;
    session& operator=(const session&) = delete;

    // Next packet id not used by an in-flight message (never 0).
    std::uint16_t next_packet_id();
    bool persistent() const noexcept { return expiry_interval != 0; }

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
