#include "broker/connection.hpp"

#include <algorithm>
#include <cstring>

#include "broker/publish_encoder.hpp"
#include "broker/worker.hpp"

namespace iothub::broker {

namespace {
constexpr std::uint64_t connect_timeout_ms = 10000;  // time allowed between accept and CONNECT
}

connection::connection(worker& w, transport& t)
    : worker_(w), transport_(t), limits_(w.owner().config()) {
    worker_.refresh_clock();
    last_rx_ms_ = worker_.now();  // the connect timeout runs from here
    worker_.attach(this);
}

connection::~connection() {
    if (state_ != state::closed) {
        state_ = state::closed;
        end_session_link(true, "connection closed");
    }
    worker_.detach(this);
}

void connection::on_data(std::span<const std::uint8_t> data) {
    if (data.empty()) return;
    worker_.refresh_clock();
    // Before CONNECT the field keeps the time of the accept (handle_connect sets it).
    if (state_ != state::awaiting_connect) last_rx_ms_ = worker_.now();
    if (in_.empty()) {
        // Whole packets are decoded straight from the transport's buffer; only an incomplete
        // tail is kept, so an idle connection holds no input buffer at all.
        const std::size_t used = process_input(data);
        if (used < data.size() && !closing()) in_.append(data.subspan(used));
    } else {
        in_.append(data);
        const std::size_t used = process_input(in_.bytes());
        if (closing())
            in_.clear();
        else
            in_.consume(used);
    }
    worker_.flush();
}

std::vector<std::uint8_t> connection::take_input() {
    return in_.take();
}

std::size_t connection::process_input(std::span<const std::uint8_t> buf) {
    std::size_t pos = 0;
    while (state_ == state::awaiting_connect || state_ == state::connected) {
        const auto avail = buf.subspan(pos);
        mqtt::frame f;
        mqtt::decode_error err;
        const auto st = mqtt::read_frame(avail, limits_->max_packet_size, f, err);
        if (st == mqtt::decode_status::need_more) break;
        if (st == mqtt::decode_status::error) {
            fail(err.code, err.message);
            break;
        }
        if (avail.size() < f.total_size()) break;
        if (state_ == state::awaiting_connect && f.type != mqtt::packet_type::connect) {
            fail(mqtt::reason_code::protocol_error, "first packet is not CONNECT");
            break;
        }
        if (state_ == state::connected && f.type == mqtt::packet_type::connect) {
            fail(mqtt::reason_code::protocol_error, "second CONNECT");
            break;
        }
        const auto body = avail.subspan(f.header_size, f.remaining_length);
        if (f.type == mqtt::packet_type::publish && state_ == state::connected) {
            // The common case, decoded into the worker's reusable PUBLISH.
            auto& pub = worker_.publish_scratch(version_);
            if (mqtt::decode_publish(f, body, version_, pub, err) != mqtt::decode_status::ok) {
                fail(err.code, err.message);
                break;
            }
            handle_publish(pub);
            pos += f.total_size();
            continue;
        }
        mqtt::packet p;
        if (mqtt::decode(f, body, version_, p, err) != mqtt::decode_status::ok) {
            if (f.type == mqtt::packet_type::connect) {
                if (auto v = mqtt::connect_version(body)) version_ = *v;
                refuse_connect(err.code, err.message);
            } else {
                fail(err.code, err.message);
            }
            break;
        }
        if (!handle(p)) {
            // Migrating: the CONNECT stays unread, for the worker that owns its session.
            if (!closing()) return pos;
            pos += f.total_size();
            break;
        }
        pos += f.total_size();
    }
    return pos;
}

bool connection::handle(mqtt::packet& p) {
    switch (mqtt::type_of(p)) {
    case mqtt::packet_type::connect:
        return handle_connect(std::get<mqtt::connect>(p));
    case mqtt::packet_type::publish:
        handle_publish(std::get<mqtt::publish>(p));
        return true;
    case mqtt::packet_type::puback:
    case mqtt::packet_type::pubrec:
    case mqtt::packet_type::pubrel:
    case mqtt::packet_type::pubcomp:
        handle_ack(std::get<mqtt::ack>(p));
        return true;
    case mqtt::packet_type::subscribe:
        handle_subscribe(std::get<mqtt::subscribe>(p));
        return true;
    case mqtt::packet_type::unsubscribe:
        handle_unsubscribe(std::get<mqtt::unsubscribe>(p));
        return true;
    case mqtt::packet_type::pingreq:
        send(mqtt::pingresp{});
        return true;
    case mqtt::packet_type::disconnect:
        handle_disconnect(std::get<mqtt::disconnect>(p));
        return false;
    case mqtt::packet_type::auth:
        handle_auth(std::get<mqtt::auth>(p));
        return true;
    default:
        // CONNACK, SUBACK, UNSUBACK, PINGRESP are sent by servers only.
        fail(mqtt::reason_code::protocol_error, "packet type not allowed from a client");
        return false;
    }
}

void connection::send(const mqtt::packet& p) {
    const bool was_empty = out_.empty();
    mqtt::encode(p, version_, out_.bytes());
    if (was_empty) transport_.wake_write();
}

bool connection::send_publish(const message_ptr& msg, const outgoing_message& m) {
    std::uint32_t expiry_left = 0;
    if (msg->expires_at_ms != 0) {
        const auto now = worker_.now();
        if (msg->expired(now)) {
            worker_.owner().drops().expired.fetch_add(1, std::memory_order_relaxed);
            return false;
        }
        expiry_left = static_cast<std::uint32_t>((msg->expires_at_ms - now + 999) / 1000);
    }
    if (client_max_packet_ != 0 &&
        publish_size(version_, *msg, m.qos, m.subscription_ids, expiry_left) > client_max_packet_) {
        // MQTT 5.0 section 3.1.2.25: discard, and behave as if sending completed.
        worker_.owner().drops().too_large.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    const bool was_empty = out_.empty();
    encode_publish(out_, version_, msg, m.qos, m.retain, m.dup, m.packet_id, m.subscription_ids,
                   expiry_left);
    if (was_empty) transport_.wake_write();
    return true;
}

std::uint16_t connection::window() const noexcept {
    if (version_ == mqtt::protocol_version::v5) return client_receive_max_;
    return limits_->max_inflight;
}

bool connection::send_qos0_now(const message_ptr& msg, const outgoing_message& m) {
    if (out_.size() >= limits_->max_queued_bytes) {
        // A subscriber that does not read: QoS 0 is dropped rather than buffered without bound.
        worker_.owner().drops().qos0_dropped.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    return send_publish(msg, m);
}

void connection::deliver(outgoing_message&& m) {
    auto& s = *session_;
    if (s.queue.empty() && m.qos > 0 && s.inflight.size() < window()) {
        send_inflight(std::move(m));
        return;
    }
    s.queue.push_back(std::move(m));  // admitted by the worker: counted in held_bytes
}

void connection::send_inflight(outgoing_message&& m) {
    auto& s = *session_;
    m.packet_id = s.next_packet_id();
    m.state = outgoing_state::awaiting_ack;
    m.dup = false;
    if (!send_publish(m)) {
        s.release(m);
        return;
    }
    s.inflight.push_back(std::move(m));
}

void connection::pump() {
    if (session_ == nullptr || !connected()) return;
    auto& s = *session_;
    while (!s.queue.empty()) {
        auto& front = s.queue.front();
        if (front.qos > 0 && s.inflight.size() >= window()) break;
        outgoing_message m = std::move(front);
        s.queue.pop_front();
        if (m.qos == 0) {
            s.release(m);
            send_qos0_now(m.msg, m);
            continue;
        }
        send_inflight(std::move(m));
    }
}

void connection::tick(std::uint64_t now) {
    if (state_ == state::awaiting_connect) {
        if (now >= last_rx_ms_ + connect_timeout_ms) {
            state_ = state::closing;
            log_event(1, "no CONNECT within " + std::to_string(connect_timeout_ms / 1000) +
                             " s from " + transport_.peer());
            transport_.close();
        }
        return;
    }
    if (state_ != state::connected || keep_alive_ == 0) return;
    // MQTT 3.1.1 section 3.1.2.10 / 5.0 section 3.1.2.10: one and a half times keep alive.
    if (now >= last_rx_ms_ + static_cast<std::uint64_t>(keep_alive_) * 1500)
        close_with(mqtt::reason_code::keep_alive_timeout, "keep alive timeout");
}

void connection::close_with(mqtt::reason_code rc, const char* reason_text, bool publish_will) {
    if (state_ == state::closing || state_ == state::closed) return;
    if (version_ == mqtt::protocol_version::v5 && state_ == state::connected) {
        mqtt::disconnect d;
        d.reason = rc;
        if (problem_information_ && reason_text != nullptr && *reason_text != '\0')
            d.props.reason_string = reason_text;
        send(d);
    }
    state_ = state::closing;
    transport_.close();
    end_session_link(publish_will, reason_text);
}

void connection::fail(mqtt::reason_code rc, const char* text, std::string_view who) {
    worker_.owner().drops().protocol_errors.fetch_add(1, std::memory_order_relaxed);
    if (who.empty()) who = linked_client_id();
    log_event(1, std::string("closing connection from ") + transport_.peer() +
                     (who.empty() ? "" : " (client '" + std::string(who) + "')") + ": " + text +
                     " (" + mqtt::to_string(rc) + ")");
    if (identity_ && state_ == state::connected) {
        if (auto* g = worker_.owner().get_gatekeeper()) {
            if (rc == mqtt::reason_code::packet_too_large)
                g->refused(worker_, *identity_, refusal::payload_too_large, {});
            else
                g->protocol_error(worker_, *identity_, text);
        }
    }
    close_with(rc, text, true);
}

void connection::on_transport_closed() {
    if (state_ == state::closed) return;
    const bool was_open = state_ != state::closing;
    state_ = state::closed;
    if (was_open) end_session_link(true, "connection lost");
}

void connection::set_identity(identity_ptr id) {
    identity_ = std::move(id);
    if (session_ == nullptr || !identity_ || identity_->subscribe.unrestricted()) return;
    std::vector<std::string> refused;
    for (const auto& [key, sub] : session_->subscriptions) {
        if (!identity_->subscribe.allows_filter(sub.filter) || sub.options.qos > identity_->max_subscribe_qos)
            refused.push_back(key);
    }
    for (const auto& key : refused) worker_.remove_subscription(*session_, key);
    if (!refused.empty()) worker_.save_session(*session_);
}

bool connection::permitted(std::string_view topic, std::uint8_t qos, bool retain,
                           refusal& why) const {
    if (!identity_) return true;
    const auto& id = *identity_;
    if ((!id.publish.unrestricted() && !id.publish.allows(topic)) || !id.reserved.allows(topic)) {
        why = refusal::publish_topic;
        return false;
    }
    if (retain && !id.retain_allowed) {
        why = refusal::retain_forbidden;
        return false;
    }
    if (qos > id.max_publish_qos) {
        why = refusal::publish_qos;
        return false;
    }
    return true;
}

void connection::report_refusal(refusal why, std::string_view topic) {
    // No log line per packet: the hub event (rate-limited per device) records it.
    if (!identity_) return;
    if (auto* g = worker_.owner().get_gatekeeper()) g->refused(worker_, *identity_, why, topic);
}

void connection::end_session_link(bool publish_will, const char* reason) {
    if (identity_ && session_ != nullptr) {
        if (auto* g = worker_.owner().get_gatekeeper())
            g->disconnected(worker_, *identity_, session_->client_id,
                            reason != nullptr ? reason : "");
    }
    if (counted_) {
        worker_.owner().remove_connection();
        counted_ = false;
    }
    if (session_ == nullptr) return;
    auto& s = *session_;
    session_ = nullptr;
    s.conn = nullptr;
    const auto now = worker_.now();
    s.disconnected_at_ms = now;
    // Messages sent at QoS 0 or never sent stay in the queue; QoS 0 ones are dropped.
    s.queue.erase_if([&s](const outgoing_message& m) {
        if (m.qos != 0) return false;
        s.release(m);
        return true;
    });
    refusal why{};
    if (publish_will && will_ && !permitted(will_->topic, will_->qos, will_->retain, why)) {
        // The rules changed since CONNECT: the will is held to them too.
        report_refusal(why == refusal::publish_topic ? refusal::will_topic : why, will_->topic);
        will_.reset();
    }
    if (publish_will && will_) {
        auto m = std::make_shared<message>();
        m->topic = will_->topic;
        m->payload = will_->payload;
        m->qos = will_->qos;
        m->retain = will_->retain;
        m->origin = s.id;
        m->props_wire = forwarded_properties(will_->props);
        pending_will w{std::move(m), will_->props.message_expiry_interval, 0};
        // v5 only (3.x wills carry no properties).
        const std::uint32_t delay = will_->props.will_delay_interval.value_or(0);
        if (delay > 0 && s.persistent()) {
            w.due_ms = now + std::uint64_t{delay} * 1000;
            if (auto end = s.expires_at_ms(); end != 0) w.due_ms = std::min(w.due_ms, end);
            worker_.schedule_will(s, std::move(w));
        } else {
            worker_.schedule_will(s, std::move(w));
            worker_.release_will(s);
        }
    }
    will_.reset();
    if (!s.persistent())
        worker_.destroy_session(s);
    else
        worker_.save_session(s);
}

void connection::log_event(int level, const std::string& text) const {
    if (worker_.owner().log) worker_.owner().log(level, text);
}

}  // namespace iothub::broker
