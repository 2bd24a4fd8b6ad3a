// CONNECT (MQTT 3.1 / 3.1.1 section 3.1, 5.0 section 3.1), DISCONNECT and AUTH.

#include <algorithm>
#include <random>

#include "broker/connection.hpp"
#include "broker/publish_encoder.hpp"
#include "broker/worker.hpp"
#include "mqtt/topic.hpp"

namespace iothub::broker {

namespace {

constexpr std::string_view default_hub = "default";

std::string random_client_id() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    static constexpr char hex[] = "0123456789abcdef";
    std::string id = "auto-";
    auto v = rng();
    for (int i = 0; i < 16; ++i) {
        id.push_back(hex[v & 0xF]);
        v >>= 4;
    }
    return id;
}

}  // namespace

void connection::refuse_connect(mqtt::reason_code rc, const char* text, std::string_view who) {
    worker_.owner().drops().protocol_errors.fetch_add(1, std::memory_order_relaxed);
    if (who.empty()) who = linked_client_id();
    log_event(1, std::string("refusing connection from ") + transport_.peer() +
                     (who.empty() ? "" : " (client '" + std::string(who) + "')") + ": " + text +
                     " (" + mqtt::to_string(rc) + ")");
    // CONNACK carries the refusal when the protocol has a code for it (3.1.1 section 3.2.2.3:
    // codes 1-5 only; otherwise the connection just closes).
    const bool v5 = version_ == mqtt::protocol_version::v5;
    const bool v3_code = rc == mqtt::reason_code::unsupported_protocol_version ||
                         rc == mqtt::reason_code::client_identifier_not_valid ||
                         rc == mqtt::reason_code::server_unavailable ||
                         rc == mqtt::reason_code::server_busy ||
                         rc == mqtt::reason_code::bad_user_name_or_password ||
                         rc == mqtt::reason_code::not_authorized;
    if (v5 || v3_code) {
        mqtt::connack ack;
        ack.reason = rc;
        if (v5 && problem_information_ && text != nullptr && *text != '\0')
            ack.props.reason_string = text;
        send(ack);
    }
    state_ = state::closing;
    transport_.close();
}

