// The WebSocket frame decoder (RFC 6455 section 5) fed client frames written byte by byte.

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "net/websocket.hpp"
#include "ws_test_util.hpp"

namespace iothub::net::ws::test {
namespace {

// Feeds `wire` one byte at a time.
decoded decode_bytewise(const std::string& wire, std::uint64_t max_frame = 1 << 20) {
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < wire.size(); ++i) cuts.push_back(i);
    return decode(wire, cuts, max_frame);
}

TEST(ws_frame_decoder, rfc6455_examples) {
    // Section 5.7: a masked "Hello" pong, and a masked "Hello" text frame (refused: MQTT
    // travels in binary frames).
    const std::string pong_hello = "\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    EXPECT_EQ(decode(pong_hello), success("", {"pong:Hello"}));
    EXPECT_EQ(pong(std::string("Hello")), pong_hello);  // the helper agrees with the RFC
    const std::string text_hello = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    EXPECT_EQ(decode(text_hello), failure(close_unsupported_data));
}

TEST(ws_frame_decoder, binary_frames_of_every_length_form) {
    struct sizes {
        std::size_t payload;
        std::size_t header;  // 2 + 0, 2 or 8 length bytes + 4 mask bytes
    };
    for (const auto [n, header] : {sizes{0, 6}, sizes{1, 6}, sizes{125, 6}, sizes{126, 8},
                                   sizes{65535, 8}, sizes{65536, 14}, sizes{100000, 14}}) {
        SCOPED_TRACE(n);
        const auto payload = pattern(n);
        const auto wire = binary(payload);
        ASSERT_EQ(wire.size(), header + n);
        EXPECT_EQ(decode(wire), success(payload));
        EXPECT_EQ(decode_bytewise(wire), success(payload));
    }
}

TEST(ws_frame_decoder, masks_that_leave_nothing_alike) {
    for (const auto mask : {std::array<std::uint8_t, 4>{0, 0, 0, 0},
                            std::array<std::uint8_t, 4>{0xff, 0xff, 0xff, 0xff},
                            std::array<std::uint8_t, 4>{0x01, 0x80, 0x7f, 0xfe}}) {
        const auto payload = pattern(37, mask[2]);
        const auto wire = client_frame({.first = 0x82, .payload = payload, .mask = mask});
        EXPECT_EQ(decode(wire), success(payload));
    }
}

// Frames of every kind, lengths in all three forms, and a fragmented message with controls
// inside it.
std::string mixed_frames() {
    return binary("abc") + ping("p1") + binary("") + binary(pattern(200, 1)) + pong("") +
           binary("d", false) + continuation("", false) + ping("in the middle") +
           continuation("ef", false) + pong("x") + continuation("gh") + binary(pattern(70000, 2)) +
           binary("ij") + client_close(1000, "bye");
}

std::string mixed_stream() {
    return "abc" + pattern(200, 1) + "defgh" + pattern(70000, 2) + "ij";
}

std::vector<std::string> mixed_controls() {
    return {"ping:p1", "pong:", "ping:in the middle", "pong:x",
            "close:\x03\xe8"
            "bye"};
}

TEST(ws_frame_decoder, several_frames_in_one_buffer) {
    const auto wire = mixed_frames();
    EXPECT_EQ(decode(wire), success(mixed_stream(), mixed_controls(), true));
    EXPECT_EQ(decode_bytewise(wire), success(mixed_stream(), mixed_controls(), true));
}

TEST(ws_frame_decoder, every_split_in_two_feeds_gives_the_same) {
    // Small frames only, so that all cuts stay cheap; the 64-bit length's header is split below.
    const auto wire = binary("abc") + ping("p1") + binary("") + binary(pattern(200, 1)) + pong("") +
                      binary("d", false) + continuation("", false) + ping("in the middle") +
                      continuation("ef", false) + pong("x") + continuation("gh") + binary("ij") +
                      client_close(1001);
    const auto whole = decode(wire);
    ASSERT_TRUE(whole.ok);
    ASSERT_TRUE(whole.closed);
    ASSERT_EQ(whole.stream, "abc" + pattern(200, 1) + "defghij");
    for (std::size_t cut = 0; cut <= wire.size(); ++cut)
        EXPECT_EQ(decode(wire, {cut}), whole) << "cut at " << cut;
}

TEST(ws_frame_decoder, every_split_in_three_feeds_gives_the_same) {
    const auto wire = binary("ab", false) + ping("c") + continuation(pattern(130, 3)) + pong("") +
                      binary("z") + client_close("");
    const auto whole = decode(wire);
    ASSERT_EQ(whole, success("ab" + pattern(130, 3) + "z", {"ping:c", "pong:", "close:"}, true));
    for (std::size_t a = 0; a <= wire.size(); ++a)
        for (std::size_t b = a; b <= wire.size(); ++b)
            ASSERT_EQ(decode(wire, {a, b}), whole) << "cuts at " << a << " and " << b;
}

TEST(ws_frame_decoder, splits_in_a_64_bit_header_and_around_it) {
    const auto payload = pattern(65536, 4);
    const auto wire = binary("a") + binary(payload) + binary("b");
    const auto expected = success("a" + payload + "b");
    for (std::size_t cut = 0; cut < 30; ++cut) EXPECT_EQ(decode(wire, {cut}), expected) << cut;
    for (std::size_t cut = wire.size() - 20; cut <= wire.size(); ++cut)
        EXPECT_EQ(decode(wire, {cut}), expected) << cut;
    // Every byte of the header and the first payload bytes in feeds of their own.
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < 30; ++i) cuts.push_back(i);
    EXPECT_EQ(decode(wire, cuts), expected);
}

