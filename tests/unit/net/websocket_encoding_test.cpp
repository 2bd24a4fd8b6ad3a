// The WebSocket encoders: encode_header, mask_payload, control_frame, close_frame and
// close_code_of, against RFC 6455's examples and through the decoder.

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "net/websocket.hpp"
#include "ws_test_util.hpp"

namespace iothub::net::ws::test {
namespace {

std::string header_of(opcode op, std::uint64_t length, bool fin = true,
                      const std::uint8_t* mask = nullptr) {
    std::uint8_t buffer[14];
    const auto n = encode_header(buffer, op, length, fin, mask);
    EXPECT_GE(n, 2u);
    EXPECT_LE(n, 14u);
    return std::string(reinterpret_cast<const char*>(buffer), n);
}

std::string bytes(std::initializer_list<int> values) {
    std::string s;
    for (int v : values) s.push_back(static_cast<char>(v));
    return s;
}

TEST(ws_encode_header, rfc6455_examples) {
    // Section 5.7.
    EXPECT_EQ(header_of(opcode::text, 5), bytes({0x81, 0x05}));
    EXPECT_EQ(header_of(opcode::text, 5, true, rfc_mask.data()),
              bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d}));
    EXPECT_EQ(header_of(opcode::text, 3, false), bytes({0x01, 0x03}));
    EXPECT_EQ(header_of(opcode::continuation, 2), bytes({0x80, 0x02}));
    EXPECT_EQ(header_of(opcode::ping, 5), bytes({0x89, 0x05}));
    EXPECT_EQ(header_of(opcode::pong, 5, true, rfc_mask.data()),
              bytes({0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d}));
    EXPECT_EQ(header_of(opcode::binary, 256), bytes({0x82, 0x7e, 0x01, 0x00}));
    EXPECT_EQ(header_of(opcode::binary, 65536),
              bytes({0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}));
}

TEST(ws_encode_header, length_forms_at_their_bounds) {
    EXPECT_EQ(header_of(opcode::binary, 0), bytes({0x82, 0x00}));
    EXPECT_EQ(header_of(opcode::binary, 125), bytes({0x82, 0x7d}));
    EXPECT_EQ(header_of(opcode::binary, 126), bytes({0x82, 0x7e, 0x00, 0x7e}));
    EXPECT_EQ(header_of(opcode::binary, 65535), bytes({0x82, 0x7e, 0xff, 0xff}));
    EXPECT_EQ(header_of(opcode::binary, 0x0102030405060708ull),
              bytes({0x82, 0x7f, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}));
    const std::uint8_t mask[4] = {1, 2, 3, 4};
    EXPECT_EQ(header_of(opcode::binary, 70000, false, mask),
              bytes({0x02, 0xff, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70, 1, 2, 3, 4}));
}

TEST(ws_encode_header, agrees_with_the_test_client_frames) {
    for (const std::size_t n : {0u, 1u, 125u, 126u, 65535u, 65536u, 100000u}) {
        const auto payload = pattern(n);
        const auto expected = binary(payload);  // masked with rfc_mask
        auto wire = header_of(opcode::binary, n, true, rfc_mask.data());
        std::string masked = payload;
        mask_payload(reinterpret_cast<std::uint8_t*>(masked.data()), masked.size(),
                     rfc_mask.data());
        EXPECT_EQ(wire + masked, expected) << n;
    }
}

// RFC 6455 section 5.3: octet i of the masked data is octet i XOR mask[i mod 4].
std::vector<std::uint8_t> mask_bytewise(std::vector<std::uint8_t> data, const std::uint8_t mask[4],
                                        std::uint64_t offset) {
    for (std::size_t i = 0; i < data.size(); ++i) data[i] ^= mask[(offset + i) % 4];
    return data;
}

TEST(ws_mask_payload, rfc6455_example) {
    std::string hello = "Hello";
    mask_payload(reinterpret_cast<std::uint8_t*>(hello.data()), hello.size(), rfc_mask.data());
    EXPECT_EQ(hello, bytes({0x7f, 0x9f, 0x4d, 0x51, 0x58}));
}

