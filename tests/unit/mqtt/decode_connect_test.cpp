// CONNECT and CONNACK decoding: protocol name and level, connect flags, properties.

#include "mqtt_test_util.hpp"

namespace iothub::mqtt::test {
namespace {

constexpr auto v31 = protocol_version::v31;
constexpr auto v311 = protocol_version::v311;
constexpr auto v5 = protocol_version::v5;

std::string connect_packet(std::string_view name, int level, int flags,
                           const std::string& rest) {
    return with_header(0x10, str(name) + bytes({level, flags, 0x00, 0x3C}) + rest);
}

std::string v311_connect(int flags, const std::string& payload) {
    return connect_packet("MQTT", 4, flags, payload);
}

std::string v5_connect(int flags, const std::string& property_items, const std::string& payload) {
    return connect_packet("MQTT", 5, flags, props(property_items) + payload);
}

// The version argument of decode() is ignored for CONNECT.
TEST(DecodeConnect, VersionComesFromPacket) {
    const auto c31 = decode_as<connect>(connect_packet("MQIsdp", 3, 0x02, str("id")), v5);
    EXPECT_EQ(c31.version, v31);
    EXPECT_EQ(c31.protocol_name, "MQIsdp");
    EXPECT_TRUE(c31.clean_start);
    EXPECT_EQ(c31.keep_alive, 60);
    EXPECT_EQ(c31.client_id, "id");
    const auto c311 = decode_as<connect>(v311_connect(0x00, str("")), v31);
    EXPECT_EQ(c311.version, v311);
    EXPECT_FALSE(c311.clean_start);
    const auto c5 = decode_as<connect>(v5_connect(0x02, "", str("x")), v311);
    EXPECT_EQ(c5.version, v5);
}

TEST(DecodeConnect, UnknownLevelIsUnsupportedProtocolVersion) {
    EXPECT_TRUE(fails_with(connect_packet("MQTT", 6, 0x02, str("x")), v311,
                           reason_code::unsupported_protocol_version));
    EXPECT_TRUE(fails_with(connect_packet("MQTT", 0x84, 0x02, str("x")), v311,
                           reason_code::unsupported_protocol_version));
}

TEST(DecodeConnect, MQTTNameWithLevel3IsUnsupportedProtocolVersion) {
    EXPECT_TRUE(fails_with(connect_packet("MQTT", 3, 0x02, str("x")), v311,
                           reason_code::unsupported_protocol_version));
}

TEST(DecodeConnect, MQIsdpNameWithLevel4IsUnsupportedProtocolVersion) {
    EXPECT_TRUE(fails_with(connect_packet("MQIsdp", 4, 0x02, str("x")), v311,
                           reason_code::unsupported_protocol_version));
}

TEST(DecodeConnect, WrongProtocolNameIsProtocolError) {
    EXPECT_TRUE(fails_with(connect_packet("MQTX", 4, 0x02, str("x")), v311,
                           reason_code::protocol_error));
    EXPECT_TRUE(fails_with(connect_packet("mqtt", 4, 0x02, str("x")), v311,
                           reason_code::protocol_error));
    EXPECT_TRUE(fails_with(connect_packet("", 4, 0x02, str("x")), v311,
                           reason_code::protocol_error));
}

TEST(DecodeConnect, ReservedFlagSetIsMalformed) {
    EXPECT_TRUE(fails_with(v311_connect(0x03, str("x")), v311, reason_code::malformed_packet));
    EXPECT_TRUE(fails_with(v5_connect(0x03, "", str("x")), v5, reason_code::malformed_packet));
}

TEST(DecodeConnect, WillQosWithoutWillFlagIsMalformed) {
    EXPECT_TRUE(fails_with(v311_connect(0x0A, str("x")), v311, reason_code::malformed_packet));
    EXPECT_TRUE(fails_with(v5_connect(0x12, "", str("x")), v5, reason_code::malformed_packet));
}

TEST(DecodeConnect, WillRetainWithoutWillFlagIsMalformed) {
    EXPECT_TRUE(fails_with(v311_connect(0x22, str("x")), v311, reason_code::malformed_packet));
    EXPECT_TRUE(fails_with(v5_connect(0x22, "", str("x")), v5, reason_code::malformed_packet));
}

TEST(DecodeConnect, WillQos3IsMalformed) {
    EXPECT_TRUE(fails_with(v311_connect(0x1E, str("x") + str("t") + str("m")), v311,
                           reason_code::malformed_packet));
}

TEST(DecodeConnect, PasswordWithoutUserNameIsMalformedOnV311) {
    EXPECT_TRUE(fails_with(v311_connect(0x42, str("x") + str("pw")), v311,
                           reason_code::malformed_packet));
}

TEST(DecodeConnect, PasswordWithoutUserNameIsMalformedOnV31) {
    EXPECT_TRUE(fails_with(connect_packet("MQIsdp", 3, 0x42, str("x") + str("pw")), v31,
                           reason_code::malformed_packet));
}

TEST(DecodeConnect, PasswordWithoutUserNameIsAllowedOnV5) {
    const auto c = decode_as<connect>(v5_connect(0x42, "", str("x") + str("pw")), v5);
    EXPECT_FALSE(c.username);
    EXPECT_EQ(c.password, "pw");
}

TEST(DecodeConnect, WillFieldsAndFlags) {
    const auto c = decode_as<connect>(
        v311_connect(0xF6, str("x") + str("w/t") + str("msg") + str("u") + str("p")), v311);
    ASSERT_TRUE(c.will);
    EXPECT_EQ(c.will->topic, "w/t");
    EXPECT_EQ(c.will->payload, "msg");
    EXPECT_EQ(c.will->qos, 2);
    EXPECT_TRUE(c.will->retain);
    EXPECT_EQ(c.username, "u");
    EXPECT_EQ(c.password, "p");
}

TEST(DecodeConnect, InvalidUtf8ClientIdIsMalformed) {
    EXPECT_TRUE(fails_with(v311_connect(0x02, str("\xC3\x28")), v311,
                           reason_code::malformed_packet));
}

TEST(DecodeConnect, ClientIdWithNulIsMalformed) {
    EXPECT_TRUE(fails_with(v311_connect(0x02, str(std::string_view("a\0b", 3))), v311,
                           reason_code::malformed_packet));
}

TEST(DecodeConnect, InvalidUtf8UserNameIsMalformed) {
    EXPECT_TRUE(fails_with(v311_connect(0x82, str("x") + str("\xED\xA0\x80")), v311,
                           reason_code::malformed_packet));
}

TEST(DecodeConnect, InvalidUtf8WillTopicIsMalformed) {
    EXPECT_TRUE(fails_with(v311_connect(0x06, str("x") + str("\xFF") + str("m")), v311,
                           reason_code::malformed_packet));
}

TEST(DecodeConnect, PasswordAndWillPayloadAreBinary) {
    const auto c = decode_as<connect>(
        v311_connect(0xC6, str("x") + str("t") + str(std::string_view("\xFF\x00", 2)) +
                               str("u") + str(std::string_view("\xC0\x80\x00", 3))),
        v311);
    EXPECT_EQ(c.will->payload, std::string("\xFF\x00", 2));
    EXPECT_EQ(c.password, std::string("\xC0\x80\x00", 3));
}

TEST(DecodeConnect, MissingClientIdIsMalformed) {
    EXPECT_TRUE(fails_with(v311_connect(0x02, ""), v311, reason_code::malformed_packet));
}

TEST(DecodeConnect, MissingUserNameIsMalformed) {
    EXPECT_TRUE(fails_with(v311_connect(0x82, str("x")), v311, reason_code::malformed_packet));
}

TEST(DecodeConnect, TruncatedVariableHeaderIsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0x10, str("MQTT") + bytes({0x04, 0x02})), v311,
                           reason_code::malformed_packet));
}

