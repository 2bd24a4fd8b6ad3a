// Decoding: the fixed header (read_frame) and one decoder per packet type, each checking
// what the specification requires a receiver to check.

#include "mqtt/codec.hpp"

#include <initializer_list>
#include <string_view>
#include <utility>

#include "mqtt/wire.hpp"

namespace iothub::mqtt {

using detail::fail;
using detail::prop_context;
using detail::reader;
using detail::read_properties;
using detail::read_string;

namespace {

bool check_flags(packet_type type, std::uint8_t flags, decode_error& err) noexcept {
    switch (type) {
        case packet_type::publish:
            if (((flags >> 1) & 0x03) == 3)
                return fail(err, reason_code::malformed_packet, "PUBLISH with QoS 3");
            return true;
        case packet_type::pubrel:
        case packet_type::subscribe:
        case packet_type::unsubscribe:
            if (flags != 0x02)
                return fail(err, reason_code::malformed_packet, "invalid fixed header flags");
            return true;
        default:
            if (flags != 0)
                return fail(err, reason_code::malformed_packet, "invalid fixed header flags");
            return true;
    }
}

bool one_of(std::uint8_t v, std::initializer_list<std::uint8_t> allowed) noexcept {
    for (auto a : allowed)
        if (a == v) return true;
    return false;
}

// Reason codes a v5 packet of this type may carry (specification 2.4 and each packet's
// reason code table).
bool reason_allowed(packet_type type, std::uint8_t rc) noexcept {
    switch (type) {
        case packet_type::connack:
            return one_of(rc, {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
                               0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F});
        case packet_type::puback:
        case packet_type::pubrec:
            return one_of(rc, {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99});
        case packet_type::pubrel:
        case packet_type::pubcomp: return one_of(rc, {0x00, 0x92});
        case packet_type::suback:
            return one_of(rc, {0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1,
                               0xA2});
        case packet_type::unsuback:
            return one_of(rc, {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91});
        case packet_type::disconnect:
            return one_of(rc, {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D,
                               0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
                               0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2});
        case packet_type::auth: return one_of(rc, {0x00, 0x18, 0x19});
        default: return false;
    }
}

bool read_reason(reader& r, packet_type type, reason_code& out, decode_error& err) {
    std::uint8_t rc = 0;
    if (!r.u8(rc)) return fail(err, reason_code::malformed_packet, "truncated reason code");
    if (!reason_allowed(type, rc))
        return fail(err, reason_code::protocol_error, "reason code not allowed in this packet");
    out = static_cast<reason_code>(rc);
    return true;
}

bool read_packet_id(reader& r, std::uint16_t& id, decode_error& err) {
    if (!r.u16(id)) return fail(err, reason_code::malformed_packet, "truncated packet identifier");
    if (id == 0) return fail(err, reason_code::protocol_error, "packet identifier 0");
    return true;
}

bool read_binary(reader& r, std::string& out, decode_error& err) {
    if (!r.prefixed(out)) return fail(err, reason_code::malformed_packet, "truncated binary data");
    return true;
}

bool is_shared(std::string_view filter) noexcept { return filter.starts_with("$share/"); }

bool decode_connect(reader& r, packet& out, decode_error& err) {
    connect c;
    if (!read_string(r, c.protocol_name, err)) return false;
    std::uint8_t level = 0;
    if (!r.u8(level)) return fail(err, reason_code::malformed_packet, "truncated CONNECT header");
    if (c.protocol_name == "MQTT") {
        if (level == 4)
            c.version = protocol_version::v311;
        else if (level == 5)
            c.version = protocol_version::v5;
        else
            return fail(err, reason_code::unsupported_protocol_version,
                        "unsupported protocol level");
    } else if (c.protocol_name == "MQIsdp") {
        if (level != 3)
            return fail(err, reason_code::unsupported_protocol_version,
                        "unsupported protocol level");
        c.version = protocol_version::v31;
    } else {
        return fail(err, reason_code::protocol_error, "unknown protocol name");
    }
    const bool v5 = c.version == protocol_version::v5;

    std::uint8_t flags = 0;
    if (!r.u8(flags)) return fail(err, reason_code::malformed_packet, "truncated CONNECT header");
    if (flags & 0x01) return fail(err, reason_code::malformed_packet, "CONNECT reserved flag set");
    c.clean_start = (flags & 0x02) != 0;
    const bool will_flag = (flags & 0x04) != 0;
    const auto will_qos = static_cast<std::uint8_t>((flags >> 3) & 0x03);
    const bool will_retain = (flags & 0x20) != 0;
    const bool password_flag = (flags & 0x40) != 0;
    const bool username_flag = (flags & 0x80) != 0;
    if (!will_flag && (will_qos != 0 || will_retain))
        return fail(err, reason_code::malformed_packet, "will QoS or retain set without will");
    if (will_qos == 3) return fail(err, reason_code::malformed_packet, "will QoS 3");
    if (password_flag && !username_flag && !v5)
        return fail(err, reason_code::malformed_packet, "password without user name");
    if (!r.u16(c.keep_alive))
        return fail(err, reason_code::malformed_packet, "truncated CONNECT header");

    if (v5) {
        if (!read_properties(r, prop_context::connect, c.props, err)) return false;
        if (c.props.authentication_data && !c.props.authentication_method)
            return fail(err, reason_code::protocol_error,
                        "authentication data without authentication method");
    }
    if (!read_string(r, c.client_id, err)) return false;
    if (will_flag) {
        will_message w;
        w.qos = will_qos;
        w.retain = will_retain;
        if (v5 && !read_properties(r, prop_context::will, w.props, err)) return false;
        if (!read_string(r, w.topic, err)) return false;
        if (!read_binary(r, w.payload, err)) return false;
        c.will = std::move(w);
    }
    if (username_flag) {
        c.username.emplace();
        if (!read_string(r, *c.username, err)) return false;
    }
    if (password_flag) {
        c.password.emplace();
        if (!read_binary(r, *c.password, err)) return false;
    }
    out = std::move(c);
    return true;
}

reason_code from_connack_return_code(std::uint8_t rc) noexcept {
    switch (rc) {
        case 0: return reason_code::success;
        case 1: return reason_code::unsupported_protocol_version;
        case 2: return reason_code::client_identifier_not_valid;
        case 3: return reason_code::server_unavailable;
        case 4: return reason_code::bad_user_name_or_password;
        default: return reason_code::not_authorized;
    }
}

bool decode_connack(reader& r, protocol_version version, packet& out, decode_error& err) {
    connack c;
    std::uint8_t flags = 0;
    std::uint8_t rc = 0;
    if (!r.u8(flags) || !r.u8(rc))
        return fail(err, reason_code::malformed_packet, "truncated CONNACK");
    if (version != protocol_version::v31) {
        if (flags & 0xFE)
            return fail(err, reason_code::malformed_packet, "CONNACK reserved flags set");
        c.session_present = (flags & 0x01) != 0;
    }
    if (version == protocol_version::v5) {
        if (!reason_allowed(packet_type::connack, rc))
            return fail(err, reason_code::protocol_error, "reason code not allowed in this packet");
        c.reason = static_cast<reason_code>(rc);
        if (!read_properties(r, prop_context::connack, c.props, err)) return false;
    } else {
        if (rc > 5) return fail(err, reason_code::malformed_packet, "invalid CONNACK return code");
        c.reason = from_connack_return_code(rc);
    }
    out = std::move(c);
    return true;
}

// Fills `p` in place: its strings keep their capacity from one packet to the next. On v5 the
// properties start from empty; on 3.x they are not touched (a 3.x packet has none).
bool read_publish(reader& r, std::uint8_t flags, protocol_version version, publish& p,
                  decode_error& err) {
    p.retain = (flags & 0x01) != 0;
    p.qos = static_cast<std::uint8_t>((flags >> 1) & 0x03);
    p.dup = (flags & 0x08) != 0;
    p.packet_id = 0;
    if (p.qos == 3) return fail(err, reason_code::malformed_packet, "PUBLISH with QoS 3");
    if (p.dup && p.qos == 0) return fail(err, reason_code::malformed_packet, "DUP set on QoS 0");
    if (!read_string(r, p.topic, err)) return false;
    if (p.qos > 0 && !read_packet_id(r, p.packet_id, err)) return false;
    if (version == protocol_version::v5) {
        p.props = properties{};
        if (!read_properties(r, prop_context::publish, p.props, err)) return false;
        if (p.topic.empty() && !p.props.topic_alias)
            return fail(err, reason_code::protocol_error, "empty topic name without topic alias");
    } else if (p.topic.empty()) {
        return fail(err, reason_code::protocol_error, "empty topic name");
    }
    r.raw(r.remaining(), p.payload);
    return true;
}

bool decode_publish(reader& r, std::uint8_t flags, protocol_version version, packet& out,
                    decode_error& err) {
    publish p;
    if (!read_publish(r, flags, version, p, err)) return false;
    out = std::move(p);
    return true;
}

bool decode_ack(reader& r, packet_type type, protocol_version version, packet& out,
                decode_error& err) {
    ack a;
    a.type = type;
    if (!read_packet_id(r, a.packet_id, err)) return false;
    if (version == protocol_version::v5 && !r.empty()) {
        if (!read_reason(r, type, a.reason, err)) return false;
        if (!r.empty() && !read_properties(r, prop_context::ack, a.props, err)) return false;
    }
    out = std::move(a);
    return true;
}

bool decode_subscribe(reader& r, protocol_version version, packet& out, decode_error& err) {
    subscribe s;
    const bool v5 = version == protocol_version::v5;
    if (!read_packet_id(r, s.packet_id, err)) return false;
    if (v5 && !read_properties(r, prop_context::subscribe, s.props, err)) return false;
    while (!r.empty()) {
        subscription sub;
        if (!read_string(r, sub.filter, err)) return false;
        std::uint8_t opts = 0;
        if (!r.u8(opts))
            return fail(err, reason_code::malformed_packet, "truncated subscription options");
        sub.qos = opts & 0x03;
        if (v5) {
            if (opts & 0xC0)
                return fail(err, reason_code::malformed_packet,
                            "reserved subscription option bits set");
            if (sub.qos == 3)
                return fail(err, reason_code::protocol_error, "subscription with QoS 3");
            sub.no_local = (opts & 0x04) != 0;
            sub.retain_as_published = (opts & 0x08) != 0;
            sub.retain_handling = static_cast<std::uint8_t>((opts >> 4) & 0x03);
            if (sub.retain_handling == 3)
                return fail(err, reason_code::protocol_error, "retain handling 3");
            if (sub.no_local && is_shared(sub.filter))
                return fail(err, reason_code::protocol_error, "no local on a shared subscription");
        } else {
            if (opts & 0xFC)
                return fail(err, reason_code::malformed_packet,
                            "reserved subscription option bits set");
            if (sub.qos == 3)
                return fail(err, reason_code::malformed_packet, "subscription with QoS 3");
        }
        s.subscriptions.push_back(std::move(sub));
    }
    if (s.subscriptions.empty())
        return fail(err, reason_code::protocol_error, "SUBSCRIBE without subscriptions");
    out = std::move(s);
    return true;
}

bool decode_suback(reader& r, protocol_version version, packet& out, decode_error& err) {
    suback s;
    const bool v5 = version == protocol_version::v5;
    if (!read_packet_id(r, s.packet_id, err)) return false;
    if (v5 && !read_properties(r, prop_context::suback, s.props, err)) return false;
    while (!r.empty()) {
        std::uint8_t rc = 0;
        r.u8(rc);
        if (v5) {
            if (!reason_allowed(packet_type::suback, rc))
                return fail(err, reason_code::protocol_error,
                            "reason code not allowed in this packet");
        } else if (rc > 2 && rc != 0x80) {
            return fail(err, reason_code::malformed_packet, "invalid SUBACK return code");
        }
        s.reasons.push_back(static_cast<reason_code>(rc));
    }
    if (s.reasons.empty())
        return fail(err, reason_code::protocol_error, "SUBACK without return codes");
    out = std::move(s);
    return true;
}

bool decode_unsubscribe(reader& r, protocol_version version, packet& out, decode_error& err) {
    unsubscribe u;
    if (!read_packet_id(r, u.packet_id, err)) return false;
    if (version == protocol_version::v5 &&
        !read_properties(r, prop_context::unsubscribe, u.props, err))
        return false;
    while (!r.empty()) {
        std::string filter;
        if (!read_string(r, filter, err)) return false;
        u.filters.push_back(std::move(filter));
    }
    if (u.filters.empty())
        return fail(err, reason_code::protocol_error, "UNSUBSCRIBE without topic filters");
    out = std::move(u);
    return true;
}

bool decode_unsuback(reader& r, protocol_version version, packet& out, decode_error& err) {
    unsuback u;
    if (!read_packet_id(r, u.packet_id, err)) return false;
    if (version == protocol_version::v5) {
        if (!read_properties(r, prop_context::unsuback, u.props, err)) return false;
        while (!r.empty()) {
            reason_code rc{};
            if (!read_reason(r, packet_type::unsuback, rc, err)) return false;
            u.reasons.push_back(rc);
        }
        if (u.reasons.empty())
            return fail(err, reason_code::protocol_error, "UNSUBACK without reason codes");
    }
    out = std::move(u);
    return true;
}

bool decode_disconnect(reader& r, protocol_version version, packet& out, decode_error& err) {
    disconnect d;
    if (version == protocol_version::v5 && !r.empty()) {
        if (!read_reason(r, packet_type::disconnect, d.reason, err)) return false;
        if (!r.empty() && !read_properties(r, prop_context::disconnect, d.props, err))
            return false;
    }
    out = std::move(d);
    return true;
}

bool decode_auth(reader& r, protocol_version version, packet& out, decode_error& err) {
    if (version != protocol_version::v5)
        return fail(err, reason_code::malformed_packet, "AUTH packet before MQTT 5");
    auth a;
    if (!r.empty()) {
        if (!read_reason(r, packet_type::auth, a.reason, err)) return false;
        if (!read_properties(r, prop_context::auth, a.props, err)) return false;
    }
    out = std::move(a);
    return true;
}

bool decode_body(const frame& f, reader& r, protocol_version version, packet& out,
                 decode_error& err) {
    switch (f.type) {
        case packet_type::connect: return decode_connect(r, out, err);
        case packet_type::connack: return decode_connack(r, version, out, err);
        case packet_type::publish: return decode_publish(r, f.flags, version, out, err);
        case packet_type::puback:
        case packet_type::pubrec:
        case packet_type::pubrel:
        case packet_type::pubcomp: return decode_ack(r, f.type, version, out, err);
        case packet_type::subscribe: return decode_subscribe(r, version, out, err);
        case packet_type::suback: return decode_suback(r, version, out, err);
        case packet_type::unsubscribe: return decode_unsubscribe(r, version, out, err);
        case packet_type::unsuback: return decode_unsuback(r, version, out, err);
        case packet_type::pingreq: out = pingreq{}; return true;
        case packet_type::pingresp: out = pingresp{}; return true;
        case packet_type::disconnect: return decode_disconnect(r, version, out, err);
        case packet_type::auth: return decode_auth(r, version, out, err);
    }
    return fail(err, reason_code::malformed_packet, "reserved packet type");
}

}  // namespace

decode_status read_frame(std::span<const std::uint8_t> buf, std::uint32_t max_packet_size,
                         frame& out, decode_error& err) noexcept {
    if (buf.empty()) return decode_status::need_more;
    const auto type = static_cast<std::uint8_t>(buf[0] >> 4);
    const auto flags = static_cast<std::uint8_t>(buf[0] & 0x0F);
    if (type == 0) {
        fail(err, reason_code::malformed_packet, "reserved packet type");
        return decode_status::error;
    }
    if (!check_flags(static_cast<packet_type>(type), flags, err)) return decode_status::error;

    std::uint32_t length = 0;
    std::size_t i = 0;
    for (;; ++i) {
        if (i == 4) {
            fail(err, reason_code::malformed_packet, "remaining length longer than 4 bytes");
            return decode_status::error;
        }
        if (1 + i >= buf.size()) return decode_status::need_more;
        const std::uint8_t b = buf[1 + i];
        length |= std::uint32_t{b & 0x7Fu} << (7 * i);
        if ((b & 0x80) == 0) break;
    }
    out.type = static_cast<packet_type>(type);
    out.flags = flags;
    out.header_size = 2 + i;
    out.remaining_length = length;
    if (max_packet_size != 0 && out.total_size() > max_packet_size) {
        fail(err, reason_code::packet_too_large, "packet exceeds maximum packet size");
        return decode_status::error;
    }
    return decode_status::ok;
}

namespace {

// The checks every packet gets around its body: type, flags, length, nothing left over.
template <class Body>
decode_status decode_framed(const frame& f, std::span<const std::uint8_t> body, decode_error& err,
                            Body&& decode_body_fn) {
    const auto type = static_cast<std::uint8_t>(f.type);
    if (type == 0 || type > 15) {
        fail(err, reason_code::malformed_packet, "reserved packet type");
        return decode_status::error;
    }
    if (!check_flags(f.type, f.flags, err)) return decode_status::error;
    if (body.size() < f.remaining_length) {
        fail(err, reason_code::malformed_packet, "body shorter than remaining length");
        return decode_status::error;
    }
    reader r(body.first(f.remaining_length));
    if (!decode_body_fn(r)) return decode_status::error;
    if (!r.empty()) {
        fail(err, reason_code::malformed_packet, "unexpected bytes after packet");
        return decode_status::error;
    }
    return decode_status::ok;
}

}  // namespace

decode_status decode(const frame& f, std::span<const std::uint8_t> body, protocol_version version,
                     packet& out, decode_error& err) {
    return decode_framed(f, body, err,
                         [&](reader& r) { return decode_body(f, r, version, out, err); });
}

decode_status decode_publish(const frame& f, std::span<const std::uint8_t> body,
                             protocol_version version, publish& out, decode_error& err) {
    if (f.type != packet_type::publish) {
        fail(err, reason_code::malformed_packet, "not a PUBLISH");
        return decode_status::error;
    }
    return decode_framed(f, body, err,
                         [&](reader& r) { return read_publish(r, f.flags, version, out, err); });
}

std::optional<protocol_version> connect_version(std::span<const std::uint8_t> body) noexcept {
    using namespace std::string_view_literals;
    const auto matches = [&](std::string_view name) {
        if (body.size() < 2 + name.size() + 1) return false;
        if (body[0] != 0 || body[1] != name.size()) return false;
        for (std::size_t i = 0; i < name.size(); ++i)
            if (body[2 + i] != static_cast<std::uint8_t>(name[i])) return false;
        return true;
    };
    if (matches("MQTT"sv)) {
        if (body[6] == 4) return protocol_version::v311;
        if (body[6] == 5) return protocol_version::v5;
    } else if (matches("MQIsdp"sv) && body[8] == 3) {
        return protocol_version::v31;
    }
    return std::nullopt;
}

std::size_t varint_size(std::uint32_t v) noexcept {
    if (v < 0x80) return 1;
    if (v < 0x4000) return 2;
    if (v < 0x200000) return 3;
    return 4;
}

void put_varint(std::uint32_t v, std::string& out) {
    assert(v <= detail::max_varint && "variable byte integer out of range");
    do {
        auto b = static_cast<std::uint8_t>(v & 0x7F);
        v >>= 7;
        if (v != 0) b |= 0x80;
        out.push_back(static_cast<char>(b));
    } while (v != 0);
}

}  // namespace iothub::mqtt
