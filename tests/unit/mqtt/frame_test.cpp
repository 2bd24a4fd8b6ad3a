// Fixed header: packet type, reserved flags, remaining length, maximum packet size.

#include "mqtt_test_util.hpp"

namespace iothub::mqtt::test {
namespace {

constexpr auto v311 = protocol_version::v311;

decode_status frame_of(const std::string& wire, frame& f, decode_error& err,
                       std::uint32_t max = 0) {
    return read_frame(as_bytes(wire), max, f, err);
}

::testing::AssertionResult frame_fails_with(const std::string& wire, reason_code code,
                                            std::uint32_t max = 0) {
    frame f;
    decode_error err;
    const auto st = frame_of(wire, f, err, max);
    if (st != decode_status::error)
        return ::testing::AssertionFailure() << hex(wire) << " status " << static_cast<int>(st);
    if (err.code != code)
        return ::testing::AssertionFailure() << hex(wire) << " failed with " << to_string(err.code);
    if (err.message[0] == '\0') return ::testing::AssertionFailure() << "no message";
    return ::testing::AssertionSuccess();
}

TEST(Frame, EmptyBufferNeedsMore) {
    frame f;
    decode_error err;
    EXPECT_EQ(frame_of("", f, err), decode_status::need_more);
}

TEST(Frame, TypeByteAloneNeedsMore) {
    frame f;
    decode_error err;
    EXPECT_EQ(frame_of(bytes({0x30}), f, err), decode_status::need_more);
}

TEST(Frame, PartialRemainingLengthNeedsMore) {
    frame f;
    decode_error err;
    EXPECT_EQ(frame_of(bytes({0x30, 0xFF, 0xFF, 0xFF}), f, err), decode_status::need_more);
}

TEST(Frame, ReadsTypeFlagsAndLength) {
    frame f;
    decode_error err;
    ASSERT_EQ(frame_of(bytes({0x3B, 0x80, 0x01}), f, err), decode_status::ok);
    EXPECT_EQ(f.type, packet_type::publish);
    EXPECT_EQ(f.flags, 0x0B);
    EXPECT_EQ(f.header_size, 3u);
    EXPECT_EQ(f.remaining_length, 128u);
    EXPECT_EQ(f.total_size(), 131u);
}

TEST(Frame, MaximumRemainingLength) {
    frame f;
    decode_error err;
    ASSERT_EQ(frame_of(bytes({0x30, 0xFF, 0xFF, 0xFF, 0x7F}), f, err), decode_status::ok);
    EXPECT_EQ(f.remaining_length, 268'435'455u);
    EXPECT_EQ(f.header_size, 5u);
}

TEST(Frame, NonMinimalRemainingLengthIsAccepted) {
    frame f;
    decode_error err;
    ASSERT_EQ(frame_of(bytes({0xC0, 0x80, 0x00}), f, err), decode_status::ok);
    EXPECT_EQ(f.remaining_length, 0u);
    EXPECT_EQ(f.header_size, 3u);
}

TEST(Frame, FifthRemainingLengthByteIsMalformed) {
    EXPECT_TRUE(frame_fails_with(bytes({0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}),
                                 reason_code::malformed_packet));
    EXPECT_TRUE(frame_fails_with(bytes({0x30, 0x80, 0x80, 0x80, 0x80}),
                                 reason_code::malformed_packet));
}

TEST(Frame, PacketType0IsMalformed) {
    EXPECT_TRUE(frame_fails_with(bytes({0x00, 0x00}), reason_code::malformed_packet));
}

TEST(Frame, PubrelFlagsMustBe0010) {
    EXPECT_TRUE(frame_fails_with(bytes({0x60, 0x02, 0x00, 0x01}), reason_code::malformed_packet));
    EXPECT_TRUE(frame_fails_with(bytes({0x63, 0x02, 0x00, 0x01}), reason_code::malformed_packet));
}

TEST(Frame, SubscribeFlagsMustBe0010) {
    EXPECT_TRUE(frame_fails_with(bytes({0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00}),
                                 reason_code::malformed_packet));
}

TEST(Frame, UnsubscribeFlagsMustBe0010) {
    EXPECT_TRUE(frame_fails_with(bytes({0xA0, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'}),
                                 reason_code::malformed_packet));
}

TEST(Frame, OtherTypesFlagsMustBeZero) {
    for (int type : {1, 2, 4, 5, 7, 9, 11, 12, 13, 14, 15}) {
        for (int flags = 1; flags < 16; ++flags)
            EXPECT_TRUE(frame_fails_with(bytes({(type << 4) | flags, 0x00}),
                                         reason_code::malformed_packet))
                << type << " " << flags;
    }
}

TEST(Frame, PublishQos3IsMalformed) {
    EXPECT_TRUE(frame_fails_with(bytes({0x36, 0x03, 0x00, 0x01, 't'}),
                                 reason_code::malformed_packet));
}

TEST(Frame, PublishAnyOtherFlagsAccepted) {
    for (int flags : {0x0, 0x1, 0x2, 0x3, 0x4, 0x5, 0x8, 0x9, 0xA, 0xB, 0xC, 0xD}) {
        frame f;
        decode_error err;
        EXPECT_EQ(frame_of(bytes({0x30 | flags, 0x00}), f, err), decode_status::ok) << flags;
    }
}

TEST(Frame, PacketTooLarge) {
    publish p;
    p.topic = "t";
    p.payload.assign(100, 'x');
    const auto wire = encoded(p, v311);
    EXPECT_TRUE(frame_fails_with(wire, reason_code::packet_too_large,
                                 static_cast<std::uint32_t>(wire.size() - 1)));
    frame f;
    decode_error err;
    EXPECT_EQ(frame_of(wire, f, err, static_cast<std::uint32_t>(wire.size())), decode_status::ok);
}

TEST(Frame, PacketTooLargeKnownFromHeaderAlone) {
    // Only the fixed header has arrived; the declared size already exceeds the limit.
    EXPECT_TRUE(frame_fails_with(bytes({0x30, 0xFF, 0xFF, 0x03}), reason_code::packet_too_large,
                                 1024));
}

TEST(Frame, ZeroMaximumMeansUnlimited) {
    frame f;
    decode_error err;
    EXPECT_EQ(frame_of(bytes({0x30, 0xFF, 0xFF, 0xFF, 0x7F}), f, err, 0), decode_status::ok);
}

TEST(Decode, BodyShorterThanRemainingLengthIsMalformed) {
    frame f;
    f.type = packet_type::puback;
    f.header_size = 2;
    f.remaining_length = 2;
    packet p;
    decode_error err;
    const auto body = bytes({0x00});
    EXPECT_EQ(decode(f, as_bytes(body), v311, p, err), decode_status::error);
    EXPECT_EQ(err.code, reason_code::malformed_packet);
}

TEST(Decode, BodyLongerThanRemainingLengthReadsOnlyThePacket) {
    frame f;
    f.type = packet_type::puback;
    f.header_size = 2;
    f.remaining_length = 2;
    packet p;
    decode_error err;
    const auto body = bytes({0x00, 0x05, 0xC0, 0x00});
    ASSERT_EQ(decode(f, as_bytes(body), v311, p, err), decode_status::ok);
    const packet expected = ack{packet_type::puback, 5, reason_code::success, {}};
    EXPECT_EQ(p, expected);
}

TEST(Decode, ChecksFlagsOfHandBuiltFrame) {
    frame f;
    f.type = packet_type::subscribe;
    f.flags = 0;
    f.header_size = 2;
    packet p;
    decode_error err;
    EXPECT_EQ(decode(f, {}, v311, p, err), decode_status::error);
    EXPECT_EQ(err.code, reason_code::malformed_packet);
}

TEST(PacketNames, TypesAndReasons) {
    EXPECT_STREQ(to_string(packet_type::connect), "CONNECT");
    EXPECT_STREQ(to_string(packet_type::auth), "AUTH");
    EXPECT_STREQ(to_string(reason_code::malformed_packet), "malformed packet");
    EXPECT_EQ(type_of(packet{ack{packet_type::pubrec, 1, reason_code::success, {}}}),
              packet_type::pubrec);
    EXPECT_EQ(type_of(packet{unsuback{}}), packet_type::unsuback);
    EXPECT_TRUE(is_error(reason_code::unspecified_error));
    EXPECT_FALSE(is_error(reason_code::granted_qos_2));
}

}  // namespace
}  // namespace iothub::mqtt::test
