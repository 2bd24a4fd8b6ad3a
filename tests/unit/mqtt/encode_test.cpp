// Byte-exact encodings, written by hand from the examples and field layouts of the
// MQTT 3.1, 3.1.1 and 5.0 specifications. Each expected packet is also decoded back.

#include "mqtt_test_util.hpp"

namespace iothub::mqtt::test {
namespace {

constexpr auto v31 = protocol_version::v31;
constexpr auto v311 = protocol_version::v311;
constexpr auto v5 = protocol_version::v5;

// Encodes `p`, compares with `wire`, then decodes `wire` and compares with `p`.
void check_exact(const packet& p, protocol_version v, const std::string& wire) {
    EXPECT_EQ(hex(encoded(p, v)), hex(wire));
    const auto d = decode_wire(wire, v);
    ASSERT_EQ(d.status, decode_status::ok) << d.err.message;
    EXPECT_EQ(d.pkt, p);
}

TEST(EncodeVarint, SpecificationBoundaries) {
    const struct {
        std::uint32_t value;
        std::string wire;
    } cases[] = {
        {0, bytes({0x00})},
        {127, bytes({0x7F})},
        {128, bytes({0x80, 0x01})},
        {16'383, bytes({0xFF, 0x7F})},
        {16'384, bytes({0x80, 0x80, 0x01})},
        {2'097'151, bytes({0xFF, 0xFF, 0x7F})},
        {2'097'152, bytes({0x80, 0x80, 0x80, 0x01})},
        {268'435'455, bytes({0xFF, 0xFF, 0xFF, 0x7F})},
    };
    for (const auto& c : cases) {
        std::string out;
        put_varint(c.value, out);
        EXPECT_EQ(hex(out), hex(c.wire)) << c.value;
        EXPECT_EQ(varint_size(c.value), c.wire.size()) << c.value;
    }
}

// MQTT 3.1.1 figure 3.6: name "MQTT", level 4, flags 0xCE (user name, password, will QoS 1,
// will flag, clean session), keep alive 10.
TEST(EncodeConnect, V311SpecificationVariableHeader) {
    connect c;
    c.version = v311;
    c.protocol_name = "MQTT";
    c.clean_start = true;
    c.keep_alive = 10;
    c.client_id = "c";
    c.will = will_message{"t", "m", 1, false, {}};
    c.username = "u";
    c.password = "p";
    check_exact(c, v311,
                bytes({0x10, 0x19, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0xCE, 0x00, 0x0A,
                       0x00, 0x01, 'c', 0x00, 0x01, 't', 0x00, 0x01, 'm', 0x00, 0x01, 'u', 0x00,
                       0x01, 'p'}));
}

// MQTT 5.0 figure 3-7: level 5, flags 0xC2 (user name, password, clean start), keep alive 10,
// properties: length 5, session expiry interval 10.
TEST(EncodeConnect, V5SpecificationVariableHeader) {
    connect c;
    c.version = v5;
    c.protocol_name = "MQTT";
    c.clean_start = true;
    c.keep_alive = 10;
    c.props.session_expiry_interval = 10;
    c.client_id = "c";
    c.username = "u";
    c.password = "p";
    check_exact(c, v5,
                bytes({0x10, 0x19, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0xC2, 0x00, 0x0A,
                       0x05, 0x11, 0x00, 0x00, 0x00, 0x0A, 0x00, 0x01, 'c', 0x00, 0x01, 'u',
                       0x00, 0x01, 'p'}));
}

TEST(EncodeConnect, V31ProtocolNameMQIsdp) {
    connect c;
    c.version = v31;
    c.protocol_name = "MQIsdp";
    c.clean_start = true;
    c.keep_alive = 60;
    c.client_id = "x";
    check_exact(c, v31,
                bytes({0x10, 0x0F, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, 0x02, 0x00,
                       0x3C, 0x00, 0x01, 'x'}));
}

TEST(EncodeConnect, V5WillWithPropertiesAndRetain) {
    connect c;
    c.version = v5;
    c.protocol_name = "MQTT";
    c.clean_start = false;
    c.client_id = "";
    will_message w{"w", "bye", 2, true, {}};
    w.props.will_delay_interval = 5;
    c.will = w;
    // flags: will retain 0x20 | will QoS 2 0x10 | will 0x04 = 0x34
    check_exact(c, v5,
                bytes({0x10, 0x1B, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x34, 0x00, 0x00,
                       0x00, 0x00, 0x00, 0x05, 0x18, 0x00, 0x00, 0x00, 0x05, 0x00, 0x01, 'w',
                       0x00, 0x03, 'b', 'y', 'e'}));
}

TEST(EncodeConnack, V311AcceptedAndSessionPresent) {
    check_exact(connack{}, v311, bytes({0x20, 0x02, 0x00, 0x00}));
    connack c;
    c.session_present = true;
    check_exact(c, v311, bytes({0x20, 0x02, 0x01, 0x00}));
}

TEST(EncodeConnack, V311ReturnCodes) {
    const struct {
        reason_code reason;
        int code;
    } cases[] = {
        {reason_code::success, 0},
        {reason_code::unsupported_protocol_version, 1},
        {reason_code::client_identifier_not_valid, 2},
        {reason_code::server_unavailable, 3},
        {reason_code::server_busy, 3},
        {reason_code::bad_user_name_or_password, 4},
        {reason_code::not_authorized, 5},
        {reason_code::banned, 5},
    };
    for (const auto& c : cases) {
        connack ack;
        ack.reason = c.reason;
        EXPECT_EQ(hex(encoded(ack, v311)), hex(bytes({0x20, 0x02, 0x00, c.code})))
            << to_string(c.reason);
        EXPECT_EQ(connack_return_code_v3(c.reason), c.code);
    }
}

TEST(EncodeConnack, V31HasNoSessionPresentFlag) {
    connack c;
    c.session_present = true;
    EXPECT_EQ(hex(encoded(c, v31)), hex(bytes({0x20, 0x02, 0x00, 0x00})));
}

TEST(EncodeConnack, V5ReasonAndProperties) {
    connack refused;
    refused.reason = reason_code::not_authorized;
    check_exact(refused, v5, bytes({0x20, 0x03, 0x00, 0x87, 0x00}));

    connack c;
    c.session_present = true;
    c.props.topic_alias_maximum = 10;
    check_exact(c, v5, bytes({0x20, 0x06, 0x01, 0x00, 0x03, 0x22, 0x00, 0x0A}));
}

// MQTT 3.1.1 figure 3.11: topic "a/b", packet identifier 10.
TEST(EncodePublish, V311QoS1) {
    publish p;
    p.qos = 1;
    p.topic = "a/b";
    p.packet_id = 10;
    p.payload = "hi";
    check_exact(p, v311,
                bytes({0x32, 0x09, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 'h', 'i'}));
}

TEST(EncodePublish, V311QoS0RetainHasNoPacketId) {
    publish p;
    p.retain = true;
    p.topic = "a/b";
    p.payload = "hi";
    check_exact(p, v311, bytes({0x31, 0x07, 0x00, 0x03, 'a', '/', 'b', 'h', 'i'}));
}

TEST(EncodePublish, V311DupQoS2) {
    publish p;
    p.dup = true;
    p.qos = 2;
    p.topic = "t";
    p.packet_id = 0x1234;
    check_exact(p, v311, bytes({0x3C, 0x05, 0x00, 0x01, 't', 0x12, 0x34}));
}

// MQTT 5.0 figure 3-9: topic "a/b", packet identifier 10, no properties.
TEST(EncodePublish, V5QoS1EmptyProperties) {
    publish p;
    p.qos = 1;
    p.topic = "a/b";
    p.packet_id = 10;
    check_exact(p, v5, bytes({0x32, 0x08, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 0x00}));
}

TEST(EncodePublish, V5TopicAliasWithEmptyTopic) {
    publish p;
    p.props.topic_alias = 3;
    p.props.payload_format_indicator = 1;
    p.payload = "x";
    check_exact(p, v5,
                bytes({0x30, 0x09, 0x00, 0x00, 0x05, 0x01, 0x01, 0x23, 0x00, 0x03, 'x'}));
}

TEST(EncodePublish, TwoByteRemainingLength) {
    publish p;
    p.topic = "t";
    p.payload.assign(200, 'z');
    const auto wire = encoded(p, v311);
    ASSERT_EQ(wire.size(), 1 + 2 + 203u);
    EXPECT_EQ(hex(wire.substr(0, 6)), hex(bytes({0x30, 0xCB, 0x01, 0x00, 0x01, 't'})));
    const auto d = decode_wire(wire, v311);
    ASSERT_EQ(d.status, decode_status::ok);
    EXPECT_EQ(d.pkt, packet{p});
}

TEST(EncodeAck, V311AllFour) {
    check_exact(ack{packet_type::puback, 7, reason_code::success, {}}, v311,
                bytes({0x40, 0x02, 0x00, 0x07}));
    check_exact(ack{packet_type::pubrec, 7, reason_code::success, {}}, v311,
                bytes({0x50, 0x02, 0x00, 0x07}));
    check_exact(ack{packet_type::pubrel, 7, reason_code::success, {}}, v311,
                bytes({0x62, 0x02, 0x00, 0x07}));
    check_exact(ack{packet_type::pubcomp, 7, reason_code::success, {}}, v311,
                bytes({0x70, 0x02, 0x00, 0x07}));
}

TEST(EncodeAck, V311LeavesOutReason) {
    ack a{packet_type::puback, 7, reason_code::no_matching_subscribers, {}};
    EXPECT_EQ(hex(encoded(a, v311)), hex(bytes({0x40, 0x02, 0x00, 0x07})));
}

TEST(EncodeAck, V5SuccessWithoutPropertiesIsShort) {
    check_exact(ack{packet_type::puback, 7, reason_code::success, {}}, v5,
                bytes({0x40, 0x02, 0x00, 0x07}));
}

TEST(EncodeAck, V5ReasonWithoutProperties) {
    check_exact(ack{packet_type::puback, 7, reason_code::no_matching_subscribers, {}}, v5,
                bytes({0x40, 0x03, 0x00, 0x07, 0x10}));
    check_exact(ack{packet_type::pubrel, 9, reason_code::packet_identifier_not_found, {}}, v5,
                bytes({0x62, 0x03, 0x00, 0x09, 0x92}));
}

TEST(EncodeAck, V5ReasonWithReasonString) {
    ack a{packet_type::pubrec, 7, reason_code::quota_exceeded, {}};
    a.props.reason_string = "x";
    check_exact(a, v5, bytes({0x50, 0x08, 0x00, 0x07, 0x97, 0x04, 0x1F, 0x00, 0x01, 'x'}));
}

TEST(EncodeAck, V5SuccessWithPropertyKeepsReason) {
    ack a{packet_type::pubcomp, 1, reason_code::success, {}};
    a.props.user_properties.push_back({"k", "v"});
    check_exact(a, v5,
                bytes({0x70, 0x0B, 0x00, 0x01, 0x00, 0x07, 0x26, 0x00, 0x01, 'k', 0x00, 0x01,
                       'v'}));
}

// MQTT 3.1.1 figure 3.22: packet identifier 10, "a/b" QoS 1, "c/d" QoS 2.
TEST(EncodeSubscribe, V311SpecificationExample) {
    subscribe s;
    s.packet_id = 10;
    s.subscriptions = {{"a/b", 1}, {"c/d", 2}};
    check_exact(s, v311,
                bytes({0x82, 0x0E, 0x00, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x01, 0x00, 0x03, 'c',
                       '/', 'd', 0x02}));
}

TEST(EncodeSubscribe, V311LeavesOutV5Options) {
    subscribe s;
    s.packet_id = 1;
    s.subscriptions = {{"a", 1, true, true, 2}};
    EXPECT_EQ(hex(encoded(s, v311)),
              hex(bytes({0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x01})));
}

TEST(EncodeSubscribe, V5OptionsAndSubscriptionIdentifier) {
    subscribe s;
    s.packet_id = 10;
    s.props.subscription_identifiers = {200};
    // QoS 1 | no local 0x04 | retain as published 0x08 | retain handling 2 (0x20) = 0x2D
    s.subscriptions = {{"a/b", 1, true, true, 2}};
    check_exact(s, v5,
                bytes({0x82, 0x0C, 0x00, 0x0A, 0x03, 0x0B, 0xC8, 0x01, 0x00, 0x03, 'a', '/',
                       'b', 0x2D}));
}

// MQTT 3.1.1 figure 3.26: success QoS 0, success QoS 2, failure.
TEST(EncodeSuback, V311SpecificationExample) {
    suback s;
    s.packet_id = 10;
    s.reasons = {reason_code::success, reason_code::granted_qos_2, reason_code::unspecified_error};
    check_exact(s, v311, bytes({0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0x80}));
}

TEST(EncodeSuback, V311MapsEveryErrorTo0x80) {
    suback s;
    s.packet_id = 10;
    s.reasons = {reason_code::not_authorized, reason_code::topic_filter_invalid,
                 reason_code::granted_qos_1};
    EXPECT_EQ(hex(encoded(s, v311)), hex(bytes({0x90, 0x05, 0x00, 0x0A, 0x80, 0x80, 0x01})));
}

TEST(EncodeSuback, V5KeepsReasonCodes) {
    suback s;
    s.packet_id = 10;
    s.reasons = {reason_code::granted_qos_1, reason_code::not_authorized};
    check_exact(s, v5, bytes({0x90, 0x05, 0x00, 0x0A, 0x00, 0x01, 0x87}));
}

// MQTT 3.1.1 figure 3.30: packet identifier 10, "a/b", "c/d".
TEST(EncodeUnsubscribe, V311SpecificationExample) {
    unsubscribe u;
    u.packet_id = 10;
    u.filters = {"a/b", "c/d"};
    check_exact(u, v311,
                bytes({0xA2, 0x0C, 0x00, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x03, 'c', '/',
                       'd'}));
}

TEST(EncodeUnsubscribe, V5EmptyProperties) {
    unsubscribe u;
    u.packet_id = 10;
    u.filters = {"a/b"};
    check_exact(u, v5, bytes({0xA2, 0x08, 0x00, 0x0A, 0x00, 0x00, 0x03, 'a', '/', 'b'}));
}

TEST(EncodeUnsuback, V311HasOnlyPacketId) {
    unsuback u;
    u.packet_id = 10;
    check_exact(u, v311, bytes({0xB0, 0x02, 0x00, 0x0A}));
    u.reasons = {reason_code::success};
    EXPECT_EQ(hex(encoded(u, v311)), hex(bytes({0xB0, 0x02, 0x00, 0x0A})));
}

TEST(EncodeUnsuback, V5ReasonCodes) {
    unsuback u;
    u.packet_id = 10;
    u.reasons = {reason_code::success, reason_code::no_subscription_existed};
    check_exact(u, v5, bytes({0xB0, 0x05, 0x00, 0x0A, 0x00, 0x00, 0x11}));
}

TEST(EncodePing, RequestAndResponse) {
    for (auto v : {v31, v311, v5}) {
        check_exact(pingreq{}, v, bytes({0xC0, 0x00}));
        check_exact(pingresp{}, v, bytes({0xD0, 0x00}));
    }
}

TEST(EncodeDisconnect, NormalIsTwoBytes) {
    for (auto v : {v31, v311, v5}) check_exact(disconnect{}, v, bytes({0xE0, 0x00}));
}

TEST(EncodeDisconnect, V311LeavesOutReason) {
    disconnect d{reason_code::disconnect_with_will, {}};
    EXPECT_EQ(hex(encoded(d, v311)), hex(bytes({0xE0, 0x00})));
}

TEST(EncodeDisconnect, V5ReasonOnly) {
    check_exact(disconnect{reason_code::disconnect_with_will, {}}, v5,
                bytes({0xE0, 0x01, 0x04}));
}

TEST(EncodeDisconnect, V5ReasonAndProperties) {
    disconnect d{reason_code::server_moved, {}};
    d.props.server_reference = "b";
    check_exact(d, v5, bytes({0xE0, 0x06, 0x9D, 0x04, 0x1C, 0x00, 0x01, 'b'}));
}

TEST(EncodeAuth, V5SuccessWithoutPropertiesIsTwoBytes) {
    check_exact(auth{}, v5, bytes({0xF0, 0x00}));
}

TEST(EncodeAuth, V5ContinueWithMethod) {
    auth a{reason_code::continue_authentication, {}};
    a.props.authentication_method = "m";
    a.props.authentication_data = std::string("\x00\xFF", 2);
    check_exact(a, v5,
                bytes({0xF0, 0x0B, 0x18, 0x09, 0x15, 0x00, 0x01, 'm', 0x16, 0x00, 0x02, 0x00,
                       0xFF}));
}

TEST(EncodeProperties, LengthPrefixAndIdentifierOrder) {
    properties p;
    p.user_properties.push_back({"a", "b"});
    p.message_expiry_interval = 0x01020304;
    p.subscription_identifiers = {1, 128};
    std::string out;
    encode_properties(p, out);
    EXPECT_EQ(hex(out), hex(bytes({0x11, 0x02, 0x01, 0x02, 0x03, 0x04, 0x0B, 0x01, 0x0B, 0x80,
                                   0x01, 0x26, 0x00, 0x01, 'a', 0x00, 0x01, 'b'})));
    properties back;
    ASSERT_TRUE(decode_properties(as_bytes(out), back));
    EXPECT_EQ(back, p);
}

TEST(EncodeMany, AppendsToExistingBuffer) {
    std::string out = "x";
    encode(pingreq{}, v311, out);
    encode(disconnect{}, v311, out);
    EXPECT_EQ(hex(out), hex(bytes({'x', 0xC0, 0x00, 0xE0, 0x00})));
}

}  // namespace
}  // namespace iothub::mqtt::test