TEST(ws_mask_payload, every_offset_and_length_is_bytewise) {
    const std::uint8_t mask[4] = {0xa1, 0x5b, 0x00, 0xfe};
    for (std::uint64_t offset = 0; offset < 4; ++offset) {
        for (std::size_t n = 0; n <= 20; ++n) {
            // At every alignment of the data, in a buffer of exactly the bytes masked.
            for (std::size_t skew = 0; skew < 8; ++skew) {
                const auto text = pattern(skew + n, static_cast<unsigned>(offset));
                const std::vector<std::uint8_t> plain(text.begin(), text.end());
                auto data = plain;
                mask_payload(data.data() + skew, n, mask, offset);
                const std::vector<std::uint8_t> tail(
                    plain.begin() + static_cast<std::ptrdiff_t>(skew), plain.end());
                const auto expected = mask_bytewise(tail, mask, offset);
                EXPECT_TRUE(std::equal(
                    data.begin(), data.begin() + static_cast<std::ptrdiff_t>(skew), plain.begin()))
                    << "bytes before the data changed";
                EXPECT_TRUE(std::equal(data.begin() + static_cast<std::ptrdiff_t>(skew), data.end(),
                                       expected.begin()))
                    << "offset " << offset << ", length " << n << ", skew " << skew;
            }
        }
    }
}

TEST(ws_mask_payload, large_offsets_wrap_modulo_4) {
    const std::uint8_t mask[4] = {1, 2, 4, 8};
    const std::uint64_t offsets[] = {4, 5, 7, 0xffffffff, 0x100000001, ~std::uint64_t{0}};
    for (const std::uint64_t offset : offsets) {
        std::vector<std::uint8_t> data(19, 0x55);
        const auto expected = mask_bytewise(data, mask, offset);
        mask_payload(data.data(), data.size(), mask, offset);
        EXPECT_EQ(data, expected) << offset;
    }
}

TEST(ws_mask_payload, masking_twice_restores_and_pieces_equal_the_whole) {
    const std::uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    const auto plain = pattern(1000, 9);
    std::string whole = plain;
    mask_payload(reinterpret_cast<std::uint8_t*>(whole.data()), whole.size(), mask);
    EXPECT_NE(whole, plain);
    // In pieces of 1 to 13 bytes, each continuing at its offset.
    std::string pieces = plain;
    std::size_t at = 0;
    for (std::size_t step = 1; at < pieces.size(); step = step % 13 + 1) {
        const auto n = std::min(step, pieces.size() - at);
        mask_payload(reinterpret_cast<std::uint8_t*>(pieces.data() + at), n, mask, at);
        at += n;
    }
    EXPECT_EQ(pieces, whole);
    mask_payload(reinterpret_cast<std::uint8_t*>(whole.data()), whole.size(), mask);
    EXPECT_EQ(whole, plain);
}

// A server frame made into a client's: the mask bit set, the mask inserted after the length,
// the payload masked (by the test's own loop).
std::string as_client_frame(const std::string& server_frame, std::array<std::uint8_t, 4> mask) {
    const auto len7 = static_cast<std::uint8_t>(server_frame.at(1)) & 0x7f;
    EXPECT_EQ(static_cast<std::uint8_t>(server_frame[1]) & 0x80, 0) << "server frames are unmasked";
    const std::size_t header = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
    std::string wire = server_frame.substr(0, header);
    wire[1] = static_cast<char>(wire[1] | 0x80);
    for (auto b : mask) wire.push_back(static_cast<char>(b));
    for (std::size_t i = header; i < server_frame.size(); ++i)
        wire.push_back(static_cast<char>(server_frame[i] ^ mask[(i - header) % 4]));
    return wire;
}

TEST(ws_control_frame, rfc6455_examples_and_limits) {
    EXPECT_EQ(control_frame(opcode::ping, "Hello"), bytes({0x89, 0x05, 'H', 'e', 'l', 'l', 'o'}));
    EXPECT_EQ(control_frame(opcode::pong, ""), bytes({0x8a, 0x00}));
    const auto cut = control_frame(opcode::ping, pattern(300));
    EXPECT_EQ(cut, bytes({0x89, 125}) + pattern(125));
}

TEST(ws_control_frame, round_trips_through_the_decoder) {
    for (const auto op : {opcode::ping, opcode::pong}) {
        for (const std::size_t n : {0u, 1u, 124u, 125u, 126u, 500u}) {
            const auto payload = pattern(n, 3);
            const auto wire = as_client_frame(control_frame(op, payload), {9, 8, 7, 6});
            const auto d = decode(wire);
            const auto name = std::string(op == opcode::ping ? "ping:" : "pong:");
            EXPECT_EQ(d, success("", {name + payload.substr(0, 125)})) << n;
        }
    }
}

