#include "cli/persistence.hpp"

#include "broker/session.hpp"
#include "broker/worker.hpp"
#include "mqtt/topic.hpp"
#include "store/store.hpp"

namespace iothub::cli {

namespace {

store::message_record to_record(const broker::outgoing_message& m) {
    store::message_record r;
    if (m.msg) {
        r.topic = m.msg->topic;
        r.payload = m.msg->payload;
        r.properties = m.msg->props_wire;
        r.expires_at_ms = m.msg->expires_at_ms;
        r.retain = m.retain;
    }
    r.qos = m.qos;
    r.packet_id = m.packet_id;
    r.state = static_cast<store::message_state>(m.state);
    r.dup = m.dup;
    return r;
}

broker::outgoing_message from_record(store::message_record&& r) {
    broker::outgoing_message m;
    m.qos = r.qos;
    m.retain = r.retain;
    m.packet_id = r.packet_id;
    m.state = static_cast<broker::outgoing_state>(r.state);
    m.dup = r.dup;
    if (m.state != broker::outgoing_state::awaiting_comp) {
        auto msg = std::make_shared<broker::message>();
        msg->topic = std::move(r.topic);
        msg->payload = std::move(r.payload);
        msg->props_wire = std::move(r.properties);
        msg->expires_at_ms = r.expires_at_ms;
        msg->qos = r.qos;
        msg->retain = r.retain;
        m.msg = std::move(msg);
    }
    return m;
}

}  // namespace

void store_persistence::retained_set(const std::string& hub, const broker::message_ptr& m) {
    store::retained_record r;
    r.hub = hub;
    r.topic = m->topic;
    r.payload = m->payload;
    r.qos = m->qos;
    r.properties = m->props_wire;
    r.expires_at_ms = m->expires_at_ms;
    db_.put_retained(std::move(r));
}

void store_persistence::retained_erase(const std::string& hub, const std::string& topic) {
    db_.erase_retained(hub, topic);
}

void store_persistence::session_save(const broker::session& s) {
    store::session_record r;
    r.hub = s.hub->name;
    r.client_id = s.client_id;
    r.protocol_version = static_cast<std::uint8_t>(s.version);
    r.expiry_interval = s.expiry_interval;
    r.disconnected_at_ms = s.disconnected_at_ms;
    for (const auto& [key, sub] : s.subscriptions) {
        store::subscription_record sr;
        sr.filter = key;
        sr.qos = sub.options.qos;
        sr.no_local = sub.options.no_local;
        sr.retain_as_published = sub.options.retain_as_published;
        sr.retain_handling = sub.options.retain_handling;
        sr.identifier = sub.options.identifier;
        r.subscriptions.push_back(std::move(sr));
    }
    for (const auto& m : s.inflight) r.messages.push_back(to_record(m));
    for (const auto& m : s.queue) r.messages.push_back(to_record(m));
    r.incoming_qos2.assign(s.incoming_qos2.begin(), s.incoming_qos2.end());
    db_.put_session(std::move(r));
}

void store_persistence::session_erase(const std::string& hub, const std::string& client_id) {
    db_.erase_session(hub, client_id);
}

store_persistence::counts store_persistence::restore(broker::broker& b, bool with_messages) {
    counts n;
    const auto now = b.now();
    db_.load_retained([&](store::retained_record&& r) {
        if (r.expires_at_ms != 0 && r.expires_at_ms <= now) {
            db_.erase_retained(r.hub, r.topic);
            return;
        }
        auto m = std::make_shared<broker::message>();
        m->topic = std::move(r.topic);
        m->payload = std::move(r.payload);
        m->qos = r.qos;
        m->retain = true;
        m->props_wire = std::move(r.properties);
        m->expires_at_ms = r.expires_at_ms;
        b.restore_retained(r.hub, std::move(m));
        ++n.retained;
    });
    db_.load_sessions([&](store::session_record&& r) {
        if (r.expiry_interval != 0xFFFFFFFF &&
            r.disconnected_at_ms + std::uint64_t{r.expiry_interval} * 1000 <= now) {
            db_.erase_session(r.hub, r.client_id);  // expired while the server was down
            return;
        }
        auto& hub = b.hub(r.hub);
        auto& w = b.worker_at(b.owner_of(r.hub, r.client_id));
        auto& s = w.restore_session(hub, r.client_id);
        s.version = static_cast<mqtt::protocol_version>(r.protocol_version);
        s.expiry_interval = r.expiry_interval;
        s.disconnected_at_ms = r.disconnected_at_ms;
        for (auto& sr : r.subscriptions) {
            mqtt::shared_filter parts;
            if (!mqtt::parse_shared(sr.filter, parts)) continue;
            broker::session_subscription sub;
            sub.filter = std::string(parts.filter);
            sub.group = std::string(parts.group);
            sub.options.qos = sr.qos;
            sub.options.no_local = sr.no_local;
            sub.options.retain_as_published = sr.retain_as_published;
            sub.options.retain_handling = sr.retain_handling;
            sub.options.identifier = sr.identifier;
            w.add_subscription(s, sr.filter, std::move(sub));
        }
        s.stored = true;
        if (!with_messages) {
            ++n.sessions;
            return;
        }
        for (auto& mr : r.messages) {
            auto m = from_record(std::move(mr));
            s.hold(m);
            if (m.state == broker::outgoing_state::queued) {
                s.queue.push_back(std::move(m));
            } else {
                s.inflight.push_back(std::move(m));
            }
        }
        // Ids continue after the newest one in flight (they were allocated in order).
        if (!s.inflight.empty()) s.last_packet_id = s.inflight.back().packet_id;
        for (auto id : r.incoming_qos2) s.incoming_qos2.insert(id);
        ++n.sessions;
    });
    return n;
}

}  // namespace iothub::cli