TEST(ws_frame_decoder, fragmented_message_carries_its_bytes) {
    const auto wire =
        binary("ab", false) + continuation("cd", false) + continuation("") + binary("next");
    EXPECT_EQ(decode(wire), success("abcdnext"));
    // A first fragment of zero bytes, and a long one.
    EXPECT_EQ(decode(binary("", false) + continuation(pattern(300, 5))), success(pattern(300, 5)));
}

TEST(ws_frame_decoder, controls_inside_a_fragmented_message) {
    const auto wire = binary("ab", false) + ping("1") + continuation("cd", false) + pong("2") +
                      continuation("ef");
    EXPECT_EQ(decode(wire), success("abcdef", {"ping:1", "pong:2"}));
    // The message still awaits its last fragment after them: a new binary frame is an error.
    EXPECT_EQ(decode(binary("ab", false) + ping("1") + binary("x")),
              failure(close_protocol_error, "ab", {"ping:1"}));
}

TEST(ws_frame_decoder, close_inside_a_fragmented_message_ends_it) {
    const auto wire = binary("ab", false) + client_close(1000) + continuation("cd");
    EXPECT_EQ(decode(wire), success("ab", {"close:\x03\xe8"}, true));
}

TEST(ws_frame_decoder, close_stops_decoding) {
    // After the close frame: a binary frame, then bytes that are no frame at all.
    const auto wire = binary("x") + client_close(1000, "bye") + binary("y") + "\x01\x7f\xff";
    const auto expected = success("x",
                                  {"close:\x03\xe8"
                                   "bye"},
                                  true);
    EXPECT_EQ(decode(wire), expected);
    EXPECT_EQ(decode_bytewise(wire), expected);
    // And later feeds decode nothing.
    frame_decoder decoder(1024);
    EXPECT_EQ(decode_pieces(decoder, client_close(""), {}), success("", {"close:"}, true));
    EXPECT_EQ(decode_pieces(decoder, binary("z") + ping(""), {}), success("", {}, true));
}

TEST(ws_frame_decoder, empty_feed_decodes_nothing) {
    frame_decoder decoder(1024);
    std::size_t out = 99;
    std::vector<frame_decoder::control> controls;
    EXPECT_TRUE(decoder.feed(nullptr, 0, out, controls));
    EXPECT_EQ(out, 0u);
    EXPECT_TRUE(controls.empty());
}