bool connection::handle_connect(mqtt::connect& c) {
    version_ = c.version;
    const bool v5 = version_ == mqtt::protocol_version::v5;
    if (v5 && c.props.request_problem_information) problem_information_ = *c.props.request_problem_information != 0;

    if (v5 && c.props.authentication_method) {
        refuse_connect(mqtt::reason_code::bad_authentication_method,
                       "enhanced authentication is not supported", c.client_id);
        return false;
    }
    if (v5 && c.props.receive_maximum && *c.props.receive_maximum == 0) {
        fail(mqtt::reason_code::protocol_error, "receive maximum of 0", c.client_id);
        return false;
    }
    if (v5 && c.props.maximum_packet_size && *c.props.maximum_packet_size == 0) {
        fail(mqtt::reason_code::protocol_error, "maximum packet size of 0", c.client_id);
        return false;
    }

    // Who is connecting: the gatekeeper decides the hub and the client id; without one,
    // only the open development hub admits.
    admission adm;
    if (auto* g = worker_.owner().get_gatekeeper()) {
        link_info link;
        link.peer = transport_.peer();
        link.tls = transport_.tls();
        if (link.tls) link.certificates = transport_.peer_certificates();
        adm = g->admit(worker_, c, link);
    } else if (!limits_->dev_hub_open) {
        adm.rc = mqtt::reason_code::not_authorized;
        adm.reason = "no hub admits this client (the open development hub is off)";
    } else {
        adm.hub = std::string(default_hub);
        adm.client_id = c.client_id;
    }
    if (adm.rc != mqtt::reason_code::success) {
        refuse_connect(adm.rc, adm.reason.c_str(), c.client_id);
        return false;
    }
    // Until the session is linked, the client id lives here (then in the session).
    std::string& client_id = adm.client_id;

    // Client identifier (3.1.1 section 3.1.3.1, 5.0 section 3.1.3.1). An empty one is assigned
    // by the server: the device's id when the hub named the client, a random one otherwise;
    // either way an MQTT 5 client learns it from the CONNACK (5.0 section 3.2.2.3.7).
    bool assigned = c.client_id.empty();
    if (client_id.empty()) {
        if (version_ == mqtt::protocol_version::v31 ||
            (version_ == mqtt::protocol_version::v311 && !c.clean_start)) {
            refuse_connect(mqtt::reason_code::client_identifier_not_valid,
                           "empty client identifier needs a clean session");
            return false;
        }
        // An id that hashes to this worker, so the connection stays here.
        do {
            client_id = random_client_id();
        } while (worker_.owner().owner_of(adm.hub, client_id) != worker_.index());
    }

    const unsigned owner = worker_.owner().owner_of(adm.hub, client_id);
    if (owner != worker_.index()) {
        transport_.migrate(owner);
        return false;
    }
    identity_ = std::move(adm.identity);

    if (c.will) {
        if (!mqtt::valid_topic_name(c.will->topic, limits_->max_topic_length,
                                    limits_->max_topic_levels)) {
            refuse_connect(mqtt::reason_code::topic_name_invalid, "invalid will topic", client_id);
            return false;
        }
        if (c.will->retain && !limits_->retain_available) {
            refuse_connect(mqtt::reason_code::retain_not_supported, "retain is not supported",
                           client_id);
            return false;
        }
        refusal why{};
        if (!permitted(c.will->topic, c.will->qos, c.will->retain, why)) {
            report_refusal(why == refusal::publish_topic ? refusal::will_topic : why, c.will->topic);
            refuse_connect(mqtt::reason_code::not_authorized, "the will is not allowed", client_id);
            return false;
        }
    }

    if (!worker_.owner().try_add_connection()) {
        refuse_connect(v5 ? mqtt::reason_code::server_busy : mqtt::reason_code::server_unavailable,
                       "too many connections", client_id);
        return false;
    }
    counted_ = true;

    keep_alive_ = c.keep_alive;
    bool keep_alive_changed = false;
    // Zero means "no limit", which is more than a configured maximum below 65535.
    const bool over_max = keep_alive_ > limits_->max_keep_alive ||
                          (keep_alive_ == 0 && limits_->max_keep_alive < 65535);
    if (v5 && over_max) {
        keep_alive_ = limits_->max_keep_alive;
        keep_alive_changed = true;
    }
    if (v5) {
        client_receive_max_ = c.props.receive_maximum.value_or(65535);
        client_max_packet_ = c.props.maximum_packet_size.value_or(0);
    }
    if (c.will) will_ = std::make_unique<mqtt::will_message>(std::move(*c.will));

    // Session expiry: v5 from the property (0 when absent); 3.x clean session or "never".
    std::uint32_t expiry = 0;
    bool expiry_capped = false;
    if (v5) {
        expiry = c.props.session_expiry_interval.value_or(0);
    } else if (!c.clean_start) {
        expiry = 0xFFFFFFFF;
    }
    if (expiry > limits_->max_session_expiry) {
        expiry = limits_->max_session_expiry;
        expiry_capped = v5;
    }

    auto& hub = worker_.owner().hub(adm.hub);
    session* s = worker_.find_session(hub.name, client_id);
    if (s != nullptr && s->conn != nullptr) {
        // What the old connection sent before this CONNECT (a DISCONNECT changing the
        // session expiry, say) is handled first.
        s->conn->read_pending();
        s = worker_.find_session(hub.name, client_id);
    }
    if (s != nullptr && s->conn != nullptr) {
        // Take-over (3.1.4): the existing connection is closed; v5 is told why.
        s->conn->close_with(mqtt::reason_code::session_taken_over, "session taken over");
        s = worker_.find_session(hub.name, client_id);  // it may have ended with that link
    }
    bool session_present = false;
    if (s != nullptr && c.clean_start) {
        // The old session ends now; a delayed will waiting on it goes out first.
        worker_.release_will(*s);
        worker_.destroy_session(*s);
        s = nullptr;
    }
    if (s != nullptr) {
        session_present = true;
        s->will.reset();  // reconnected before the will delay passed (5.0 section 3.1.3.2.2)
    } else {
        s = &worker_.create_session(hub, client_id);
    }
    s->version = version_;
    s->expiry_interval = expiry;
    s->conn = this;
    session_ = s;

    mqtt::connack ack;
    ack.session_present = session_present;
    if (v5) {
        if (assigned) ack.props.assigned_client_identifier = client_id;
        if (limits_->receive_maximum != 65535) ack.props.receive_maximum = limits_->receive_maximum;
        if (limits_->topic_alias_maximum != 0)
            ack.props.topic_alias_maximum = limits_->topic_alias_maximum;
        ack.props.maximum_packet_size = limits_->max_packet_size;
        if (keep_alive_changed) ack.props.server_keep_alive = keep_alive_;
        if (expiry_capped) ack.props.session_expiry_interval = expiry;
        if (!limits_->retain_available) ack.props.retain_available = 0;
    }
    state_ = state::connected;
    last_rx_ms_ = worker_.now();  // keep alive runs from the CONNECT
    send(ack);
    if (!session_present) worker_.save_session(*s);
    if (identity_) {
        if (auto* g = worker_.owner().get_gatekeeper())
            g->connected(worker_, *identity_, s->client_id, transport_.peer());
    }
    log_event(1, "client '" + client_id + "' connected from " + transport_.peer() +
                     (session_present ? " (session resumed)" : ""));

    // Re-send what the previous connection left unacknowledged (4.4), in order, within the
    // new connection's window; what does not fit goes back to the queue as a new send.
    const std::size_t room = window();
    while (s->inflight.size() > room) {
        auto m = std::move(s->inflight.back());
        s->inflight.pop_back();
        if (m.state == outgoing_state::awaiting_comp) {
            // Already released: it must finish with its id; keep it and stop here.
            s->inflight.push_back(std::move(m));
            break;
        }
        m.state = outgoing_state::queued;
        m.packet_id = 0;
        m.dup = false;
        s->queue.push_front(std::move(m));
    }
    for (auto it = s->inflight.begin(); it != s->inflight.end();) {
        if (it->state == outgoing_state::awaiting_ack) {
            it->dup = true;
            if (!send_publish(*it)) {  // expired, or too large for this connection
                s->release(*it);
                it = s->inflight.erase(it);
                continue;
            }
        } else {
            mqtt::ack rel;
            rel.type = mqtt::packet_type::pubrel;
            rel.packet_id = it->packet_id;
            send(rel);
        }
        ++it;
    }
    pump();
    return true;
}

