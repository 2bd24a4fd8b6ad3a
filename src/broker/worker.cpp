#include "broker/worker.hpp"

#include <algorithm>
#include <atomic>

#include "broker/connection.hpp"

namespace iothub::broker {

worker::worker(broker& b, unsigned index)
    : broker_(b), index_(index), sessions_(index), now_ms_(b.now()) {}

worker::~worker() = default;

void worker::attach(connection* c) {
    c->worker_slot_ = static_cast<std::uint32_t>(connections_.size());
    connections_.push_back(c);
}

void worker::detach(connection* c) noexcept {
    // Swap with the last: order does not matter, and each connection knows its position.
    const std::uint32_t at = c->worker_slot_;
    connection* last = connections_.back();
    connections_[at] = last;
    last->worker_slot_ = at;
    connections_.pop_back();
    if (connections_.empty() && connections_.capacity() > 1024) connections_.shrink_to_fit();
}

session* worker::find_session(std::string_view hub, std::string_view client_id) {
    return sessions_.find(hub, client_id);
}

session& worker::create_session(hub_space& hub, std::string_view client_id) {
    return sessions_.create(hub, client_id);
}

session& worker::restore_session(hub_space& hub, std::string_view client_id) {
    if (auto* existing = find_session(hub.name, client_id)) return *existing;
    return create_session(hub, client_id);
}

void worker::destroy_session(session& s) {
    if (!s.subscriptions.empty()) {
        auto index = s.hub->subscriptions.write();
        for (const auto& [key, sub] : s.subscriptions)
            index->unsubscribe(sub.filter, sub.group, s.id);
    }
    if (s.stored && broker_.get_persistence() != nullptr)
        broker_.get_persistence()->session_erase(s.hub->name, std::string(s.client_id));
    sessions_.destroy(s);
}

void worker::drop_sessions(std::string_view hub, std::string_view client_id) {
    std::vector<session*> doomed;
    sessions_.for_each([&](session& s) {
        if (s.conn != nullptr || s.hub->name != hub) return;
        if (!client_id.empty() && s.client_id != client_id) return;
        doomed.push_back(&s);
    });
    for (auto* s : doomed) {
        s->will.reset();
        destroy_session(*s);
    }
}

void worker::add_subscription(session& s, const std::string& key, session_subscription sub) {
    s.hub->subscriptions.write()->subscribe(sub.filter, sub.group, s.id, sub.options);
    s.subscriptions.insert_or_assign(key, std::move(sub));
}

bool worker::remove_subscription(session& s, const std::string& key) {
    auto it = s.subscriptions.find(key);
    if (it == s.subscriptions.end()) return false;
    s.hub->subscriptions.write()->unsubscribe(it->second.filter, it->second.group, s.id);
    s.subscriptions.erase(it);
    return true;
}

void worker::publish(hub_space& hub, const message_ptr& m) {
    matches_.clear();
    {
        auto index = hub.subscriptions.read();
        index->match(m->topic, [this](session_id sid, const subscription_options& o) {
            matches_.push_back({sid, o});
        });
    }
    if (matches_.empty()) return;
    // One delivery per session: highest QoS of its matching subscriptions, every
    // subscription identifier (MQTT 5.0 section 3.3.4).
    if (matches_.size() > 1)
        std::sort(matches_.begin(), matches_.end(),
                  [](const match_entry& a, const match_entry& b) { return a.sid < b.sid; });
    if (outboxes_.size() != broker_.worker_count()) outboxes_.resize(broker_.worker_count());
    for (std::size_t i = 0; i < matches_.size();) {
        const session_id sid = matches_[i].sid;
        delivery d;
        d.target = sid;
        bool any = false;
        std::uint8_t qos = 0;
        bool retain_as_published = false;
        for (; i < matches_.size() && matches_[i].sid == sid; ++i) {
            const auto& o = matches_[i].options;
            if (o.no_local && m->origin == sid) continue;
            any = true;
            qos = std::max(qos, o.qos);
            retain_as_published = retain_as_published || o.retain_as_published;
            if (o.identifier != 0) d.subscription_ids.push_back(o.identifier);
        }
        if (!any) continue;
        d.qos = std::min(qos, m->qos);
        // A message delivered because of a live subscription has RETAIN 0 unless the
        // subscription asked for retain-as-published (3.1.1: always 0 here).
        d.retain = retain_as_published && m->retain;
        const unsigned target = worker_of(sid);
        if (target == index_) {
            deliver_local(m, std::move(d));
        } else {
            d.msg = m;
            outboxes_[target].push_back(std::move(d));
        }
    }
}

std::shared_ptr<message> worker::fresh_message() {
    if (spare_message_) return std::move(spare_message_);
    return std::make_shared<message>();
}

void worker::recycle_message(std::shared_ptr<message>&& m) noexcept {
    // Kept only when this worker holds the last reference. Another worker that held one
    // released it with an acquire-release decrement; the fence orders its last reads of the
    // message before this worker writes to it again.
    constexpr std::size_t keep_max = 16 * 1024;
    if (m.use_count() != 1 || m->payload.capacity() > keep_max || m->topic.capacity() > keep_max ||
        m->props_wire.capacity() > keep_max) {
        m.reset();
        return;
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    spare_message_ = std::move(m);
}

void worker::flush() {
    auto* disp = broker_.get_dispatcher();
    for (unsigned w = 0; w < outboxes_.size(); ++w) {
        if (outboxes_[w].empty()) continue;
        if (disp != nullptr) {
            std::vector<delivery> batch;
            batch.swap(outboxes_[w]);
            disp->post_deliveries(w, std::move(batch));
        } else {
            outboxes_[w].clear();
        }
    }
}

void worker::on_deliveries(std::vector<delivery>& batch) {
    refresh_clock();
    for (auto& d : batch) {
        const message_ptr msg = std::move(d.msg);
        deliver_local(msg, std::move(d));
    }
}

void worker::deliver_local(const message_ptr& msg, delivery&& d) {
    session* s = sessions_.find(d.target);
    if (s == nullptr) return;  // the session ended while the message travelled
    outgoing_message m;
    m.qos = d.qos;
    m.retain = d.retain;
    m.subscription_ids = std::move(d.subscription_ids);
    deliver_to(*s, msg, std::move(m));
}

void worker::deliver_to(session& s, const message_ptr& msg, outgoing_message&& m) {
    const auto now = now_ms_;
    auto& drops = broker_.drops();
    if (msg->expired(now)) {
        drops.expired.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    const bool online = s.conn != nullptr && s.conn->connected();
    if (m.qos == 0) {
        // Offline: QoS 0 is not kept (MQTT 3.1.1 section 3.1.2.4 allows either; iothub keeps
        // only what was promised at least once).
        if (!online) {
            drops.qos0_dropped.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        if (s.queue.empty()) {
            s.conn->send_qos0_now(msg, m);
            return;
        }
    }
    const auto lim = s.conn != nullptr ? s.conn->limits_snapshot() : broker_.config();
    if (!s.has_room(message_size(*msg), lim->max_queued_messages, lim->max_queued_bytes)) {
        // The newest message is refused: what is held keeps its order and its promise.
        (m.qos == 0 ? drops.qos0_dropped : drops.queue_full).fetch_add(1, std::memory_order_relaxed);
        if (m.qos > 0 && broker_.may_log_drop(now) && broker_.log)
            broker_.log(3, "queue of client '" + std::string(s.client_id) + "' is full (" +
                               std::to_string(s.queue.size() + s.inflight.size()) +
                               " messages): dropping new messages; " +
                               std::to_string(drops.queue_full.load()) + " dropped so far");
        return;
    }
    m.msg = msg;
    s.hold(m);
    if (online)
        s.conn->deliver(std::move(m));
    else
        s.queue.push_back(std::move(m));
}

void worker::schedule_will(session& s, pending_will w) {
    s.will = std::make_unique<pending_will>(std::move(w));
}

void worker::release_will(session& s) {
    if (!s.will) return;
    auto w = std::move(*s.will);
    s.will.reset();
    if (w.expiry_interval) w.msg->expires_at_ms = now_ms_ + std::uint64_t{*w.expiry_interval} * 1000;
    publish_will(*s.hub, std::move(w.msg));
}

void worker::publish_will(hub_space& hub, const message_ptr& m) {
    if (m->retain) broker_.set_retained(hub, m);
    publish(hub, m);
    flush();
}

void worker::tick(std::uint64_t now) {
    now_ms_ = now;
    // Copy: a tick may close connections, which detach themselves.
    const std::vector<connection*> conns = connections_;
    for (auto* c : conns) c->tick(now);
    // Delayed wills whose time came.
    sessions_.for_each([&](session& s) {
        if (s.will && s.will->due_ms <= now) release_will(s);
    });
    if (now >= next_expiry_scan_ms_) {
        next_expiry_scan_ms_ = now + 1000;
        expire_sessions(now);
        if (index_ == 0) broker_.purge_expired_retained(now);
    }
    flush();
}

void worker::expire_sessions(std::uint64_t now) {
    std::vector<session*> ended;
    sessions_.for_each([&](session& s) {
        if (s.conn != nullptr) return;
        auto at = s.expires_at_ms();
        if (at != 0 && now >= at) ended.push_back(&s);
        // Expired messages leave the offline queue.
        if (!s.queue.empty()) {
            s.queue.erase_if([&](const outgoing_message& m) {
                if (m.msg && m.msg->expired(now)) {
                    s.release(m);
                    broker_.drops().expired.fetch_add(1, std::memory_order_relaxed);
                    return true;
                }
                return false;
            });
        }
    });
    for (auto* s : ended) {
        // A will delayed past the session's end is published when the session ends.
        release_will(*s);
        destroy_session(*s);
    }
}

void worker::shutdown() {
    const std::vector<connection*> conns = connections_;
    for (auto* c : conns) c->close_with(mqtt::reason_code::server_shutting_down, "server shutting down");
    // Delayed wills are not kept across a restart: their clients are gone, so they go out now.
    sessions_.for_each([this](session& s) { release_will(s); });
    flush();
}

void worker::save_sessions() {
    sessions_.for_each([this](session& s) { save_session(s); });
}

void worker::save_session(session& s) {
    auto* p = broker_.get_persistence();
    if (p == nullptr || !s.persistent()) return;
    p->session_save(s);
    s.stored = true;
}

}  // namespace iothub::broker
