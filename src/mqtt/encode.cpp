// Encoding: each packet body is written twice through the same function, once into a byte
// counter (to write the remaining length first) and once into the output.

#include <cassert>
#include <type_traits>
#include <variant>

#include "mqtt/codec.hpp"
#include "mqtt/wire.hpp"

namespace iothub::mqtt {
namespace {

using detail::properties_empty;
using detail::write_properties;

bool is_v5(protocol_version v) noexcept { return v == protocol_version::v5; }

std::uint8_t u8_of(reason_code rc) noexcept { return static_cast<std::uint8_t>(rc); }

std::uint8_t type_bits(packet_type t) noexcept {
    return static_cast<std::uint8_t>(static_cast<std::uint8_t>(t) << 4);
}

template <typename W>
void body(const connect& c, protocol_version v, W& w) {
    w.prefixed(v == protocol_version::v31 ? "MQIsdp" : "MQTT");
    w.u8(static_cast<std::uint8_t>(v));
    std::uint8_t flags = 0;
    if (c.clean_start) flags |= 0x02;
    if (c.will) {
        flags |= 0x04;
        flags |= static_cast<std::uint8_t>((c.will->qos & 0x03) << 3);
        if (c.will->retain) flags |= 0x20;
    }
    if (c.password) flags |= 0x40;
    if (c.username) flags |= 0x80;
    w.u8(flags);
    w.u16(c.keep_alive);
    if (is_v5(v)) write_properties(c.props, w);
    w.prefixed(c.client_id);
    if (c.will) {
        if (is_v5(v)) write_properties(c.will->props, w);
        w.prefixed(c.will->topic);
        w.prefixed(c.will->payload);
    }
    if (c.username) w.prefixed(*c.username);
    if (c.password) w.prefixed(*c.password);
}

template <typename W>
void body(const connack& c, protocol_version v, W& w) {
    const bool session_flag = c.session_present && v != protocol_version::v31;
    w.u8(session_flag ? 0x01 : 0x00);
    if (is_v5(v)) {
        w.u8(u8_of(c.reason));
        write_properties(c.props, w);
    } else {
        w.u8(connack_return_code_v3(c.reason));
    }
}

template <typename W>
void body(const publish& p, protocol_version v, W& w) {
    w.prefixed(p.topic);
    if (p.qos > 0) w.u16(p.packet_id);
    if (is_v5(v)) write_properties(p.props, w);
    w.raw(p.payload);
}

template <typename W>
void body(const ack& a, protocol_version v, W& w) {
    w.u16(a.packet_id);
    if (!is_v5(v)) return;
    const bool with_props = !properties_empty(a.props);
    if (a.reason != reason_code::success || with_props) w.u8(u8_of(a.reason));
    if (with_props) write_properties(a.props, w);
}

template <typename W>
void body(const subscribe& s, protocol_version v, W& w) {
    w.u16(s.packet_id);
    if (is_v5(v)) write_properties(s.props, w);
    for (const auto& sub : s.subscriptions) {
        w.prefixed(sub.filter);
        auto opts = static_cast<std::uint8_t>(sub.qos & 0x03);
        if (is_v5(v)) {
            if (sub.no_local) opts |= 0x04;
            if (sub.retain_as_published) opts |= 0x08;
            opts |= static_cast<std::uint8_t>((sub.retain_handling & 0x03) << 4);
        }
        w.u8(opts);
    }
}

template <typename W>
void body(const suback& s, protocol_version v, W& w) {
    w.u16(s.packet_id);
    if (is_v5(v)) write_properties(s.props, w);
    for (auto rc : s.reasons) {
        const auto code = u8_of(rc);
        w.u8(is_v5(v) || code <= 2 ? code : 0x80);
    }
}

template <typename W>
void body(const unsubscribe& u, protocol_version v, W& w) {
    w.u16(u.packet_id);
    if (is_v5(v)) write_properties(u.props, w);
    for (const auto& f : u.filters) w.prefixed(f);
}

template <typename W>
void body(const unsuback& u, protocol_version v, W& w) {
    w.u16(u.packet_id);
    if (!is_v5(v)) return;
    write_properties(u.props, w);
    for (auto rc : u.reasons) w.u8(u8_of(rc));
}

template <typename W>
void body(const pingreq&, protocol_version, W&) {}

template <typename W>
void body(const pingresp&, protocol_version, W&) {}

template <typename W>
void body(const disconnect& d, protocol_version v, W& w) {
    if (!is_v5(v)) return;
    const bool with_props = !properties_empty(d.props);
    if (d.reason != reason_code::success || with_props) w.u8(u8_of(d.reason));
    if (with_props) write_properties(d.props, w);
}

template <typename W>
void body(const auth& a, protocol_version v, W& w) {
    if (a.reason == reason_code::success && properties_empty(a.props)) return;
    w.u8(u8_of(a.reason));
    write_properties(a.props, w);
}

std::uint8_t first_byte(const connect&) noexcept { return type_bits(packet_type::connect); }
std::uint8_t first_byte(const connack&) noexcept { return type_bits(packet_type::connack); }
std::uint8_t first_byte(const publish& p) noexcept {
    auto b = type_bits(packet_type::publish);
    if (p.dup) b |= 0x08;
    b |= static_cast<std::uint8_t>((p.qos & 0x03) << 1);
    if (p.retain) b |= 0x01;
    return b;
}
std::uint8_t first_byte(const ack& a) noexcept {
    return static_cast<std::uint8_t>(type_bits(a.type) | (a.type == packet_type::pubrel ? 0x02 : 0));
}
std::uint8_t first_byte(const subscribe&) noexcept {
    return type_bits(packet_type::subscribe) | 0x02;
}
std::uint8_t first_byte(const suback&) noexcept { return type_bits(packet_type::suback); }
std::uint8_t first_byte(const unsubscribe&) noexcept {
    return type_bits(packet_type::unsubscribe) | 0x02;
}
std::uint8_t first_byte(const unsuback&) noexcept { return type_bits(packet_type::unsuback); }
std::uint8_t first_byte(const pingreq&) noexcept { return type_bits(packet_type::pingreq); }
std::uint8_t first_byte(const pingresp&) noexcept { return type_bits(packet_type::pingresp); }
std::uint8_t first_byte(const disconnect&) noexcept {
    return type_bits(packet_type::disconnect);
}
std::uint8_t first_byte(const auth&) noexcept { return type_bits(packet_type::auth); }

template <typename P>
void emit(const P& p, protocol_version v, std::string& out) {
    detail::counter size;
    body(p, v, size);
    assert(size.n <= detail::max_varint && "packet too large to encode");
    out.reserve(out.size() + 1 + varint_size(static_cast<std::uint32_t>(size.n)) + size.n);
    out.push_back(static_cast<char>(first_byte(p)));
    put_varint(static_cast<std::uint32_t>(size.n), out);
    detail::appender a{out};
    body(p, v, a);
}

}  // namespace

void encode(const packet& p, protocol_version version, std::string& out) {
    std::visit(
        [&](const auto& pkt) {
            using T = std::decay_t<decltype(pkt)>;
            if constexpr (std::is_same_v<T, auth>) {
                assert(version == protocol_version::v5 && "AUTH exists only in MQTT 5");
                if (version != protocol_version::v5) return;
            }
            emit(pkt, version, out);
        },
        p);
}

}  // namespace iothub::mqtt
