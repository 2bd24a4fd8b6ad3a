// MQTT 5 properties (specification section 2.2.2): reading with the per-packet rules of
// table 2.2.2.2, writing in identifier order.

#include <optional>

#include "mqtt/wire.hpp"

namespace iothub::mqtt {
namespace detail {
namespace {

enum class value_kind : std::uint8_t { byte, two_bytes, four_bytes, varint, string, binary, pair };

using context_mask = std::uint16_t;

constexpr context_mask in(prop_context c) noexcept {
    return static_cast<context_mask>(1u << static_cast<unsigned>(c));
}

template <typename... C>
constexpr context_mask in(prop_context first, C... rest) noexcept {
    return static_cast<context_mask>(in(first) | in(rest...));
}

struct property_rule {
    value_kind kind = value_kind::byte;
    context_mask allowed = 0;  // 0: unknown identifier
};

using pc = prop_context;

property_rule rule_for(std::uint8_t id) noexcept {
    switch (id) {
        case 0x01: return {value_kind::byte, in(pc::publish, pc::will)};
        case 0x02: return {value_kind::four_bytes, in(pc::publish, pc::will)};
        case 0x03: return {value_kind::string, in(pc::publish, pc::will)};
        case 0x08: return {value_kind::string, in(pc::publish, pc::will)};
        case 0x09: return {value_kind::binary, in(pc::publish, pc::will)};
        case 0x0B: return {value_kind::varint, in(pc::publish, pc::subscribe)};
        case 0x11: return {value_kind::four_bytes, in(pc::connect, pc::connack, pc::disconnect)};
        case 0x12: return {value_kind::string, in(pc::connack)};
        case 0x13: return {value_kind::two_bytes, in(pc::connack)};
        case 0x15: return {value_kind::string, in(pc::connect, pc::connack, pc::auth)};
        case 0x16: return {value_kind::binary, in(pc::connect, pc::connack, pc::auth)};
        case 0x17: return {value_kind::byte, in(pc::connect)};
        case 0x18: return {value_kind::four_bytes, in(pc::will)};
        case 0x19: return {value_kind::byte, in(pc::connect)};
        case 0x1A: return {value_kind::string, in(pc::connack)};
        case 0x1C: return {value_kind::string, in(pc::connack, pc::disconnect)};
        case 0x1F:
            return {value_kind::string, in(pc::connack, pc::ack, pc::suback, pc::unsuback,
                                           pc::disconnect, pc::auth)};
        case 0x21: return {value_kind::two_bytes, in(pc::connect, pc::connack)};
        case 0x22: return {value_kind::two_bytes, in(pc::connect, pc::connack)};
        case 0x23: return {value_kind::two_bytes, in(pc::publish)};
        case 0x24: return {value_kind::byte, in(pc::connack)};
        case 0x25: return {value_kind::byte, in(pc::connack)};
        case 0x26:
            return {value_kind::pair,
                    in(pc::connect, pc::connack, pc::publish, pc::will, pc::ack, pc::subscribe,
                       pc::suback, pc::unsubscribe, pc::unsuback, pc::disconnect, pc::auth)};
        case 0x27: return {value_kind::four_bytes, in(pc::connect, pc::connack)};
        case 0x28: return {value_kind::byte, in(pc::connack)};
        case 0x29: return {value_kind::byte, in(pc::connack)};
        case 0x2A: return {value_kind::byte, in(pc::connack)};
        default: return {};
    }
}

struct value {
    std::uint32_t number = 0;
    std::string text;
    std::string text2;
};

template <typename T>
bool set_once(std::optional<T>& slot, T v, decode_error& err) {
    if (slot) return fail(err, reason_code::protocol_error, "duplicate property");
    slot = std::move(v);
    return true;
}

bool flag_value(std::uint32_t v, decode_error& err) noexcept {
    if (v > 1) return fail(err, reason_code::protocol_error, "property value must be 0 or 1");
    return true;
}

bool nonzero_value(std::uint32_t v, decode_error& err) noexcept {
    if (v == 0) return fail(err, reason_code::protocol_error, "property value must not be 0");
    return true;
}

bool read_value(reader& r, value_kind kind, value& v, decode_error& err) {
    constexpr auto truncated = "truncated property";
    switch (kind) {
        case value_kind::byte: {
            std::uint8_t b = 0;
            if (!r.u8(b)) return fail(err, reason_code::malformed_packet, truncated);
            v.number = b;
            return true;
        }
        case value_kind::two_bytes: {
            std::uint16_t s = 0;
            if (!r.u16(s)) return fail(err, reason_code::malformed_packet, truncated);
            v.number = s;
            return true;
        }
        case value_kind::four_bytes:
            if (!r.u32(v.number)) return fail(err, reason_code::malformed_packet, truncated);
            return true;
        case value_kind::varint:
            if (!r.varint(v.number))
                return fail(err, reason_code::malformed_packet, "malformed variable byte integer");
            return true;
        case value_kind::string: return read_string(r, v.text, err);
        case value_kind::binary:
            if (!r.prefixed(v.text)) return fail(err, reason_code::malformed_packet, truncated);
            return true;
        case value_kind::pair: return read_string(r, v.text, err) && read_string(r, v.text2, err);
    }
    return fail(err, reason_code::malformed_packet, truncated);
}

bool store(std::uint8_t id, value&& v, prop_context ctx, properties& p, decode_error& err) {
    const auto n8 = static_cast<std::uint8_t>(v.number);
    const auto n16 = static_cast<std::uint16_t>(v.number);
    switch (id) {
        case 0x01: return flag_value(v.number, err) && set_once(p.payload_format_indicator, n8, err);
        case 0x02: return set_once(p.message_expiry_interval, v.number, err);
        case 0x03: return set_once(p.content_type, std::move(v.text), err);
        case 0x08: return set_once(p.response_topic, std::move(v.text), err);
        case 0x09: return set_once(p.correlation_data, std::move(v.text), err);
        case 0x0B:
            if (!nonzero_value(v.number, err)) return false;
            if (ctx == prop_context::subscribe && !p.subscription_identifiers.empty())
                return fail(err, reason_code::protocol_error, "duplicate property");
            p.subscription_identifiers.push_back(v.number);
            return true;
        case 0x11: return set_once(p.session_expiry_interval, v.number, err);
        case 0x12: return set_once(p.assigned_client_identifier, std::move(v.text), err);
        case 0x13: return set_once(p.server_keep_alive, n16, err);
        case 0x15: return set_once(p.authentication_method, std::move(v.text), err);
        case 0x16: return set_once(p.authentication_data, std::move(v.text), err);
        case 0x17:
            return flag_value(v.number, err) && set_once(p.request_problem_information, n8, err);
        case 0x18: return set_once(p.will_delay_interval, v.number, err);
        case 0x19:
            return flag_value(v.number, err) && set_once(p.request_response_information, n8, err);
        case 0x1A: return set_once(p.response_information, std::move(v.text), err);
        case 0x1C: return set_once(p.server_reference, std::move(v.text), err);
        case 0x1F: return set_once(p.reason_string, std::move(v.text), err);
        case 0x21: return nonzero_value(v.number, err) && set_once(p.receive_maximum, n16, err);
        case 0x22: return set_once(p.topic_alias_maximum, n16, err);
        case 0x23: return nonzero_value(v.number, err) && set_once(p.topic_alias, n16, err);
        case 0x24: return flag_value(v.number, err) && set_once(p.maximum_qos, n8, err);
        case 0x25: return flag_value(v.number, err) && set_once(p.retain_available, n8, err);
        case 0x26:
            p.user_properties.push_back({std::move(v.text), std::move(v.text2)});
            return true;
        case 0x27:
            return nonzero_value(v.number, err) && set_once(p.maximum_packet_size, v.number, err);
        case 0x28:
            return flag_value(v.number, err) &&
                   set_once(p.wildcard_subscription_available, n8, err);
        case 0x29:
            return flag_value(v.number, err) &&
                   set_once(p.subscription_identifier_available, n8, err);
        case 0x2A:
            return flag_value(v.number, err) && set_once(p.shared_subscription_available, n8, err);
        default: return fail(err, reason_code::protocol_error, "unknown property identifier");
    }
}

template <typename W>
void write_items(const properties& p, W& w) {
    auto byte_prop = [&w](std::uint8_t id, const std::optional<std::uint8_t>& v) {
        if (v) { w.u8(id); w.u8(*v); }
    };
    auto two_prop = [&w](std::uint8_t id, const std::optional<std::uint16_t>& v) {
        if (v) { w.u8(id); w.u16(*v); }
    };
    auto four_prop = [&w](std::uint8_t id, const std::optional<std::uint32_t>& v) {
        if (v) { w.u8(id); w.u32(*v); }
    };
    auto text_prop = [&w](std::uint8_t id, const std::optional<std::string>& v) {
        if (v) { w.u8(id); w.prefixed(*v); }
    };
    byte_prop(0x01, p.payload_format_indicator);
    four_prop(0x02, p.message_expiry_interval);
    text_prop(0x03, p.content_type);
    text_prop(0x08, p.response_topic);
    text_prop(0x09, p.correlation_data);
    for (auto id : p.subscription_identifiers) {
        w.u8(0x0B);
        w.varint(id);
    }
    four_prop(0x11, p.session_expiry_interval);
    text_prop(0x12, p.assigned_client_identifier);
    two_prop(0x13, p.server_keep_alive);
    text_prop(0x15, p.authentication_method);
    text_prop(0x16, p.authentication_data);
    byte_prop(0x17, p.request_problem_information);
    four_prop(0x18, p.will_delay_interval);
    byte_prop(0x19, p.request_response_information);
    text_prop(0x1A, p.response_information);
    text_prop(0x1C, p.server_reference);
    text_prop(0x1F, p.reason_string);
    two_prop(0x21, p.receive_maximum);
    two_prop(0x22, p.topic_alias_maximum);
    two_prop(0x23, p.topic_alias);
    byte_prop(0x24, p.maximum_qos);
    byte_prop(0x25, p.retain_available);
    for (const auto& up : p.user_properties) {
        w.u8(0x26);
        w.prefixed(up.key);
        w.prefixed(up.value);
    }
    four_prop(0x27, p.maximum_packet_size);
    byte_prop(0x28, p.wildcard_subscription_available);
    byte_prop(0x29, p.subscription_identifier_available);
    byte_prop(0x2A, p.shared_subscription_available);
}

}  // namespace

bool read_properties(reader& r, prop_context ctx, properties& out, decode_error& err) {
    std::uint32_t length = 0;
    if (!r.varint(length))
        return fail(err, reason_code::malformed_packet, "malformed property length");
    reader body(std::span<const std::uint8_t>{});
    if (!r.sub(length, body))
        return fail(err, reason_code::malformed_packet, "property length exceeds packet");
    while (!body.empty()) {
        std::uint8_t id = 0;
        body.u8(id);
        const auto rule = rule_for(id);
        // MQTT 5.0 section 2.2.2.2: an identifier not valid for the packet type makes the
        // packet malformed.
        if (rule.allowed == 0)
            return fail(err, reason_code::malformed_packet, "unknown property identifier");
        if (ctx != prop_context::any && (rule.allowed & in(ctx)) == 0)
            return fail(err, reason_code::malformed_packet, "property not allowed in this packet");
        value v;
        if (!read_value(body, rule.kind, v, err)) return false;
        if (!store(id, std::move(v), ctx, out, err)) return false;
    }
    return true;
}

std::size_t properties_body_size(const properties& props) {
    counter c;
    write_items(props, c);
    return c.n;
}

void append_properties_body(const properties& props, std::string& out) {
    appender a{out};
    write_items(props, a);
}

}  // namespace detail

void encode_properties(const properties& props, std::string& out) {
    detail::appender a{out};
    detail::write_properties(props, a);
}

bool decode_properties(std::span<const std::uint8_t> bytes, properties& out) {
    detail::reader r(bytes);
    decode_error err;
    properties result;
    if (!detail::read_properties(r, detail::prop_context::any, result, err) || !r.empty())
        return false;
    out = std::move(result);
    return true;
}

}  // namespace iothub::mqtt
