#pragma once
// Helpers shared by the codec tests: hand-written byte strings and one-call decoding.

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <span>
#include <string>
#include <string_view>

#include "mqtt/codec.hpp"

namespace iothub::mqtt::test {

inline std::string bytes(std::initializer_list<int> values) {
    std::string out;
    for (int v : values) out.push_back(static_cast<char>(v));
    return out;
}

inline std::span<const std::uint8_t> as_bytes(const std::string& s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

inline std::string hex(const std::string& s) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
        if (!out.empty()) out.push_back(' ');
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 0x0F]);
    }
    return out;
}

// A UTF-8 string or binary field: two-byte length, then the bytes.
inline std::string str(std::string_view s) {
    std::string out;
    out.push_back(static_cast<char>(s.size() >> 8));
    out.push_back(static_cast<char>(s.size() & 0xFF));
    out.append(s);
    return out;
}

inline std::string u16(int v) { return bytes({(v >> 8) & 0xFF, v & 0xFF}); }

// A whole packet: first byte, remaining length, body.
inline std::string with_header(int first_byte, const std::string& body) {
    std::string out = bytes({first_byte});
    put_varint(static_cast<std::uint32_t>(body.size()), out);
    return out + body;
}

// A v5 property list with its length prefix.
inline std::string props(const std::string& items) {
    std::string out;
    put_varint(static_cast<std::uint32_t>(items.size()), out);
    return out + items;
}

struct decoded {
    decode_status status = decode_status::error;
    packet pkt;
    decode_error err;
    frame f;
};

// Every PUBLISH is also decoded with decode_publish() into an object left over from another
// packet (long topic and payload, flags, id; on v5 properties), as a broker's reused PUBLISH
// is: the outcome must be the same as decode()'s, or the test sees a failure.
inline void check_reused_publish(decoded& d, const std::string& wire, protocol_version v) {
    publish stale;
    stale.topic.assign(40, 's');
    stale.payload.assign(5000, 'z');
    stale.packet_id = 99;
    stale.dup = stale.retain = true;
    stale.qos = 2;
    if (v == protocol_version::v5) {
        stale.props.topic_alias = 3;
        stale.props.user_properties.push_back({"k", "v"});
        stale.props.content_type = "stale";
    }
    decode_error err;
    const auto status =
        decode_publish(d.f, as_bytes(wire).subspan(d.f.header_size), v, stale, err);
    const auto* whole = std::get_if<publish>(&d.pkt);
    const bool same = status == d.status &&
                      (status == decode_status::ok ? whole != nullptr && *whole == stale
                                                   : err.code == d.err.code);
    if (!same) {
        d.status = decode_status::error;
        d.err.code = reason_code::implementation_specific_error;
        d.err.message = "decode_publish() into a reused object disagrees with decode()";
    }
}

// Reads the frame and decodes the one packet `wire` must hold exactly.
inline decoded decode_wire(const std::string& wire, protocol_version v,
                           std::uint32_t max_packet_size = 0) {
    decoded d;
    d.status = read_frame(as_bytes(wire), max_packet_size, d.f, d.err);
    if (d.status != decode_status::ok) return d;
    if (d.f.total_size() != wire.size()) {
        d.status = d.f.total_size() > wire.size() ? decode_status::need_more : decode_status::error;
        d.err.message = "test input holds more than one packet";
        return d;
    }
    d.status = decode(d.f, as_bytes(wire).subspan(d.f.header_size), v, d.pkt, d.err);
    if (d.f.type == packet_type::publish) check_reused_publish(d, wire, v);
    return d;
}

inline std::string encoded(const packet& p, protocol_version v) {
    std::string out;
    encode(p, v, out);
    return out;
}

// Expects decoding to fail with `code` and a non-empty message.
inline ::testing::AssertionResult fails_with(const std::string& wire, protocol_version v,
                                             reason_code code) {
    const auto d = decode_wire(wire, v);
    if (d.status != decode_status::error)
        return ::testing::AssertionFailure()
               << "decoding " << hex(wire) << " did not fail (status "
               << static_cast<int>(d.status) << ")";
    if (d.err.code != code)
        return ::testing::AssertionFailure()
               << "decoding " << hex(wire) << " failed with " << to_string(d.err.code) << " ("
               << d.err.message << "), expected " << to_string(code);
    if (d.err.message == nullptr || d.err.message[0] == '\0')
        return ::testing::AssertionFailure() << "error without a message";
    return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult decodes(const std::string& wire, protocol_version v) {
    const auto d = decode_wire(wire, v);
    if (d.status != decode_status::ok)
        return ::testing::AssertionFailure() << "decoding " << hex(wire) << " failed: "
                                             << to_string(d.err.code) << " (" << d.err.message
                                             << ")";
    return ::testing::AssertionSuccess();
}

template <typename T>
T decode_as(const std::string& wire, protocol_version v) {
    const auto d = decode_wire(wire, v);
    EXPECT_EQ(d.status, decode_status::ok) << hex(wire) << ": " << d.err.message;
    const T* p = std::get_if<T>(&d.pkt);
    EXPECT_NE(p, nullptr) << "decoded to another packet type";
    return p ? *p : T{};
}

}  // namespace iothub::mqtt::test

namespace iothub::mqtt {
// Readable failure output: the packet type and its v5 encoding.
inline void PrintTo(const packet& p, std::ostream* os) {
    *os << to_string(type_of(p)) << " [" << test::hex(test::encoded(p, protocol_version::v5))
        << "]";
}
}  // namespace iothub::mqtt
