// Decoding of PUBLISH, the acknowledgements, SUBSCRIBE/SUBACK, UNSUBSCRIBE/UNSUBACK,
// PINGREQ/PINGRESP, DISCONNECT and AUTH, and each malformed form of them.

#include "mqtt_test_util.hpp"

namespace iothub::mqtt::test {
namespace {

constexpr auto v31 = protocol_version::v31;
constexpr auto v311 = protocol_version::v311;
constexpr auto v5 = protocol_version::v5;

// ---- PUBLISH ----

TEST(DecodePublish, FlagsTopicIdPayload) {
    const auto p = decode_as<publish>(with_header(0x3D, str("a/b") + u16(7) + "data"), v311);
    EXPECT_TRUE(p.dup);
    EXPECT_EQ(p.qos, 2);
    EXPECT_TRUE(p.retain);
    EXPECT_EQ(p.topic, "a/b");
    EXPECT_EQ(p.packet_id, 7);
    EXPECT_EQ(p.payload, "data");
}

TEST(DecodePublish, EmptyPayload) {
    const auto p = decode_as<publish>(with_header(0x30, str("t")), v311);
    EXPECT_EQ(p.payload, "");
}

TEST(DecodePublish, PacketIdZeroIsProtocolError) {
    EXPECT_TRUE(fails_with(with_header(0x32, str("t") + u16(0)), v311,
                           reason_code::protocol_error));
    EXPECT_TRUE(fails_with(with_header(0x34, str("t") + u16(0) + props("")), v5,
                           reason_code::protocol_error));
}

TEST(DecodePublish, TruncatedPacketIdIsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0x32, str("t") + bytes({0x01})), v311,
                           reason_code::malformed_packet));
}

TEST(DecodePublish, TruncatedTopicIsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0x30, bytes({0x00, 0x05, 'a'})), v311,
                           reason_code::malformed_packet));
}

TEST(DecodePublish, EmptyTopicIsProtocolErrorOnV311) {
    EXPECT_TRUE(fails_with(with_header(0x30, str("") + "x"), v311, reason_code::protocol_error));
    EXPECT_TRUE(fails_with(with_header(0x30, str("") + "x"), v31, reason_code::protocol_error));
}

TEST(DecodePublish, EmptyTopicWithoutAliasIsProtocolErrorOnV5) {
    EXPECT_TRUE(fails_with(with_header(0x30, str("") + props("") + "x"), v5,
                           reason_code::protocol_error));
}

TEST(DecodePublish, EmptyTopicWithAliasIsAcceptedOnV5) {
    const auto p =
        decode_as<publish>(with_header(0x30, str("") + props(bytes({0x23, 0x00, 0x02})) + "x"), v5);
    EXPECT_EQ(p.topic, "");
    EXPECT_EQ(p.props.topic_alias, 2);
}

TEST(DecodePublish, TopicAliasZeroIsProtocolError) {
    EXPECT_TRUE(fails_with(with_header(0x30, str("t") + props(bytes({0x23, 0x00, 0x00}))), v5,
                           reason_code::protocol_error));
}

TEST(DecodePublish, WildcardsInTopicAreLeftToTopicValidation) {
    EXPECT_EQ(decode_as<publish>(with_header(0x30, str("a/+/#")), v311).topic, "a/+/#");
}

TEST(DecodePublish, InvalidUtf8TopicIsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0x30, str("\x80")), v311, reason_code::malformed_packet));
}

TEST(DecodePublish, SurrogateInTopicIsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0x30, str("a\xED\xA0\x80")), v311,
                           reason_code::malformed_packet));
}

TEST(DecodePublish, OverlongInTopicIsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0x30, str("\xC0\xAF")), v311,
                           reason_code::malformed_packet));
}

TEST(DecodePublish, NulInTopicIsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0x30, str(std::string_view("a\0", 2))), v311,
                           reason_code::malformed_packet));
}

TEST(DecodePublish, PayloadIsNotUtf8Checked) {
    EXPECT_TRUE(decodes(with_header(0x30, str("t") + "\xFF\x00\xC0"), v311));
}

TEST(DecodePublish, DupOnQos0IsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0x38, str("t")), v311, reason_code::malformed_packet));
}

TEST(DecodePublish, V5MissingPropertyLengthIsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0x30, str("t")), v5, reason_code::malformed_packet));
}

TEST(DecodePublish, V5RepeatedSubscriptionIdentifiersAllowed) {
    const auto p = decode_as<publish>(
        with_header(0x30, str("t") + props(bytes({0x0B, 0x01, 0x0B, 0x80, 0x01}))), v5);
    EXPECT_EQ(p.props.subscription_identifiers, (std::vector<std::uint32_t>{1, 128}));
}