// Protocol violations, each with its close code. The data decoded before the bad frame is
// kept; once failed, the decoder refuses every later feed.
struct violation {
    const char* name;
    std::string frame;
    std::uint16_t code;
    bool closed = false;  // a close frame was decoded, then judged malformed
};

std::vector<violation> violations() {
    return {
        {"unmasked binary", client_frame({.first = 0x82, .payload = "x", .masked = false}),
         close_protocol_error},
        {"unmasked ping", client_frame({.first = 0x89, .payload = "", .masked = false}),
         close_protocol_error},
        {"RSV1 (no permessage-deflate)", client_frame({.first = 0xc2, .payload = "x"}),
         close_protocol_error},
        {"RSV2", client_frame({.first = 0xa2, .payload = "x"}), close_protocol_error},
        {"RSV3", client_frame({.first = 0x92, .payload = "x"}), close_protocol_error},
        {"RSV1 on a ping", client_frame({.first = 0xc9, .payload = ""}), close_protocol_error},
        {"text", client_frame({.first = 0x81, .payload = "{}"}), close_unsupported_data},
        {"opcode 3", client_frame({.first = 0x83, .payload = ""}), close_protocol_error},
        {"opcode 7", client_frame({.first = 0x87, .payload = ""}), close_protocol_error},
        {"opcode 0xb", client_frame({.first = 0x8b, .payload = ""}), close_protocol_error},
        {"opcode 0xf", client_frame({.first = 0x8f, .payload = ""}), close_protocol_error},
        {"continuation without a message", continuation("x"), close_protocol_error},
        {"unfinished continuation without a message", continuation("x", false),
         close_protocol_error},
        {"ping of 126 bytes", ping(pattern(126)), close_protocol_error},
        {"close of 126 bytes", client_close(1000, pattern(124)), close_protocol_error},
        {"pong of 65536 bytes", pong(pattern(65536)), close_protocol_error},
        {"fragmented ping", client_frame({.first = 0x09, .payload = ""}), close_protocol_error},
        {"fragmented close", client_frame({.first = 0x08, .payload = "\x03\xe8"}),
         close_protocol_error},
        {"125 in 16 bits",
         client_frame({.first = 0x82, .payload = pattern(125), .form = length_form::bits16}),
         close_protocol_error},
        {"0 in 16 bits", client_frame({.first = 0x82, .payload = "", .form = length_form::bits16}),
         close_protocol_error},
        {"65535 in 64 bits",
         client_frame({.first = 0x82, .payload = pattern(65535), .form = length_form::bits64}),
         close_protocol_error},
        {"126 in 64 bits",
         client_frame({.first = 0x82, .payload = pattern(126), .form = length_form::bits64}),
         close_protocol_error},
        {"5 in 64 bits on a ping",
         client_frame({.first = 0x89, .payload = "hello", .form = length_form::bits64}),
         close_protocol_error},
        {"length with the top bit set", std::string("\x82\xff\x80\0\0\0\0\0\0\0\1\2\3\4", 14),
         close_protocol_error},
        {"close of 1 byte", client_close(std::string("\x03")), close_protocol_error, true},
        {"close code 1005", client_close(1005), close_protocol_error, true},
        {"close code 1006", client_close(1006), close_protocol_error, true},
        {"close code 999", client_close(999), close_protocol_error, true},
        {"close code 0", client_close(0), close_protocol_error, true},
        {"close code 1004", client_close(1004, "x"), close_protocol_error, true},
        {"close code 1015", client_close(1015), close_protocol_error, true},
        {"close code 2999", client_close(2999), close_protocol_error, true},
        {"close code 5000", client_close(5000), close_protocol_error, true},
    };
}

TEST(ws_frame_decoder, violations_and_their_codes) {
    for (const auto& v : violations()) {
        SCOPED_TRACE(v.name);
        EXPECT_EQ(decode(v.frame), failure(v.code, "", {}, v.closed));
        // After good frames, whose bytes are kept, and fed a byte at a time.
        const auto wire = binary("ok") + ping("") + v.frame;
        EXPECT_EQ(decode_bytewise(wire), failure(v.code, "ok", {"ping:"}, v.closed));
    }
}

