#pragma once
// Lean MQTT 3.1.1 / 5.0 packet building and parsing for the load generator. Only what a client
// needs; packets are appended to a byte vector, and the publish hot path patches a prepared
// template in place instead of encoding each message.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

// g++ 12 reports false -Wstringop-overflow on vector growth once these helpers are inlined
// (GCC bug 106199); the code writes only into space it has just resized.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif

namespace iothub::bench {

using bytes = std::vector<std::uint8_t>;

enum : std::uint8_t {
    pt_connect = 1,
    pt_connack = 2,
    pt_publish = 3,
    pt_puback = 4,
    pt_pubrec = 5,
    pt_pubrel = 6,
    pt_pubcomp = 7,
    pt_subscribe = 8,
    pt_suback = 9,
    pt_unsubscribe = 10,
    pt_unsuback = 11,
    pt_pingreq = 12,
    pt_pingresp = 13,
    pt_disconnect = 14,
};

inline std::size_t varint_size(std::uint32_t v) noexcept {
    return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

inline void append_varint(bytes& out, std::uint32_t v) {
    do {
        auto b = static_cast<std::uint8_t>(v & 0x7f);
        v >>= 7;
        if (v != 0) {
            b |= 0x80;
        }
        out.push_back(b);
    } while (v != 0);
}

inline void append_u16(bytes& out, std::uint16_t v) {
    out.push_back(static_cast<std::uint8_t>(v >> 8));
    out.push_back(static_cast<std::uint8_t>(v & 0xff));
}

inline void append_str(bytes& out, std::string_view s) {
    const std::size_t at = out.size();
    out.resize(at + 2 + s.size());
    std::uint8_t* p = out.data() + at;
    p[0] = static_cast<std::uint8_t>(s.size() >> 8);
    p[1] = static_cast<std::uint8_t>(s.size() & 0xff);
    if (!s.empty()) {
        std::memcpy(p + 2, s.data(), s.size());
    }
}

inline std::uint16_t read_u16(const std::uint8_t* p) noexcept {
    return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

// Wraps a body into a packet: first byte, remaining length, body.
inline void append_packet(bytes& out, std::uint8_t first, const bytes& body) {
    out.push_back(first);
    append_varint(out, static_cast<std::uint32_t>(body.size()));
    out.insert(out.end(), body.begin(), body.end());
}

inline void append_connect(bytes& out, std::string_view client_id, bool v5,
                           std::uint16_t keep_alive) {
    bytes body(v5 ? 11 : 10);
    const std::uint8_t head[11] = {0, 4, 'M', 'Q', 'T', 'T', static_cast<std::uint8_t>(v5 ? 5 : 4),
                                   0x02,  // clean session / clean start
                                   static_cast<std::uint8_t>(keep_alive >> 8),
                                   static_cast<std::uint8_t>(keep_alive & 0xff),
                                   0};  // v5: no properties
    std::memcpy(body.data(), head, body.size());
    append_str(body, client_id);
    append_packet(out, pt_connect << 4, body);
}

inline void append_subscribe(bytes& out, std::uint16_t packet_id,
                             const std::vector<std::string>& filters, int qos, bool v5) {
    bytes body;
    append_u16(body, packet_id);
    if (v5) {
        body.push_back(0);
    }
    for (const auto& f : filters) {
        append_str(body, f);
        body.push_back(static_cast<std::uint8_t>(qos));
    }
    append_packet(out, (pt_subscribe << 4) | 0x02, body);
}

inline void append_unsubscribe(bytes& out, std::uint16_t packet_id, std::string_view filter,
                               bool v5) {
    bytes body;
    append_u16(body, packet_id);
    if (v5) {
        body.push_back(0);
    }
    append_str(body, filter);
    append_packet(out, (pt_unsubscribe << 4) | 0x02, body);
}

// PUBACK, PUBREC, PUBREL, PUBCOMP: the short form (reason code success, no properties) is valid
// for both 3.1.1 and 5.0.
inline void append_ack(bytes& out, std::uint8_t type, std::uint16_t packet_id) {
    const std::uint8_t first = static_cast<std::uint8_t>((type << 4) | (type == pt_pubrel ? 2 : 0));
    const std::uint8_t p[4] = {first, 2, static_cast<std::uint8_t>(packet_id >> 8),
                               static_cast<std::uint8_t>(packet_id & 0xff)};
    out.insert(out.end(), p, p + 4);
}

inline void append_simple(bytes& out, std::uint8_t type) {
    out.push_back(static_cast<std::uint8_t>(type << 4));
    out.push_back(0);
}

// The first 16 bytes of every benchmark payload.
struct stamp {
    std::uint64_t sent_ns;    // steady clock
    std::uint32_t publisher;  // global publisher index
    std::uint32_t seq;        // per publisher, from 0
};
inline constexpr std::size_t stamp_size = 16;

// A PUBLISH prepared once per publisher; each message copies it and patches the packet id and
// the stamp.
struct publish_template {
    bytes data;
    std::size_t packet_id_at = 0;  // 0 when QoS 0
    std::size_t stamp_at = 0;

    void build(std::string_view topic, int qos, bool retain, bool v5, std::size_t payload) {
        data.clear();
        const std::size_t rem = 2 + topic.size() + (qos > 0 ? 2 : 0) + (v5 ? 1 : 0) + payload;
        data.push_back(static_cast<std::uint8_t>((pt_publish << 4) | (qos << 1) | (retain ? 1 : 0)));
        append_varint(data, static_cast<std::uint32_t>(rem));
        append_str(data, topic);
        packet_id_at = 0;
        if (qos > 0) {
            packet_id_at = data.size();
            append_u16(data, 0);
        }
        if (v5) {
            data.push_back(0);
        }
        stamp_at = data.size();
        data.resize(data.size() + payload);
        for (std::size_t i = stamp_size; i < payload; ++i) {
            data[stamp_at + i] = static_cast<std::uint8_t>('a' + i % 26);
        }
    }

    void append_to(bytes& out, std::uint16_t packet_id, const stamp& s) const {
        const std::size_t at = out.size();
        out.insert(out.end(), data.begin(), data.end());
        std::uint8_t* p = out.data() + at;
        if (packet_id_at != 0) {
            p[packet_id_at] = static_cast<std::uint8_t>(packet_id >> 8);
            p[packet_id_at + 1] = static_cast<std::uint8_t>(packet_id & 0xff);
        }
        std::memcpy(p + stamp_at, &s.sent_ns, 8);
        std::memcpy(p + stamp_at + 8, &s.publisher, 4);
        std::memcpy(p + stamp_at + 12, &s.seq, 4);
    }
};

// Fixed header at the front of buf. Returns 1 when whole, 0 when more bytes are needed,
// -1 on a malformed remaining length.
inline int read_fixed_header(const std::uint8_t* buf, std::size_t n, std::uint32_t& remaining,
                             std::size_t& header) noexcept {
    std::uint32_t v = 0;
    for (std::size_t i = 1; i <= 4; ++i) {
        if (i >= n) {
            return 0;
        }
        v |= static_cast<std::uint32_t>(buf[i] & 0x7f) << (7 * (i - 1));
        if ((buf[i] & 0x80) == 0) {
            remaining = v;
            header = i + 1;
            return 1;
        }
    }
    return -1;
}

// Skips a variable byte integer; returns its size, 0 when malformed or truncated.
inline std::size_t skip_varint(const std::uint8_t* p, std::size_t n, std::uint32_t& v) noexcept {
    v = 0;
    for (std::size_t i = 0; i < 4 && i < n; ++i) {
        v |= static_cast<std::uint32_t>(p[i] & 0x7f) << (7 * i);
        if ((p[i] & 0x80) == 0) {
            return i + 1;
        }
    }
    return 0;
}

}  // namespace iothub::bench

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
