#pragma once
// A worker's share of the broker: the sessions and connections it owns, and the routing
// of messages published by its connections. Only its own thread calls it.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "broker/broker.hpp"
#include "broker/session.hpp"
#include "broker/session_table.hpp"
#include "mqtt/packet.hpp"

namespace iothub::broker {

class connection;

class worker {
public:
    worker(broker& b, unsigned index);
    ~worker();

    unsigned index() const noexcept { return index_; }
    // The clock, read once per batch of events (a read, a batch of deliveries, a tick).
    std::uint64_t now() const noexcept { return now_ms_; }
    void refresh_clock() { now_ms_ = broker_.now(); }
    broker& owner() noexcept { return broker_; }

    // Sessions owned by this worker.
    session* find_session(std::string_view hub, std::string_view client_id);
    session& create_session(hub_space& hub, std::string_view client_id);
    // Removes the session and its subscriptions; erases it from the store when persisted.
    void destroy_session(session& s);

    // Forgets the offline sessions of a hub (every one, or only `client_id`'s): its devices
    // or the hub itself were deleted. Their delayed wills are dropped too.
    void drop_sessions(std::string_view hub, std::string_view client_id = {});

    // Subscriptions: the index entry and the session's own record.
    void add_subscription(session& s, const std::string& key, session_subscription sub);
    bool remove_subscription(session& s, const std::string& key);

    // Connections on this worker (for keep-alive and shutdown).
    void attach(connection* c);
    void detach(connection* c) noexcept;
    // A copy: the caller may close connections while walking it.
    std::vector<connection*> connections() const { return connections_; }

    // Routing: match once, deliver to local sessions, batch the rest per worker.
    void publish(hub_space& hub, const message_ptr& m);
    // Deliveries that other workers sent here.
    void on_deliveries(std::vector<delivery>& batch);
    // Posts the batches collected for other workers. Call at the end of each read.
    void flush();

    // Gives a message to a session of this worker: sent if online (window allowing), queued
    // otherwise, subject to the queue limits.
    void deliver_to(session& s, outgoing_message&& m) {
        const message_ptr msg = std::move(m.msg);
        deliver_to(s, msg, std::move(m));
    }
    // The same with the message apart: `m` carries QoS, retain and subscription ids, and the
    // message is copied into it only if the session keeps it (a QoS 0 message written at once
    // never takes a reference).
    void deliver_to(session& s, const message_ptr& msg, outgoing_message&& m);

    // Keep-alive, delayed wills, session and message expiry.
    void tick(std::uint64_t now);

    // Starts a delayed will (v5 will delay interval) for a session that went offline.
    void schedule_will(session& s, pending_will w);
    // Publishes the session's delayed will now, if it has one.
    void release_will(session& s);
    // Publishes a will message now.
    void publish_will(hub_space& hub, const message_ptr& m);

    // Server shutdown: closes every connection (v5: DISCONNECT 0x8B). Wills of connections closed by shutdown are published, as on any
    // server-initiated close (spec: the will is published when the connection closes
    // without a DISCONNECT from the client).
    void shutdown();
    // Saves every persistent session now.
    void save_sessions();
    // Saves one session if it is persistent (on going offline and on subscription changes).
    void save_session(session& s);

    // Restores a session loaded from the store at start-up.
    session& restore_session(hub_space& hub, std::string_view client_id);

    // Where this worker's connections decode each PUBLISH: one object per protocol family, so
    // a topic and payload buffer serve packet after packet, and 3.x packets never see the
    // properties of a v5 one. Used only between decoding a packet and handling it.
    mqtt::publish& publish_scratch(mqtt::protocol_version v) noexcept {
        return v == mqtt::protocol_version::v5 ? publish_v5_ : publish_v3_;
    }

    // A message to fill for a client's PUBLISH: the one the previous PUBLISH used when nothing
    // kept it (delivered at once, QoS 0), so its buffers serve again; otherwise a new one.
    // Every field is to be set by the caller. Hand it back with recycle_message() after
    // publishing.
    std::shared_ptr<message> fresh_message();
    void recycle_message(std::shared_ptr<message>&& m) noexcept;

private:
    void deliver_local(const message_ptr& msg, delivery&& d);
    void expire_sessions(std::uint64_t now);

    broker& broker_;
    unsigned index_;
    session_table sessions_;
    // Each connection knows its position here (connection::worker_slot_).
    std::vector<connection*> connections_;
    std::vector<std::vector<delivery>> outboxes_;
    struct match_entry {
        session_id sid;
        subscription_options options;
    };
    std::vector<match_entry> matches_;
    mqtt::publish publish_v3_;
    mqtt::publish publish_v5_;
    std::shared_ptr<message> spare_message_;
    std::uint64_t next_expiry_scan_ms_ = 0;
    std::uint64_t now_ms_ = 0;
};

// Worker index encoded in a session id's low bits.
inline unsigned worker_of(session_id id) noexcept {
    return static_cast<unsigned>(id & ((1u << session_table::worker_bits) - 1));
}

}  // namespace iothub::broker