TEST(DecodePublish, V5SubscriptionIdentifierZeroIsProtocolError) {
    EXPECT_TRUE(fails_with(with_header(0x30, str("t") + props(bytes({0x0B, 0x00}))), v5,
                           reason_code::protocol_error));
}

TEST(DecodePublish, V5SubscriptionIdentifierFiveBytesIsMalformed) {
    EXPECT_TRUE(fails_with(
        with_header(0x30, str("t") + props(bytes({0x0B, 0x80, 0x80, 0x80, 0x80, 0x01}))), v5,
        reason_code::malformed_packet));
}

TEST(DecodePublish, V5DuplicateContentTypeIsProtocolError) {
    EXPECT_TRUE(fails_with(
        with_header(0x30, str("t") + props(bytes({0x03}) + str("a") + bytes({0x03}) + str("b"))),
        v5, reason_code::protocol_error));
}

TEST(DecodePublish, V5PropertyNotAllowedIsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0x30, str("t") + props(bytes({0x11, 0, 0, 0, 1}))), v5,
                           reason_code::malformed_packet));
    EXPECT_TRUE(fails_with(with_header(0x30, str("t") + props(bytes({0x1F}) + str("r"))), v5,
                           reason_code::malformed_packet));
}

TEST(DecodePublish, V5PayloadFormatIndicatorTwoIsProtocolError) {
    EXPECT_TRUE(fails_with(with_header(0x30, str("t") + props(bytes({0x01, 0x02}))), v5,
                           reason_code::protocol_error));
}

TEST(DecodePublish, V5InvalidUtf8ContentTypeIsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0x30, str("t") + props(bytes({0x03}) + str("\xFE"))), v5,
                           reason_code::malformed_packet));
}

TEST(DecodePublish, V5CorrelationDataIsBinary) {
    const auto p =
        decode_as<publish>(with_header(0x30, str("t") + props(bytes({0x09}) + str("\xFE"))), v5);
    EXPECT_EQ(p.props.correlation_data, "\xFE");
}

// ---- PUBACK, PUBREC, PUBREL, PUBCOMP ----

TEST(DecodeAck, PacketIdZeroIsProtocolError) {
    for (int first : {0x40, 0x50, 0x62, 0x70}) {
        EXPECT_TRUE(fails_with(with_header(first, u16(0)), v311, reason_code::protocol_error));
        EXPECT_TRUE(fails_with(with_header(first, u16(0)), v5, reason_code::protocol_error));
    }
}

TEST(DecodeAck, TruncatedIsMalformed) {
    EXPECT_TRUE(fails_with(bytes({0x40, 0x01, 0x01}), v311, reason_code::malformed_packet));
    EXPECT_TRUE(fails_with(bytes({0x40, 0x00}), v5, reason_code::malformed_packet));
}

TEST(DecodeAck, V311TrailingByteIsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0x40, u16(1) + bytes({0x00})), v311,
                           reason_code::malformed_packet));
}

TEST(DecodeAck, V5LengthTwoIsSuccessWithoutProperties) {
    const auto a = decode_as<ack>(with_header(0x50, u16(3)), v5);
    EXPECT_EQ(a.type, packet_type::pubrec);
    EXPECT_EQ(a.packet_id, 3);
    EXPECT_EQ(a.reason, reason_code::success);
}

TEST(DecodeAck, V5LengthThreeIsReasonWithoutProperties) {
    const auto a = decode_as<ack>(with_header(0x40, u16(3) + bytes({0x10})), v5);
    EXPECT_EQ(a.reason, reason_code::no_matching_subscribers);
}

TEST(DecodeAck, V5ReasonAndProperties) {
    const auto a =
        decode_as<ack>(with_header(0x70, u16(3) + bytes({0x92}) + props(bytes({0x1F}) + str("no"))),
                       v5);
    EXPECT_EQ(a.type, packet_type::pubcomp);
    EXPECT_EQ(a.reason, reason_code::packet_identifier_not_found);
    EXPECT_EQ(a.props.reason_string, "no");
}

TEST(DecodeAck, V5PubackReasonNotAllowedIsProtocolError) {
    EXPECT_TRUE(fails_with(with_header(0x40, u16(3) + bytes({0x92})), v5,
                           reason_code::protocol_error));
}

TEST(DecodeAck, V5PubrelReasonNotAllowedIsProtocolError) {
    EXPECT_TRUE(fails_with(with_header(0x62, u16(3) + bytes({0x10})), v5,
                           reason_code::protocol_error));
}

