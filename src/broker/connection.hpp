#pragma once
// One client's network connection, seen from the protocol: bytes in, bytes out, decisions
// taken from a clock value passed in. No I/O here: the transport (net/) moves the bytes.
// One handler per packet type, in handle_*.cpp.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "broker/gatekeeper.hpp"
#include "broker/input_buffer.hpp"
#include "broker/limits.hpp"
#include "broker/message.hpp"
#include "broker/output_queue.hpp"
#include "broker/session.hpp"
#include "mqtt/codec.hpp"
#include "mqtt/packet.hpp"

namespace iothub::broker {

class worker;
struct hub_space;

// What a connection needs from its socket; implemented by net/.
class transport {
public:
    virtual ~transport() = default;
    // The output buffer has bytes to send; the transport writes them soon, batching.
    virtual void wake_write() = 0;
    // Write what is buffered, then close the socket.
    virtual void close() = 0;
    // Move the socket and the unread input to another worker (only before CONNECT is handled).
    virtual void migrate(unsigned worker) = 0;
    virtual std::string peer() const = 0;
    // TLS: whether the transport is TLS, and the client's certificate chain (see link_info).
    virtual bool tls() const { return false; }
    virtual std::vector<std::string> peer_certificates() const { return {}; }
    // Reads and handles, now, whatever the socket already holds (used before a take-over,
    // so a DISCONNECT sent just before the new CONNECT is seen first).
    virtual void read_pending() = 0;
};

class connection {
public:
    connection(worker& w, transport& t);
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    // Input: bytes as they arrive, in any split. The span is only read during the call.
    void on_data(std::span<const std::uint8_t> data);
    // Bytes received but not yet handled (what a migration carries along).
    std::vector<std::uint8_t> take_input();
    // The socket closed (EOF or error) or the transport gave up on it.
    void on_transport_closed();

    // Output: what waits to be written. The transport swaps it out.
    output_queue& output() noexcept { return out_; }

    // Periodic check (keep alive); `now` in ms.
    void tick(std::uint64_t now);

    // Server-initiated end: v5 gets DISCONNECT with `rc`, then the socket closes.
    // `publish_will` is false only for a normal end of the session by the client.
    void close_with(mqtt::reason_code rc, const char* reason_text, bool publish_will = true);

    // Handles whatever input the socket already holds.
    void read_pending() { transport_.read_pending(); }

    // A message admitted to this connection's session (counted in its held bytes): sent now
    // if the in-flight window has room and nothing waits before it, queued otherwise.
    void deliver(outgoing_message&& m);
    // A QoS 0 message with nothing queued before it: written now, unless the output buffer
    // already holds max_queued_bytes (a client that does not read). False when dropped.
    // `m`'s message is `msg` (m.msg may be empty).
    bool send_qos0_now(const message_ptr& msg, const outgoing_message& m);
    // Sends from the session's queue while the in-flight window has room.
    void pump();

    bool connected() const noexcept { return state_ == state::connected; }
    bool closing() const noexcept { return state_ == state::closing || state_ == state::closed; }
    mqtt::protocol_version version() const noexcept { return version_; }
    // The session's client id (a copy); empty before CONNECT and after the session's end.
    std::string client_id() const { return std::string(linked_client_id()); }
    const std::shared_ptr<const limits>& limits_snapshot() const noexcept { return limits_; }
    // Who the client authenticated as; null on the open development hub.
    const identity_ptr& identity() const noexcept { return identity_; }
    // New rules for a live connection: later packets are checked against them, and
    // subscriptions they no longer allow are removed.
    void set_identity(identity_ptr id);
    std::string peer() const { return transport_.peer(); }

private:
    enum class state : std::uint8_t { awaiting_connect, connected, closing, closed };

    std::size_t process_input(std::span<const std::uint8_t> buf);  // returns bytes used
    bool handle(mqtt::packet& p);  // false: stop processing input
    bool handle_connect(mqtt::connect& c);
    void handle_publish(mqtt::publish& p);
    void handle_ack(const mqtt::ack& a);
    void handle_subscribe(const mqtt::subscribe& s);
    void handle_unsubscribe(const mqtt::unsubscribe& u);
    void handle_disconnect(const mqtt::disconnect& d);
    void handle_auth(const mqtt::auth& a);

    void send(const mqtt::packet& p);
    // Encodes the PUBLISH into the output buffer. False when it is not sent: expired, or too
    // large for the client (MQTT 5.0 section 3.1.2.25: then it counts as delivered).
    bool send_publish(const outgoing_message& m) { return send_publish(m.msg, m); }
    bool send_publish(const message_ptr& msg, const outgoing_message& m);
    void send_inflight(outgoing_message&& m);
    // Protocol violation: v5 DISCONNECT with rc (+ reason string if allowed), 3.x silent close.
    // `who`: the client id for the log while CONNECT is handled (later: the session's).
    void fail(mqtt::reason_code rc, const char* text, std::string_view who = {});
    void refuse_connect(mqtt::reason_code rc, const char* text, std::string_view who = {});
    std::string_view linked_client_id() const noexcept {
        return session_ != nullptr ? session_->client_id : std::string_view{};
    }
    void end_session_link(bool publish_will, const char* reason);
    // Whether the identity's rules let this message be published; `why` says what refused.
    bool permitted(std::string_view topic, std::uint8_t qos, bool retain, refusal& why) const;
    void report_refusal(refusal why, std::string_view topic);
    std::uint16_t window() const noexcept;
    void log_event(int level, const std::string& text) const;

    friend class worker;  // keeps worker_slot_

    // Fields ordered by size, so an idle connection carries no padding.
    worker& worker_;
    transport& transport_;
    std::shared_ptr<const limits> limits_;
    output_queue out_;
    input_buffer in_;             // an incomplete packet waiting for the rest
    session* session_ = nullptr;  // its client id is the connection's
    identity_ptr identity_;
    // Awaiting CONNECT: when the socket was accepted; connected: when bytes last arrived.
    std::uint64_t last_rx_ms_ = 0;
    std::unique_ptr<mqtt::will_message> will_;  // most clients have none: kept out of line
    // Index: alias; empty string = not set. Made on the first alias the client sets.
    std::unique_ptr<std::vector<std::string>> topic_aliases_;
    std::uint32_t client_max_packet_ = 0;       // 0: no limit beyond the protocol's
    std::uint32_t worker_slot_ = 0;             // position in the worker's connection list
    std::uint16_t keep_alive_ = 0;
    std::uint16_t client_receive_max_ = 65535;  // v5 receive maximum of the client
    state state_ = state::awaiting_connect;
    mqtt::protocol_version version_ = mqtt::protocol_version::v311;
    bool counted_ = false;
    bool problem_information_ = true;  // v5 request problem information
};

}  // namespace iothub::broker