void connection::handle_disconnect(const mqtt::disconnect& d) {
    bool publish_will = false;
    if (version_ == mqtt::protocol_version::v5) {
        if (d.props.session_expiry_interval && session_ != nullptr) {
            // 5.0 section 3.14.2.2.2: from zero to non-zero is a protocol error.
            if (session_->expiry_interval == 0 && *d.props.session_expiry_interval != 0) {
                fail(mqtt::reason_code::protocol_error, "session expiry changed from zero");
                return;
            }
            session_->expiry_interval =
                std::min(*d.props.session_expiry_interval, limits_->max_session_expiry);
        }
        // The will is discarded only on a normal disconnection (0x00): 0x04 and the error
        // codes publish it ([MQTT-3.14.4-3]).
        publish_will = d.reason != mqtt::reason_code::success;
    }
    state_ = state::closing;
    transport_.close();
    end_session_link(publish_will, publish_will ? "client disconnected with an error"
                                                : "client disconnected");
}

void connection::handle_auth(const mqtt::auth&) {
    // No enhanced authentication method is offered, so the client cannot have started an
    // exchange: an AUTH packet is a protocol error (5.0 section 4.12).
    fail(mqtt::reason_code::protocol_error, "AUTH without an authentication method");
}

}  // namespace iothub::broker