TEST(DecodeAck, V5PropertyNotAllowedIsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0x40, u16(3) + bytes({0x00}) +
                                                 props(bytes({0x11, 0, 0, 0, 1}))),
                           v5, reason_code::malformed_packet));
}

TEST(DecodeAck, V5DuplicateReasonStringIsProtocolError) {
    EXPECT_TRUE(fails_with(with_header(0x40, u16(3) + bytes({0x00}) +
                                                 props(bytes({0x1F}) + str("a") + bytes({0x1F}) +
                                                       str("b"))),
                           v5, reason_code::protocol_error));
}

TEST(DecodeAck, V5TrailingAfterPropertiesIsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0x40, u16(3) + bytes({0x00}) + props("") + bytes({0x00})),
                           v5, reason_code::malformed_packet));
}

// ---- SUBSCRIBE ----

TEST(DecodeSubscribe, V311Subscriptions) {
    const auto s = decode_as<subscribe>(
        with_header(0x82, u16(5) + str("a/#") + bytes({0x02}) + str("b") + bytes({0x00})), v311);
    EXPECT_EQ(s.packet_id, 5);
    ASSERT_EQ(s.subscriptions.size(), 2u);
    EXPECT_EQ(s.subscriptions[0], (subscription{"a/#", 2}));
    EXPECT_EQ(s.subscriptions[1], (subscription{"b", 0}));
}

TEST(DecodeSubscribe, V5Options) {
    const auto s =
        decode_as<subscribe>(with_header(0x82, u16(5) + props("") + str("a") + bytes({0x1D})), v5);
    ASSERT_EQ(s.subscriptions.size(), 1u);
    EXPECT_EQ(s.subscriptions[0], (subscription{"a", 1, true, true, 1}));
}

TEST(DecodeSubscribe, PacketIdZeroIsProtocolError) {
    EXPECT_TRUE(fails_with(with_header(0x82, u16(0) + str("a") + bytes({0x00})), v311,
                           reason_code::protocol_error));
}

TEST(DecodeSubscribe, NoSubscriptionsIsProtocolError) {
    EXPECT_TRUE(fails_with(with_header(0x82, u16(1)), v311, reason_code::protocol_error));
    EXPECT_TRUE(fails_with(with_header(0x82, u16(1) + props("")), v5,
                           reason_code::protocol_error));
}

TEST(DecodeSubscribe, MissingOptionsByteIsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0x82, u16(1) + str("a")), v311,
                           reason_code::malformed_packet));
}

TEST(DecodeSubscribe, InvalidUtf8FilterIsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0x82, u16(1) + str("\xE0\x80\x80") + bytes({0x00})), v311,
                           reason_code::malformed_packet));
}

TEST(DecodeSubscribe, V311ReservedOptionBitsAreMalformed) {
    for (int opts : {0x04, 0x08, 0x10, 0x20, 0x40, 0x80})
        EXPECT_TRUE(fails_with(with_header(0x82, u16(1) + str("a") + bytes({opts})), v311,
                               reason_code::malformed_packet))
            << opts;
}

TEST(DecodeSubscribe, V311Qos3IsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0x82, u16(1) + str("a") + bytes({0x03})), v311,
                           reason_code::malformed_packet));
}

TEST(DecodeSubscribe, V5Qos3IsProtocolError) {
    EXPECT_TRUE(fails_with(with_header(0x82, u16(1) + props("") + str("a") + bytes({0x03})), v5,
                           reason_code::protocol_error));
}

TEST(DecodeSubscribe, V5RetainHandling3IsProtocolError) {
    EXPECT_TRUE(fails_with(with_header(0x82, u16(1) + props("") + str("a") + bytes({0x30})), v5,
                           reason_code::protocol_error));
}

TEST(DecodeSubscribe, V5ReservedOptionBitsAreMalformed) {
    for (int opts : {0x40, 0x80})
        EXPECT_TRUE(fails_with(with_header(0x82, u16(1) + props("") + str("a") + bytes({opts})),
                               v5, reason_code::malformed_packet));
}

TEST(DecodeSubscribe, V5NoLocalOnSharedSubscriptionIsProtocolError) {
    EXPECT_TRUE(fails_with(
        with_header(0x82, u16(1) + props("") + str("$share/g/a") + bytes({0x04})), v5,
        reason_code::protocol_error));
}

TEST(DecodeSubscribe, V5SubscriptionIdentifier) {
    const auto s = decode_as<subscribe>(
        with_header(0x82, u16(1) + props(bytes({0x0B, 0xFF, 0xFF, 0xFF, 0x7F})) + str("a") +
                              bytes({0x00})),
        v5);
    EXPECT_EQ(s.props.subscription_identifiers, (std::vector<std::uint32_t>{268'435'455}));
}

