#pragma once
// Client frames written byte by byte from RFC 6455 section 5.2, independently of
// encode_header() and mask_payload(), so a symmetric bug in the codec cannot cancel itself out;
// and a decoder driver that feeds a wire image in chunks, each in its own buffer.

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/websocket.hpp"

namespace iothub::net::ws::test {

inline constexpr std::array<std::uint8_t, 4> rfc_mask = {0x37, 0xfa, 0x21, 0x3d};

// How the payload length is written: the shortest form, or a forced one (non-minimal).
enum class length_form { minimal, bits7, bits16, bits64 };

struct frame_spec {
    std::uint8_t first = 0x82;  // FIN, RSV1-3 and opcode, as on the wire
    std::string payload;
    bool masked = true;
    std::array<std::uint8_t, 4> mask = rfc_mask;
    length_form form = length_form::minimal;
};

inline std::string client_frame(const frame_spec& f) {
    std::string wire;
    wire.push_back(static_cast<char>(f.first));
    const std::uint64_t n = f.payload.size();
    const char mask_bit = f.masked ? char(0x80) : char(0);
    length_form form = f.form;
    if (form == length_form::minimal)
        form = n < 126 ? length_form::bits7 : n < 65536 ? length_form::bits16 : length_form::bits64;
    if (form == length_form::bits7) {
        wire.push_back(static_cast<char>(mask_bit | static_cast<char>(n)));
    } else if (form == length_form::bits16) {
        wire.push_back(static_cast<char>(mask_bit | 126));
        wire.push_back(static_cast<char>((n >> 8) & 0xff));
        wire.push_back(static_cast<char>(n & 0xff));
    } else {
        wire.push_back(static_cast<char>(mask_bit | 127));
        for (int shift = 56; shift >= 0; shift -= 8)
            wire.push_back(static_cast<char>((n >> shift) & 0xff));
    }
    if (f.masked) {
        for (auto b : f.mask) wire.push_back(static_cast<char>(b));
        for (std::size_t i = 0; i < f.payload.size(); ++i)
            wire.push_back(
                static_cast<char>(static_cast<std::uint8_t>(f.payload[i]) ^ f.mask[i % 4]));
    } else {
        wire += f.payload;
    }
    return wire;
}

// Masked client frames of the common kinds.
inline std::string binary(std::string_view payload, bool fin = true) {
    return client_frame(
        {.first = std::uint8_t(fin ? 0x82 : 0x02), .payload = std::string(payload)});
}
inline std::string continuation(std::string_view payload, bool fin = true) {
    return client_frame(
        {.first = std::uint8_t(fin ? 0x80 : 0x00), .payload = std::string(payload)});
}
inline std::string ping(std::string_view payload) {
    return client_frame({.first = 0x89, .payload = std::string(payload)});
}
inline std::string pong(std::string_view payload) {
    return client_frame({.first = 0x8a, .payload = std::string(payload)});
}
inline std::string client_close(std::string_view payload) {
    return client_frame({.first = 0x88, .payload = std::string(payload)});
}
inline std::string client_close(std::uint16_t code, std::string_view reason = {}) {
    std::string payload{static_cast<char>(code >> 8), static_cast<char>(code & 0xff)};
    payload += reason;
    return client_close(payload);
}

// `n` bytes that are not all alike, so a misplaced byte shows.
inline std::string pattern(std::size_t n, unsigned seed = 0) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>((i * 131 + seed * 7 + i / 251) & 0xff);
    return s;
}

// What a decoder made of a wire image.
struct decoded {
    std::string stream;                 // the data frames' bytes, in order
    std::vector<std::string> controls;  // "ping:<payload>", "pong:...", "close:..."
    bool ok = true;
    std::uint16_t code = 0;
    bool closed = false;

    bool operator==(const decoded&) const = default;
};

inline decoded success(std::string stream, std::vector<std::string> controls = {},
                       bool closed = false) {
    return {std::move(stream), std::move(controls), true, 0, closed};
}

inline decoded failure(std::uint16_t code, std::string stream = {},
                       std::vector<std::string> controls = {}, bool closed = false) {
    return {std::move(stream), std::move(controls), false, code, closed};
}

inline std::string describe(const frame_decoder::control& c) {
    const char* name = c.op == opcode::ping    ? "ping:"
                       : c.op == opcode::pong  ? "pong:"
                       : c.op == opcode::close ? "close:"
                                               : "other:";
    return name + c.payload;
}

inline void PrintTo(const decoded& d, std::ostream* os) {
    *os << "{stream " << d.stream.size() << " bytes, controls [";
    for (const auto& c : d.controls) *os << c << ' ';
    *os << "], ok " << d.ok << ", code " << d.code << ", closed " << d.closed << '}';
}

// Feeds `wire` cut at `cuts` (ascending offsets), each piece copied into a buffer of its own
// size so AddressSanitizer sees any read or write past it. Stops feeding after a failure.
inline decoded decode_pieces(frame_decoder& decoder, std::string_view wire,
                             const std::vector<std::size_t>& cuts) {
    decoded d;
    std::size_t from = 0;
    for (std::size_t i = 0; i <= cuts.size() && d.ok; ++i) {
        const std::size_t to = i < cuts.size() ? cuts[i] : wire.size();
        std::vector<std::uint8_t> buffer(wire.begin() + static_cast<std::ptrdiff_t>(from),
                                         wire.begin() + static_cast<std::ptrdiff_t>(to));
        std::size_t out = 12345;
        std::vector<frame_decoder::control> controls;
        d.ok = decoder.feed(buffer.data(), buffer.size(), out, controls);
        EXPECT_LE(out, buffer.size());
        d.stream.append(reinterpret_cast<const char*>(buffer.data()), std::min(out, buffer.size()));
        for (const auto& c : controls) d.controls.push_back(describe(c));
        from = to;
    }
    d.code = decoder.error_code();
    d.closed = decoder.closed();
    return d;
}

inline decoded decode(std::string_view wire, const std::vector<std::size_t>& cuts = {},
                      std::uint64_t max_frame = 1 << 20) {
    frame_decoder decoder(max_frame);
    return decode_pieces(decoder, wire, cuts);
}

}  // namespace iothub::net::ws::test