TEST(ws_close_frame, encodes_code_and_reason) {
    EXPECT_EQ(close_frame(1000, "bye"), bytes({0x88, 0x05, 0x03, 0xe8, 'b', 'y', 'e'}));
    EXPECT_EQ(close_frame(close_going_away), bytes({0x88, 0x02, 0x03, 0xe9}));
    EXPECT_EQ(close_frame(close_too_big, pattern(200)),
              bytes({0x88, 125, 0x03, 0xf1}) + pattern(123));
}

TEST(ws_close_frame, round_trips_through_the_decoder_and_close_code_of) {
    for (const std::uint16_t code : {close_normal, close_going_away, close_protocol_error,
                                     close_unsupported_data, close_too_big, std::uint16_t{4000}}) {
        for (const std::string& reason :
             {std::string(), std::string("why"), pattern(123, 1), pattern(200, 1)}) {
            const auto wire = as_client_frame(close_frame(code, reason), {0xde, 0xad, 0xbe, 0xef});
            frame_decoder decoder(16);
            std::vector<std::uint8_t> buffer(wire.begin(), wire.end());
            std::size_t out = 1;
            std::vector<frame_decoder::control> controls;
            ASSERT_TRUE(decoder.feed(buffer.data(), buffer.size(), out, controls))
                << decoder.error();
            EXPECT_EQ(out, 0u);
            EXPECT_TRUE(decoder.closed());
            ASSERT_EQ(controls.size(), 1u);
            EXPECT_EQ(controls[0].op, opcode::close);
            EXPECT_EQ(close_code_of(controls[0].payload), code);
            EXPECT_EQ(controls[0].payload.substr(2), reason.substr(0, 123));
        }
    }
}

TEST(ws_close_code_of, codes) {
    EXPECT_EQ(close_code_of(""), 1005);
    EXPECT_EQ(close_code_of(bytes({0x03})), 0);
    EXPECT_EQ(close_code_of(bytes({0x03, 0xe8})), 1000);
    EXPECT_EQ(close_code_of(bytes({0x03, 0xe8, 'x', 'y'})), 1000);
    EXPECT_EQ(close_code_of(bytes({0x0f, 0xa0})), 4000);
    for (const int code :
         {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999})
        EXPECT_EQ(close_code_of(bytes({code >> 8, code & 0xff})), code);
    // Not sent on the wire (1005, 1006, 1015), unassigned, or out of range.
    for (const int code : {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 0xffff})
        EXPECT_EQ(close_code_of(bytes({code >> 8, code & 0xff})), 0) << code;
}

TEST(ws_round_trip, masked_frames_encode_decode_equal) {
    const std::uint8_t mask[4] = {0x5a, 0x01, 0xc3, 0x80};
    for (const std::size_t n : {0u, 1u, 3u, 125u, 126u, 1000u, 65535u, 65536u, 100000u}) {
        const auto payload = pattern(n, 11);
        // As the load generator sends an MQTT packet: one frame, or two fragments.
        std::string wire;
        std::uint8_t header[14];
        wire.append(reinterpret_cast<const char*>(header),
                    encode_header(header, opcode::binary, n, true, mask));
        std::string body = payload;
        mask_payload(reinterpret_cast<std::uint8_t*>(body.data()), body.size(), mask);
        wire += body;

        const std::size_t half = n / 2;
        std::string first = payload.substr(0, half);
        std::string second = payload.substr(half);
        wire.append(reinterpret_cast<const char*>(header),
                    encode_header(header, opcode::binary, first.size(), false, mask));
        mask_payload(reinterpret_cast<std::uint8_t*>(first.data()), first.size(), mask);
        wire += first;
        wire.append(reinterpret_cast<const char*>(header),
                    encode_header(header, opcode::continuation, second.size(), true, mask));
        mask_payload(reinterpret_cast<std::uint8_t*>(second.data()), second.size(), mask);
        wire += second;

        EXPECT_EQ(decode(wire), success(payload + payload)) << n;
    }
}

}  // namespace
}  // namespace iothub::net::ws::test