TEST(DecodeConnect, TrailingBytesAreMalformed) {
    EXPECT_TRUE(fails_with(v311_connect(0x02, str("x") + bytes({0x00})), v311,
                           reason_code::malformed_packet));
}

TEST(DecodeConnect, V5Properties) {
    const auto c = decode_as<connect>(
        v5_connect(0x02,
                   bytes({0x11, 0, 0, 0x0E, 0x10, 0x21, 0x00, 0x05, 0x17, 0x01}) +
                       bytes({0x26}) + str("k") + str("v"),
                   str("x")),
        v5);
    EXPECT_EQ(c.props.session_expiry_interval, 3600u);
    EXPECT_EQ(c.props.receive_maximum, 5);
    EXPECT_EQ(c.props.request_problem_information, 1);
    ASSERT_EQ(c.props.user_properties.size(), 1u);
    EXPECT_EQ(c.props.user_properties[0], (user_property{"k", "v"}));
}

TEST(DecodeConnect, V5PropertyNotAllowedIsMalformed) {
    // Topic Alias (0x23) belongs to PUBLISH.
    EXPECT_TRUE(fails_with(v5_connect(0x02, bytes({0x23, 0x00, 0x01}), str("x")), v5,
                           reason_code::malformed_packet));
    // Will Delay Interval (0x18) belongs to the will properties.
    EXPECT_TRUE(fails_with(v5_connect(0x02, bytes({0x18, 0, 0, 0, 1}), str("x")), v5,
                           reason_code::malformed_packet));
}