TEST(DecodeSubscribe, V5TwoSubscriptionIdentifiersIsProtocolError) {
    EXPECT_TRUE(fails_with(with_header(0x82, u16(1) + props(bytes({0x0B, 0x01, 0x0B, 0x02})) +
                                                 str("a") + bytes({0x00})),
                           v5, reason_code::protocol_error));
}

TEST(DecodeSubscribe, V5SubscriptionIdentifierZeroIsProtocolError) {
    EXPECT_TRUE(fails_with(
        with_header(0x82, u16(1) + props(bytes({0x0B, 0x00})) + str("a") + bytes({0x00})), v5,
        reason_code::protocol_error));
}

TEST(DecodeSubscribe, V5PropertyNotAllowedIsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0x82, u16(1) + props(bytes({0x23, 0x00, 0x01})) +
                                                 str("a") + bytes({0x00})),
                           v5, reason_code::malformed_packet));
}

// ---- SUBACK ----

TEST(DecodeSuback, V311ReturnCodes) {
    const auto s = decode_as<suback>(with_header(0x90, u16(2) + bytes({0x00, 0x01, 0x02, 0x80})),
                                     v311);
    EXPECT_EQ(s.reasons,
              (std::vector<reason_code>{reason_code::success, reason_code::granted_qos_1,
                                        reason_code::granted_qos_2, reason_code::unspecified_error}));
}

TEST(DecodeSuback, V311InvalidReturnCodeIsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0x90, u16(2) + bytes({0x03})), v311,
                           reason_code::malformed_packet));
    EXPECT_TRUE(fails_with(with_header(0x90, u16(2) + bytes({0x87})), v311,
                           reason_code::malformed_packet));
}

TEST(DecodeSuback, NoReturnCodesIsProtocolError) {
    EXPECT_TRUE(fails_with(with_header(0x90, u16(2)), v311, reason_code::protocol_error));
    EXPECT_TRUE(fails_with(with_header(0x90, u16(2) + props("")), v5,
                           reason_code::protocol_error));
}

TEST(DecodeSuback, PacketIdZeroIsProtocolError) {
    EXPECT_TRUE(fails_with(with_header(0x90, u16(0) + bytes({0x00})), v311,
                           reason_code::protocol_error));
}

TEST(DecodeSuback, V5ReasonNotAllowedIsProtocolError) {
    EXPECT_TRUE(fails_with(with_header(0x90, u16(2) + props("") + bytes({0x10})), v5,
                           reason_code::protocol_error));
}

// ---- UNSUBSCRIBE / UNSUBACK ----

TEST(DecodeUnsubscribe, Filters) {
    const auto u = decode_as<unsubscribe>(with_header(0xA2, u16(4) + str("a") + str("b/+")), v311);
    EXPECT_EQ(u.packet_id, 4);
    EXPECT_EQ(u.filters, (std::vector<std::string>{"a", "b/+"}));
}

TEST(DecodeUnsubscribe, NoFiltersIsProtocolError) {
    EXPECT_TRUE(fails_with(with_header(0xA2, u16(4)), v311, reason_code::protocol_error));
    EXPECT_TRUE(fails_with(with_header(0xA2, u16(4) + props("")), v5,
                           reason_code::protocol_error));
}

TEST(DecodeUnsubscribe, PacketIdZeroIsProtocolError) {
    EXPECT_TRUE(fails_with(with_header(0xA2, u16(0) + str("a")), v311,
                           reason_code::protocol_error));
}

TEST(DecodeUnsubscribe, TruncatedFilterIsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0xA2, u16(4) + bytes({0x00, 0x03, 'a'})), v311,
                           reason_code::malformed_packet));
}

TEST(DecodeUnsubscribe, V5PropertyNotAllowedIsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0xA2, u16(4) + props(bytes({0x0B, 0x01})) + str("a")), v5,
                           reason_code::malformed_packet));
}

TEST(DecodeUnsuback, V311TrailingByteIsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0xB0, u16(4) + bytes({0x00})), v311,
                           reason_code::malformed_packet));
}

TEST(DecodeUnsuback, V5NoReasonCodesIsProtocolError) {
    EXPECT_TRUE(fails_with(with_header(0xB0, u16(4) + props("")), v5,
                           reason_code::protocol_error));
}

TEST(DecodeUnsuback, V5ReasonNotAllowedIsProtocolError) {
    EXPECT_TRUE(fails_with(with_header(0xB0, u16(4) + props("") + bytes({0x01})), v5,
                           reason_code::protocol_error));
}

