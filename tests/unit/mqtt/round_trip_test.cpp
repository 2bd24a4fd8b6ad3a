// encode -> read_frame -> decode gives back the same packet, for every packet type and
// every protocol version, with every property each packet type may carry on v5.

#include <vector>

#include "mqtt_test_util.hpp"

namespace iothub::mqtt::test {
namespace {

user_property up(const char* k, const char* v) { return {k, v}; }

properties connect_props() {
    properties p;
    p.session_expiry_interval = 3600;
    p.receive_maximum = 20;
    p.maximum_packet_size = 65536;
    p.topic_alias_maximum = 8;
    p.request_response_information = 1;
    p.request_problem_information = 0;
    p.user_properties = {up("a", "1"), up("a", "2"), up("b", "")};
    p.authentication_method = "SCRAM-SHA-1";
    p.authentication_data = std::string("\x00\x01\xFE", 3);
    return p;
}

properties will_props() {
    properties p;
    p.payload_format_indicator = 1;
    p.message_expiry_interval = 60;
    p.content_type = "text/plain";
    p.response_topic = "reply/here";
    p.correlation_data = std::string("\xFF\x00", 2);
    p.will_delay_interval = 30;
    p.user_properties = {up("w", "x")};
    return p;
}

properties connack_props() {
    properties p;
    p.session_expiry_interval = 0;
    p.receive_maximum = 100;
    p.maximum_qos = 1;
    p.retain_available = 0;
    p.maximum_packet_size = 1 << 20;
    p.assigned_client_identifier = "auto-1";
    p.topic_alias_maximum = 16;
    p.reason_string = "fine";
    p.user_properties = {up("k", "v")};
    p.wildcard_subscription_available = 1;
    p.subscription_identifier_available = 1;
    p.shared_subscription_available = 0;
    p.server_keep_alive = 30;
    p.response_information = "resp/";
    p.server_reference = "other:1883";
    p.authentication_method = "m";
    p.authentication_data = "d";
    return p;
}

properties publish_props() {
    properties p;
    p.payload_format_indicator = 0;
    p.message_expiry_interval = 10;
    p.topic_alias = 4;
    p.response_topic = "r";
    p.correlation_data = "c";
    p.user_properties = {up("x", "y"), up("x", "y")};
    p.subscription_identifiers = {1, 268'435'455, 77};
    p.content_type = "application/json";
    return p;
}

properties reason_props() {
    properties p;
    p.reason_string = "because";
    p.user_properties = {up("u", "v")};
    return p;
}

properties user_only() {
    properties p;
    p.user_properties = {up("only", "user")};
    return p;
}

std::vector<packet> samples(protocol_version v) {
    const bool v5 = v == protocol_version::v5;
    std::vector<packet> out;

    connect c;
    c.version = v;
    c.protocol_name = v == protocol_version::v31 ? "MQIsdp" : "MQTT";
    c.clean_start = false;
    c.keep_alive = 65535;
    c.client_id = "device-\xC3\xA9";
    will_message w;
    w.topic = "will/topic";
    w.payload = std::string("\x00\x80\xFF", 3);
    w.qos = 2;
    w.retain = true;
    if (v5) w.props = will_props();
    c.will = w;
    c.username = "user";
    c.password = std::string("\xC0\x00pw", 4);
    if (v5) c.props = connect_props();
    out.push_back(c);

    connect minimal;
    minimal.version = v;
    minimal.protocol_name = c.protocol_name;
    minimal.client_id = "";
    out.push_back(minimal);

    connack ca;
    ca.session_present = v != protocol_version::v31;  // 3.1 has no session present flag
    out.push_back(ca);
    connack refused;
    refused.reason = reason_code::bad_user_name_or_password;
    if (v5) refused.props = connack_props();
    out.push_back(refused);

    publish q0;
    q0.topic = "a/b/c";
    q0.payload = "payload";
    out.push_back(q0);
    publish q1;
    q1.qos = 1;
    q1.retain = true;
    q1.packet_id = 1;
    q1.topic = "x";
    out.push_back(q1);
    publish q2;
    q2.qos = 2;
    q2.dup = true;
    q2.packet_id = 65535;
    q2.topic = "+/#";  // not the decoder's business
    q2.payload = std::string(300, '\0');
    if (v5) q2.props = publish_props();
    out.push_back(q2);
    if (v5) {
        publish aliased;
        aliased.props.topic_alias = 1;
        aliased.payload = "p";
        out.push_back(aliased);
    }

    for (auto t : {packet_type::puback, packet_type::pubrec, packet_type::pubrel,
                   packet_type::pubcomp}) {
        out.push_back(ack{t, 42, reason_code::success, {}});
        if (v5) {
            const bool rel_or_comp = t == packet_type::pubrel || t == packet_type::pubcomp;
            const auto rc = rel_or_comp ? reason_code::packet_identifier_not_found
                                        : reason_code::not_authorized;
            out.push_back(ack{t, 43, rc, {}});
            out.push_back(ack{t, 44, rc, reason_props()});
            out.push_back(ack{t, 45, reason_code::success, user_only()});
        }
    }

    subscribe s;
    s.packet_id = 9;
    s.subscriptions.push_back({"a/+/c", 0});
    s.subscriptions.push_back({"#", 2});
    if (v5) {
        s.props.subscription_identifiers = {12345};
        s.props.user_properties = {up("s", "t")};
        s.subscriptions.push_back({"$share/g/t", 1, false, true, 1});
        s.subscriptions.push_back({"n/l", 1, true, false, 2});
    }
    out.push_back(s);

    suback sa;
    sa.packet_id = 9;
    sa.reasons = {reason_code::success, reason_code::granted_qos_1, reason_code::granted_qos_2,
                  reason_code::unspecified_error};
    if (v5) {
        sa.reasons.push_back(reason_code::topic_filter_invalid);
        sa.props = reason_props();
    }
    out.push_back(sa);

    unsubscribe us;
    us.packet_id = 300;
    us.filters = {"a", "b/#", ""};
    if (v5) us.props = user_only();
    out.push_back(us);

    unsuback ua;
    ua.packet_id = 300;
    if (v5) {
        ua.reasons = {reason_code::success, reason_code::no_subscription_existed};
        ua.props = reason_props();
    }
    out.push_back(ua);

    out.push_back(pingreq{});
    out.push_back(pingresp{});
    out.push_back(disconnect{});
    if (v5) {
        out.push_back(disconnect{reason_code::disconnect_with_will, {}});
        disconnect d{reason_code::server_shutting_down, reason_props()};
        d.props.session_expiry_interval = 0;
        d.props.server_reference = "elsewhere";
        out.push_back(d);
        out.push_back(auth{});
        auth a{reason_code::re_authenticate, reason_props()};
        a.props.authentication_method = "m";
        a.props.authentication_data = std::string("\x00", 1);
        out.push_back(a);
    }
    return out;
}

class RoundTrip : public ::testing::TestWithParam<protocol_version> {};

TEST_P(RoundTrip, EveryPacketType) {
    const auto v = GetParam();
    for (const auto& p : samples(v)) {
        SCOPED_TRACE(to_string(type_of(p)));
        const auto wire = encoded(p, v);
        const auto d = decode_wire(wire, v);
        ASSERT_EQ(d.status, decode_status::ok) << hex(wire) << ": " << d.err.message;
        EXPECT_EQ(d.f.type, type_of(p));
        EXPECT_EQ(d.pkt, p) << hex(wire);
        EXPECT_EQ(encoded(d.pkt, v), wire);
    }
}

TEST_P(RoundTrip, ManyPacketsInOneBuffer) {
    const auto v = GetParam();
    const auto list = samples(v);
    std::string wire;
    for (const auto& p : list) encode(p, v, wire);
    auto rest = as_bytes(wire);
    std::size_t n = 0;
    while (!rest.empty()) {
        frame f;
        decode_error err;
        ASSERT_EQ(read_frame(rest, 0, f, err), decode_status::ok);
        ASSERT_LE(f.total_size(), rest.size());
        packet p;
        ASSERT_EQ(decode(f, rest.subspan(f.header_size), v, p, err), decode_status::ok)
            << err.message;
        ASSERT_LT(n, list.size());
        EXPECT_EQ(p, list[n]);
        ++n;
        rest = rest.subspan(f.total_size());
    }
    EXPECT_EQ(n, list.size());
}

TEST_P(RoundTrip, EveryPrefixNeedsMoreOrDecodesFrame) {
    const auto v = GetParam();
    publish p;
    p.topic = "t";
    p.payload.assign(20'000, 'q');  // three-byte remaining length
    const auto wire = encoded(p, v);
    for (std::size_t n = 0; n < 4; ++n) {
        frame f;
        decode_error err;
        EXPECT_EQ(read_frame(as_bytes(wire).first(n), 0, f, err), decode_status::need_more) << n;
    }
    frame f;
    decode_error err;
    ASSERT_EQ(read_frame(as_bytes(wire).first(4), 0, f, err), decode_status::ok);
    EXPECT_EQ(f.header_size, 4u);
    EXPECT_EQ(f.total_size(), wire.size());
}

INSTANTIATE_TEST_SUITE_P(AllVersions, RoundTrip,
                         ::testing::Values(protocol_version::v31, protocol_version::v311,
                                           protocol_version::v5),
                         [](const auto& info) {
                             switch (info.param) {
                                 case protocol_version::v31: return std::string("v31");
                                 case protocol_version::v311: return std::string("v311");
                                 default: return std::string("v5");
                             }
                         });

TEST(RoundTripProperties, EveryPropertyThroughDecodeProperties) {
    properties p = connack_props();
    const auto w = will_props();
    p.payload_format_indicator = w.payload_format_indicator;
    p.message_expiry_interval = w.message_expiry_interval;
    p.content_type = w.content_type;
    p.response_topic = w.response_topic;
    p.correlation_data = w.correlation_data;
    p.will_delay_interval = w.will_delay_interval;
    p.subscription_identifiers = {1, 2, 3};
    p.request_problem_information = 1;
    p.request_response_information = 0;
    p.topic_alias = 9;
    std::string out;
    encode_properties(p, out);
    properties back;
    ASSERT_TRUE(decode_properties(as_bytes(out), back));
    EXPECT_EQ(back, p);
}

TEST(RoundTripProperties, DecodePropertiesRejectsTrailingAndBadInput) {
    properties back;
    EXPECT_TRUE(decode_properties(as_bytes(bytes({0x00})), back));
    EXPECT_FALSE(decode_properties(as_bytes(bytes({0x00, 0x00})), back));
    EXPECT_FALSE(decode_properties(as_bytes(bytes({0x02, 0x23, 0x00})), back));
    EXPECT_FALSE(decode_properties(as_bytes(bytes({0x02, 0x7F, 0x00})), back));
    EXPECT_FALSE(decode_properties(as_bytes(bytes({})), back));
}

}  // namespace
}  // namespace iothub::mqtt::test