TEST(DecodeConnect, V5UnknownPropertyIsMalformed) {
    EXPECT_TRUE(fails_with(v5_connect(0x02, bytes({0x7F, 0x00}), str("x")), v5,
                           reason_code::malformed_packet));
    EXPECT_TRUE(fails_with(v5_connect(0x02, bytes({0x00, 0x00}), str("x")), v5,
                           reason_code::malformed_packet));
}

TEST(DecodeConnect, V5DuplicatePropertyIsProtocolError) {
    EXPECT_TRUE(fails_with(v5_connect(0x02, bytes({0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2}),
                                      str("x")),
                           v5, reason_code::protocol_error));
}

TEST(DecodeConnect, V5RepeatedUserPropertiesAllowed) {
    const auto item = bytes({0x26}) + str("k") + str("v");
    const auto c = decode_as<connect>(v5_connect(0x02, item + item + item, str("x")), v5);
    EXPECT_EQ(c.props.user_properties.size(), 3u);
}

TEST(DecodeConnect, V5ReceiveMaximumZeroIsProtocolError) {
    EXPECT_TRUE(fails_with(v5_connect(0x02, bytes({0x21, 0x00, 0x00}), str("x")), v5,
                           reason_code::protocol_error));
}

TEST(DecodeConnect, V5MaximumPacketSizeZeroIsProtocolError) {
    EXPECT_TRUE(fails_with(v5_connect(0x02, bytes({0x27, 0, 0, 0, 0}), str("x")), v5,
                           reason_code::protocol_error));
}

TEST(DecodeConnect, V5RequestProblemInformationTwoIsProtocolError) {
    EXPECT_TRUE(fails_with(v5_connect(0x02, bytes({0x17, 0x02}), str("x")), v5,
                           reason_code::protocol_error));
}

TEST(DecodeConnect, V5RequestResponseInformationTwoIsProtocolError) {
    EXPECT_TRUE(fails_with(v5_connect(0x02, bytes({0x19, 0x02}), str("x")), v5,
                           reason_code::protocol_error));
}

TEST(DecodeConnect, V5AuthenticationDataWithoutMethodIsProtocolError) {
    EXPECT_TRUE(fails_with(v5_connect(0x02, bytes({0x16}) + str("d"), str("x")), v5,
                           reason_code::protocol_error));
}

TEST(DecodeConnect, V5PropertyLengthBeyondPacketIsMalformed) {
    EXPECT_TRUE(fails_with(connect_packet("MQTT", 5, 0x02, bytes({0x0A, 0x11, 0, 0, 0, 1})), v5,
                           reason_code::malformed_packet));
}

TEST(DecodeConnect, V5PropertyValueCutByPropertyLengthIsMalformed) {
    // Property length 3, but Session Expiry Interval needs 4 bytes after its identifier.
    EXPECT_TRUE(fails_with(connect_packet("MQTT", 5, 0x02,
                                          bytes({0x03, 0x11, 0, 0, 0, 1}) + str("x")),
                           v5, reason_code::malformed_packet));
}

TEST(DecodeConnect, V5PropertyLengthFiveBytesIsMalformed) {
    EXPECT_TRUE(fails_with(connect_packet("MQTT", 5, 0x02,
                                          bytes({0x80, 0x80, 0x80, 0x80, 0x00}) + str("x")),
                           v5, reason_code::malformed_packet));
}

TEST(DecodeConnect, V5InvalidUtf8InUserPropertyIsMalformed) {
    EXPECT_TRUE(fails_with(v5_connect(0x02, bytes({0x26}) + str("k") + str("\xC0\xAF"),
                                      str("x")),
                           v5, reason_code::malformed_packet));
}

TEST(DecodeConnect, V5WillProperties) {
    const auto will_props = props(bytes({0x18, 0, 0, 0, 9, 0x01, 0x01, 0x09}) + str("\xFF"));
    const auto c = decode_as<connect>(
        v5_connect(0x06, "", str("x") + will_props + str("t") + str("m")), v5);
    ASSERT_TRUE(c.will);
    EXPECT_EQ(c.will->props.will_delay_interval, 9u);
    EXPECT_EQ(c.will->props.payload_format_indicator, 1);
    EXPECT_EQ(c.will->props.correlation_data, "\xFF");
}

TEST(DecodeConnect, V5WillPropertyNotAllowedIsMalformed) {
    const auto will_props = props(bytes({0x11, 0, 0, 0, 9}));
    EXPECT_TRUE(fails_with(v5_connect(0x06, "", str("x") + will_props + str("t") + str("m")), v5,
                           reason_code::malformed_packet));
}