// ---- PINGREQ / PINGRESP ----

TEST(DecodePing, NonZeroLengthIsMalformed) {
    EXPECT_TRUE(fails_with(bytes({0xC0, 0x01, 0x00}), v311, reason_code::malformed_packet));
    EXPECT_TRUE(fails_with(bytes({0xD0, 0x01, 0x00}), v5, reason_code::malformed_packet));
}

TEST(DecodePing, RequestAndResponse) {
    EXPECT_EQ(decode_wire(bytes({0xC0, 0x00}), v311).pkt, packet{pingreq{}});
    EXPECT_EQ(decode_wire(bytes({0xD0, 0x00}), v5).pkt, packet{pingresp{}});
}

// ---- DISCONNECT ----

TEST(DecodeDisconnect, V311NonEmptyIsMalformed) {
    EXPECT_TRUE(fails_with(bytes({0xE0, 0x01, 0x00}), v311, reason_code::malformed_packet));
}

TEST(DecodeDisconnect, V5ReasonOnly) {
    EXPECT_EQ(decode_as<disconnect>(bytes({0xE0, 0x01, 0x8E}), v5).reason,
              reason_code::session_taken_over);
}

TEST(DecodeDisconnect, V5ReasonAndSessionExpiry) {
    const auto d = decode_as<disconnect>(
        with_header(0xE0, bytes({0x00}) + props(bytes({0x11, 0, 0, 0, 5}))), v5);
    EXPECT_EQ(d.props.session_expiry_interval, 5u);
}

TEST(DecodeDisconnect, V5ReasonNotAllowedIsProtocolError) {
    EXPECT_TRUE(fails_with(bytes({0xE0, 0x01, 0x01}), v5, reason_code::protocol_error));
    EXPECT_TRUE(fails_with(bytes({0xE0, 0x01, 0x84}), v5, reason_code::protocol_error));
}

TEST(DecodeDisconnect, V5PropertyNotAllowedIsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0xE0, bytes({0x00}) + props(bytes({0x15}) + str("m"))), v5,
                           reason_code::malformed_packet));
}

TEST(DecodeDisconnect, V5PropertyLengthBeyondPacketIsMalformed) {
    EXPECT_TRUE(fails_with(bytes({0xE0, 0x02, 0x00, 0x05}), v5, reason_code::malformed_packet));
}

// ---- AUTH ----

TEST(DecodeAuth, BeforeV5IsMalformed) {
    EXPECT_TRUE(fails_with(bytes({0xF0, 0x00}), v311, reason_code::malformed_packet));
    EXPECT_TRUE(fails_with(bytes({0xF0, 0x00}), v31, reason_code::malformed_packet));
}

TEST(DecodeAuth, V5EmptyIsSuccess) {
    EXPECT_EQ(decode_as<auth>(bytes({0xF0, 0x00}), v5).reason, reason_code::success);
}

TEST(DecodeAuth, V5ReasonWithoutPropertyLengthIsMalformed) {
    EXPECT_TRUE(fails_with(bytes({0xF0, 0x01, 0x18}), v5, reason_code::malformed_packet));
}

TEST(DecodeAuth, V5ReasonNotAllowedIsProtocolError) {
    EXPECT_TRUE(fails_with(bytes({0xF0, 0x02, 0x87, 0x00}), v5, reason_code::protocol_error));
}

TEST(DecodeAuth, V5PropertyNotAllowedIsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0xF0, bytes({0x18}) + props(bytes({0x11, 0, 0, 0, 1}))),
                           v5, reason_code::malformed_packet));
}

TEST(DecodeAuth, V5DuplicateMethodIsProtocolError) {
    EXPECT_TRUE(fails_with(with_header(0xF0, bytes({0x18}) + props(bytes({0x15}) + str("a") +
                                                                   bytes({0x15}) + str("a"))),
                           v5, reason_code::protocol_error));
}

// ---- packets a peer may not send in a version ----

TEST(DecodeAny, FailureLeavesOutputUntouched) {
    packet p = pingreq{};
    frame f;
    decode_error err;
    const auto wire = with_header(0x32, str("t") + u16(0));
    ASSERT_EQ(read_frame(as_bytes(wire), 0, f, err), decode_status::ok);
    EXPECT_EQ(decode(f, as_bytes(wire).subspan(f.header_size), v311, p, err),
              decode_status::error);
    EXPECT_EQ(p, packet{pingreq{}});
}

}  // namespace
}  // namespace iothub::mqtt::test
