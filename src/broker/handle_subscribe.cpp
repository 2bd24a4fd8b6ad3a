// SUBSCRIBE and UNSUBSCRIBE (MQTT 3.1.1 sections 3.8-3.11, 5.0 sections 3.8-3.11 and 4.8).

#include <algorithm>

#include "broker/connection.hpp"
#include "broker/worker.hpp"
#include "mqtt/topic.hpp"

namespace iothub::broker {

void connection::handle_subscribe(const mqtt::subscribe& sub) {
    auto& s = *session_;
    const std::uint32_t identifier =
        sub.props.subscription_identifiers.empty() ? 0 : sub.props.subscription_identifiers.front();

    struct retained_send {
        std::string filter;
        std::uint8_t qos;
        std::uint32_t identifier;
    };
    std::vector<retained_send> to_send;
    mqtt::suback ack;
    ack.packet_id = sub.packet_id;
    for (const auto& req : sub.subscriptions) {
        mqtt::shared_filter parts;
        if (!mqtt::parse_shared(req.filter, parts) ||
            !mqtt::valid_topic_filter(parts.filter, limits_->max_topic_length,
                                      limits_->max_topic_levels)) {
            ack.reasons.push_back(mqtt::reason_code::topic_filter_invalid);
            continue;
        }
        if (!parts.group.empty() && req.no_local) {
            // 5.0 section 3.8.3.1.
            fail(mqtt::reason_code::protocol_error, "no local on a shared subscription");
            return;
        }
        if (identity_) {
            const bool v5 = version_ == mqtt::protocol_version::v5;
            if (!identity_->subscribe.unrestricted() && !identity_->subscribe.allows_filter(parts.filter)) {
                report_refusal(refusal::subscribe_topic, req.filter);
                ack.reasons.push_back(v5 ? mqtt::reason_code::not_authorized
                                         : mqtt::reason_code::unspecified_error);
                continue;
            }
            if (req.qos > identity_->max_subscribe_qos) {
                report_refusal(refusal::subscribe_qos, req.filter);
                // SUBACK has no "QoS not supported" code (5.0 section 3.9.3).
                ack.reasons.push_back(v5 ? mqtt::reason_code::not_authorized
                                         : mqtt::reason_code::unspecified_error);
                continue;
            }
        }
        session_subscription entry;
        entry.filter = std::string(parts.filter);
        entry.group = std::string(parts.group);
        entry.options.qos = req.qos;
        entry.options.no_local = req.no_local;
        entry.options.retain_as_published = req.retain_as_published;
        entry.options.retain_handling = req.retain_handling;
        entry.options.identifier = identifier;
        const bool existed = s.subscriptions.count(req.filter) != 0;
        worker_.add_subscription(s, req.filter, std::move(entry));
        ack.reasons.push_back(static_cast<mqtt::reason_code>(req.qos));
        // Retained messages (3.3.1.3): none for shared subscriptions; v5 retain handling.
        const bool wants_retained =
            parts.group.empty() &&
            (req.retain_handling == 0 || (req.retain_handling == 1 && !existed));
        if (wants_retained) to_send.push_back({std::string(parts.filter), req.qos, identifier});
    }
    send(ack);
    worker_.save_session(s);

    const auto now = worker_.now();
    for (const auto& r : to_send) {
        std::vector<message_ptr> found;
        {
            auto store = s.hub->retained.read();
            store->match(r.filter, [&found](const message_ptr& m) { found.push_back(m); });
        }
        for (auto& m : found) {
            if (m->expired(now)) continue;
            outgoing_message out;
            out.msg = m;
            out.qos = std::min(r.qos, m->qos);
            out.retain = true;
            if (r.identifier != 0) out.subscription_ids.push_back(r.identifier);
            worker_.deliver_to(s, std::move(out));
        }
    }
}

void connection::handle_unsubscribe(const mqtt::unsubscribe& u) {
    auto& s = *session_;
    mqtt::unsuback ack;
    ack.packet_id = u.packet_id;
    for (const auto& filter : u.filters) {
        ack.reasons.push_back(worker_.remove_subscription(s, filter)
                                  ? mqtt::reason_code::success
                                  : mqtt::reason_code::no_subscription_existed);
    }
    send(ack);
    worker_.save_session(s);
}

}  // namespace iothub::broker
