#include "broker/publish_encoder.hpp"

#include "mqtt/codec.hpp"

namespace iothub::broker {

namespace {

void put_u16(std::string& out, std::uint16_t v) {
    out.push_back(static_cast<char>(v >> 8));
    out.push_back(static_cast<char>(v & 0xFF));
}

void put_u32(std::string& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xFF));
}

struct publish_layout {
    std::size_t props_len = 0;
    std::size_t remaining = 0;
};

publish_layout layout(mqtt::protocol_version v, const message& m, std::uint8_t qos,
                      const std::vector<std::uint32_t>& subscription_ids,
                      std::uint32_t expiry_left) {
    publish_layout l;
    const bool v5 = v == mqtt::protocol_version::v5;
    if (v5) {
        l.props_len = m.props_wire.size();
        if (expiry_left != 0) l.props_len += 5;
        for (auto id : subscription_ids) l.props_len += 1 + mqtt::varint_size(id);
    }
    l.remaining = 2 + m.topic.size() + (qos > 0 ? 2 : 0) + m.payload.size();
    if (v5) l.remaining += mqtt::varint_size(static_cast<std::uint32_t>(l.props_len)) + l.props_len;
    return l;
}

}  // namespace

std::size_t publish_size(mqtt::protocol_version v, const message& m, std::uint8_t qos,
                         const std::vector<std::uint32_t>& subscription_ids,
                         std::uint32_t expiry_left) {
    const auto l = layout(v, m, qos, subscription_ids, expiry_left);
    return 1 + mqtt::varint_size(static_cast<std::uint32_t>(l.remaining)) + l.remaining;
}

std::string forwarded_properties(const mqtt::properties& p) {
    if (!p.payload_format_indicator && !p.content_type && !p.response_topic &&
        !p.correlation_data && p.user_properties.empty())
        return {};
    mqtt::properties fwd;
    fwd.payload_format_indicator = p.payload_format_indicator;
    fwd.content_type = p.content_type;
    fwd.response_topic = p.response_topic;
    fwd.correlation_data = p.correlation_data;
    fwd.user_properties = p.user_properties;
    std::string with_length;
    mqtt::encode_properties(fwd, with_length);
    // Drop the variable byte integer length prefix.
    std::size_t i = 0;
    while (i < with_length.size() && (static_cast<unsigned char>(with_length[i]) & 0x80) != 0) ++i;
    return with_length.substr(i + 1);
}

void encode_publish(output_queue& queue, mqtt::protocol_version v, const message_ptr& msg,
                    std::uint8_t qos, bool retain, bool dup, std::uint16_t packet_id,
                    const std::vector<std::uint32_t>& subscription_ids,
                    std::uint32_t expiry_left) {
    const message& m = *msg;
    const bool v5 = v == mqtt::protocol_version::v5;
    const auto [props_len, remaining] = layout(v, m, qos, subscription_ids, expiry_left);

    auto& out = queue.bytes();
    out.reserve(out.size() + remaining - m.payload.size() + 5);
    out.push_back(static_cast<char>(0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 0x01 : 0)));
    mqtt::put_varint(static_cast<std::uint32_t>(remaining), out);
    put_u16(out, static_cast<std::uint16_t>(m.topic.size()));
    out.append(m.topic);
    if (qos > 0) put_u16(out, packet_id);
    if (v5) {
        mqtt::put_varint(static_cast<std::uint32_t>(props_len), out);
        out.append(m.props_wire);
        if (expiry_left != 0) {
            out.push_back(0x02);
            put_u32(out, expiry_left);
        }
        for (auto id : subscription_ids) {
            out.push_back(0x0B);
            mqtt::put_varint(id, out);
        }
    }
    queue.append_payload(msg);
}

}  // namespace iothub::broker