TEST(DecodeConnect, V5DuplicateWillPropertyIsProtocolError) {
    const auto will_props = props(bytes({0x02, 0, 0, 0, 9, 0x02, 0, 0, 0, 9}));
    EXPECT_TRUE(fails_with(v5_connect(0x06, "", str("x") + will_props + str("t") + str("m")), v5,
                           reason_code::protocol_error));
}

TEST(DecodeConnack, V311SessionPresentAndReturnCodes) {
    const auto c = decode_as<connack>(bytes({0x20, 0x02, 0x01, 0x00}), v311);
    EXPECT_TRUE(c.session_present);
    EXPECT_EQ(c.reason, reason_code::success);
    const struct {
        int code;
        reason_code reason;
    } cases[] = {{1, reason_code::unsupported_protocol_version},
                 {2, reason_code::client_identifier_not_valid},
                 {3, reason_code::server_unavailable},
                 {4, reason_code::bad_user_name_or_password},
                 {5, reason_code::not_authorized}};
    for (const auto& k : cases)
        EXPECT_EQ(decode_as<connack>(bytes({0x20, 0x02, 0x00, k.code}), v311).reason, k.reason);
}

TEST(DecodeConnack, V311ReturnCode6IsMalformed) {
    EXPECT_TRUE(fails_with(bytes({0x20, 0x02, 0x00, 0x06}), v311, reason_code::malformed_packet));
}

TEST(DecodeConnack, V311ReservedAcknowledgeFlagsAreMalformed) {
    EXPECT_TRUE(fails_with(bytes({0x20, 0x02, 0x02, 0x00}), v311, reason_code::malformed_packet));
}

TEST(DecodeConnack, V31IgnoresFirstByte) {
    EXPECT_FALSE(decode_as<connack>(bytes({0x20, 0x02, 0x01, 0x00}), v31).session_present);
}

TEST(DecodeConnack, V311TrailingByteIsMalformed) {
    EXPECT_TRUE(fails_with(bytes({0x20, 0x03, 0x00, 0x00, 0x00}), v311,
                           reason_code::malformed_packet));
}

TEST(DecodeConnack, V5MissingPropertyLengthIsMalformed) {
    EXPECT_TRUE(fails_with(bytes({0x20, 0x02, 0x00, 0x00}), v5, reason_code::malformed_packet));
}

TEST(DecodeConnack, V5ReasonNotAllowedIsProtocolError) {
    EXPECT_TRUE(fails_with(bytes({0x20, 0x03, 0x00, 0x10, 0x00}), v5,
                           reason_code::protocol_error));
}

TEST(DecodeConnack, V5PropertyNotAllowedIsMalformed) {
    EXPECT_TRUE(fails_with(with_header(0x20, bytes({0x00, 0x00}) + props(bytes({0x17, 0x01}))),
                           v5, reason_code::malformed_packet));
}

TEST(DecodeConnack, V5MaximumQos2IsProtocolError) {
    EXPECT_TRUE(fails_with(with_header(0x20, bytes({0x00, 0x00}) + props(bytes({0x24, 0x02}))),
                           v5, reason_code::protocol_error));
}

}  // namespace
}  // namespace iothub::mqtt::test

namespace iothub::mqtt::test {
namespace {

std::optional<protocol_version> version_of(const std::string& body) {
    return connect_version(as_bytes(body));
}

TEST(ConnectVersion, FromNameAndLevel) {
    EXPECT_EQ(version_of(str("MQTT") + bytes({4})), protocol_version::v311);
    EXPECT_EQ(version_of(str("MQTT") + bytes({5, 0xFF})), protocol_version::v5);
    EXPECT_EQ(version_of(str("MQIsdp") + bytes({3})), protocol_version::v31);
}

TEST(ConnectVersion, UnknownOrInconsistent) {
    EXPECT_EQ(version_of(str("MQTT") + bytes({3})), std::nullopt);
    EXPECT_EQ(version_of(str("MQTT") + bytes({6})), std::nullopt);
    EXPECT_EQ(version_of(str("MQIsdp") + bytes({4})), std::nullopt);
    EXPECT_EQ(version_of(str("MQTX") + bytes({4})), std::nullopt);
    EXPECT_EQ(version_of(str("MQTT")), std::nullopt);
    EXPECT_EQ(version_of(""), std::nullopt);
}

// A v5 CONNECT with a bad property still tells the server to answer in v5.
TEST(ConnectVersion, KnownWhenDecodeFails) {
    const auto wire = with_header(
        0x10, str("MQTT") + bytes({5, 0x02, 0, 10}) + props(bytes({0x23, 0, 1})) + str("x"));
    EXPECT_TRUE(fails_with(wire, protocol_version::v311, reason_code::malformed_packet));
    EXPECT_EQ(version_of(wire.substr(2)), protocol_version::v5);
}

}  // namespace
}  // namespace iothub::mqtt::test
