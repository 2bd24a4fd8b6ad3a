// PUBLISH from a client and the acknowledgement flows (MQTT 3.1.1 sections 3.3-3.7 and 4.3,
// 5.0 sections 3.3-3.7 and 4.3).

#include <algorithm>

#include "broker/connection.hpp"
#include "broker/output_queue.hpp"
#include "broker/publish_encoder.hpp"
#include "broker/worker.hpp"
#include "mqtt/topic.hpp"

namespace iothub::broker {

namespace {

// Below output_queue's threshold a payload is copied into each subscriber's output, so the
// message is free again once delivered; from it on, outputs hold the message by reference.
constexpr std::size_t reused_payload_max = output_queue::share_threshold - 1;

mqtt::ack make_ack(mqtt::packet_type type, std::uint16_t id, mqtt::reason_code rc) {
    mqtt::ack a;
    a.type = type;
    a.packet_id = id;
    a.reason = rc;
    return a;
}

// Finds the in-flight message with this id (acks usually arrive in order: front first).
ring<outgoing_message>::iterator find_inflight(ring<outgoing_message>& q,
                                                     std::uint16_t id) {
    return std::find_if(q.begin(), q.end(),
                        [id](const outgoing_message& m) { return m.packet_id == id; });
}

}  // namespace

void connection::handle_publish(mqtt::publish& p) {
    const bool v5 = version_ == mqtt::protocol_version::v5;
    auto& s = *session_;

    if (v5 && p.props.topic_alias) {
        const auto alias = *p.props.topic_alias;
        if (alias == 0 || alias > limits_->topic_alias_maximum) {
            fail(mqtt::reason_code::topic_alias_invalid, "topic alias out of range");
            return;
        }
        if (!p.topic.empty()) {
            if (!topic_aliases_) topic_aliases_ = std::make_unique<std::vector<std::string>>();
            auto& aliases = *topic_aliases_;
            if (aliases.size() <= alias) aliases.resize(alias + 1u);
            aliases[alias] = p.topic;
        } else {
            if (!topic_aliases_ || alias >= topic_aliases_->size() ||
                (*topic_aliases_)[alias].empty()) {
                fail(mqtt::reason_code::protocol_error, "unknown topic alias");
                return;
            }
            p.topic = (*topic_aliases_)[alias];
        }
    }
    // Exactly once: a QoS 2 id not yet released is a re-transmission (4.3.3). Checked after
    // the alias, which a re-transmission on a new connection may set up.
    if (p.qos == 2 && s.incoming_qos2.count(p.packet_id) != 0) {
        send(make_ack(mqtt::packet_type::pubrec, p.packet_id, mqtt::reason_code::success));
        return;
    }

    if (!mqtt::valid_topic_name(p.topic, limits_->max_topic_length, limits_->max_topic_levels)) {
        fail(mqtt::reason_code::topic_name_invalid, "invalid topic name");
        return;
    }
    if (p.retain && !limits_->retain_available) {
        fail(mqtt::reason_code::retain_not_supported, "retain is not supported");
        return;
    }
    if (p.qos == 2 && v5 && s.incoming_qos2.size() >= limits_->receive_maximum) {
        fail(mqtt::reason_code::receive_maximum_exceeded, "receive maximum exceeded");
        return;
    }

    mqtt::reason_code result = mqtt::reason_code::success;
    refusal why{};
    if (!permitted(p.topic, p.qos, p.retain, why)) {
        // Dropped. v5 says why in the acknowledgement; 3.x has no code for it, so the flow
        // completes as usual and the hub event tells the operator.
        report_refusal(why, p.topic);
        // (PUBACK and PUBREC have no code for "retain / QoS not supported": 0x87 for all.)
        if (v5) result = mqtt::reason_code::not_authorized;
    } else if (v5 && p.props.payload_format_indicator.value_or(0) == 1 &&
               !mqtt::valid_utf8(p.payload)) {
        result = mqtt::reason_code::payload_format_invalid;
    } else {
        // Both `p` (the worker's reused PUBLISH) and `m` (a recycled message when the last
        // one was delivered at once) keep their buffers: a small payload is copied from one
        // to the other; a large one is taken, not copied twice.
        auto m = worker_.fresh_message();
        m->topic = p.topic;
        if (p.payload.size() <= reused_payload_max)
            m->payload = p.payload;
        else
            m->payload = std::move(p.payload);
        m->qos = p.qos;
        m->retain = p.retain;
        m->origin = s.id;
        m->expires_at_ms = 0;
        if (v5) {
            m->props_wire = forwarded_properties(p.props);
            if (p.props.message_expiry_interval)
                m->expires_at_ms =
                    worker_.now() + std::uint64_t{*p.props.message_expiry_interval} * 1000;
        } else {
            m->props_wire.clear();
        }
        // A retained message over the hub's limit is still delivered; the refusal to keep it
        // is counted and logged, not answered, since the message itself was accepted.
        if (m->retain && !worker_.owner().set_retained(*s.hub, m)) {
            const auto now = worker_.now();
            if (worker_.owner().may_log_drop(now))
                log_event(3, "retained message limit reached in hub '" + s.hub->name +
                                 "': retained message for '" + m->topic + "' not stored");
        }
        message_ptr shared = std::move(m);
        worker_.publish(*s.hub, shared);
        worker_.recycle_message(std::const_pointer_cast<message>(std::move(shared)));
    }

    if (p.qos == 1) {
        send(make_ack(mqtt::packet_type::puback, p.packet_id, result));
    } else if (p.qos == 2) {
        if (!mqtt::is_error(result)) s.incoming_qos2.insert(p.packet_id);
        send(make_ack(mqtt::packet_type::pubrec, p.packet_id, result));
    }
}

void connection::handle_ack(const mqtt::ack& a) {
    auto& s = *session_;
    switch (a.type) {
    case mqtt::packet_type::puback: {
        auto it = find_inflight(s.inflight, a.packet_id);
        if (it != s.inflight.end() && it->qos == 1) {
            s.release(*it);
            s.inflight.erase(it);
        }
        pump();
        break;
    }
    case mqtt::packet_type::pubrec: {
        auto it = find_inflight(s.inflight, a.packet_id);
        if (it == s.inflight.end() || it->qos != 2) {
            send(make_ack(mqtt::packet_type::pubrel, a.packet_id,
                          mqtt::reason_code::packet_identifier_not_found));
            break;
        }
        s.release(*it);
        if (mqtt::is_error(a.reason)) {
            // 5.0 section 4.3.3: a PUBREC with an error ends the flow.
            s.inflight.erase(it);
            pump();
            break;
        }
        it->state = outgoing_state::awaiting_comp;
        it->msg.reset();
        send(make_ack(mqtt::packet_type::pubrel, a.packet_id, mqtt::reason_code::success));
        break;
    }
    case mqtt::packet_type::pubrel: {
        const bool known = s.incoming_qos2.erase(a.packet_id) != 0;
        send(make_ack(mqtt::packet_type::pubcomp, a.packet_id,
                      known ? mqtt::reason_code::success
                            : mqtt::reason_code::packet_identifier_not_found));
        break;
    }
    case mqtt::packet_type::pubcomp: {
        auto it = find_inflight(s.inflight, a.packet_id);
        if (it != s.inflight.end() && it->state == outgoing_state::awaiting_comp) s.inflight.erase(it);
        pump();
        break;
    }
    default:
        break;
    }
}

}  // namespace iothub::broker