TEST(ws_frame_decoder, failed_decoder_refuses_every_later_feed) {
    for (const auto& v : violations()) {
        SCOPED_TRACE(v.name);
        frame_decoder decoder(1 << 20);
        const auto wire = binary("ab") + v.frame + binary("cd");
        EXPECT_EQ(decode_pieces(decoder, wire, {}).ok, false);
        EXPECT_EQ(decoder.error_code(), v.code);
        EXPECT_FALSE(decoder.error().empty());
        for (const auto& later : {binary("ef"), ping(""), std::string()}) {
            auto buffer = std::vector<std::uint8_t>(later.begin(), later.end());
            std::size_t out = 77;
            std::vector<frame_decoder::control> controls;
            EXPECT_FALSE(decoder.feed(buffer.data(), buffer.size(), out, controls));
            EXPECT_EQ(out, 0u);
            EXPECT_TRUE(controls.empty());
            EXPECT_EQ(decoder.error_code(), v.code);
        }
    }
}

TEST(ws_frame_decoder, unmasked_frame_is_refused_without_waiting_for_a_mask) {
    // An unmasked frame has no mask: a client that does not mask and then waits for an answer
    // (an empty close, an MQTT PINGREQ) must be answered with 1002, not left waiting for 4
    // bytes that will never come.
    EXPECT_EQ(decode(std::string("\x88\x00", 2)), failure(close_protocol_error));
    EXPECT_EQ(decode(std::string("\x82\x02\xc0\x00", 4)), failure(close_protocol_error));
    EXPECT_EQ(decode(binary("ok") + std::string("\x89\x00", 2)),
              failure(close_protocol_error, "ok"));
}

TEST(ws_frame_decoder, valid_close_codes) {
    for (const std::uint16_t code :
         {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999}) {
        const auto payload =
            std::string{static_cast<char>(code >> 8), static_cast<char>(code & 0xff)};
        EXPECT_EQ(decode(client_close(code)), success("", {"close:" + payload}, true)) << code;
    }
}

TEST(ws_frame_decoder, frame_over_max_frame_is_1009) {
    EXPECT_EQ(decode(binary(pattern(10)), {}, 10), success(pattern(10)));
    EXPECT_EQ(decode(binary(pattern(11)), {}, 10), failure(close_too_big));
    // Judged per frame, on the header alone, before the payload comes.
    EXPECT_EQ(decode(binary(pattern(100000)).substr(0, 14), {}, 65536), failure(close_too_big));
    EXPECT_EQ(decode(binary(pattern(10), false) + continuation(pattern(10)), {}, 10),
              success(pattern(10) + pattern(10)));
    EXPECT_EQ(decode(binary(pattern(10), false) + continuation(pattern(11)), {}, 10),
              failure(close_too_big, pattern(10)));
    // Control frames are bounded by 125 bytes, not by max_frame.
    EXPECT_EQ(decode(ping(pattern(125)), {}, 10), success("", {"ping:" + pattern(125)}));
    // A 64-bit length beyond any buffer.
    EXPECT_EQ(decode(std::string("\x82\xff\x7f\xff\xff\xff\xff\xff\xff\xff\1\2\3\4", 14)),
              failure(close_too_big));
}

TEST(ws_frame_decoder, set_max_frame_applies_to_later_frames) {
    frame_decoder decoder(10);
    EXPECT_EQ(decode_pieces(decoder, binary(pattern(10)), {}), success(pattern(10)));
    decoder.set_max_frame(100);
    EXPECT_EQ(decode_pieces(decoder, binary(pattern(100)), {}), success(pattern(100)));
    decoder.set_max_frame(5);
    EXPECT_EQ(decode_pieces(decoder, binary(pattern(6)), {}), failure(close_too_big));
}

}  // namespace
}  // namespace iothub::net::ws::test
