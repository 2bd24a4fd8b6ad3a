// Writes one seed file per valid packet, for every packet type and protocol version, into the
// directory given as the first argument.

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "mqtt/codec.hpp"

namespace {

using namespace iothub::mqtt;

std::vector<packet> seeds(protocol_version v) {
    const bool v5 = v == protocol_version::v5;
    std::vector<packet> out;

    connect c;
    c.version = v;
    c.keep_alive = 30;
    c.client_id = "device-1";
    c.username = "user";
    c.password = "secret";
    will_message w{"will/t", "gone", 1, true, {}};
    if (v5) {
        c.props.session_expiry_interval = 60;
        c.props.receive_maximum = 10;
        c.props.user_properties = {{"k", "v"}};
        w.props.will_delay_interval = 5;
        w.props.content_type = "text/plain";
    }
    c.will = w;
    out.push_back(c);

    connack ca;
    ca.session_present = v != protocol_version::v31;
    if (v5) {
        ca.props.topic_alias_maximum = 10;
        ca.props.assigned_client_identifier = "auto";
        ca.props.maximum_qos = 1;
    }
    out.push_back(ca);

    publish p;
    p.qos = 1;
    p.packet_id = 7;
    p.topic = "sensors/1/temp";
    p.payload = "21.5";
    if (v5) {
        p.props.payload_format_indicator = 1;
        p.props.message_expiry_interval = 100;
        p.props.response_topic = "reply";
        p.props.correlation_data = "\x01\x02";
        p.props.subscription_identifiers = {1, 300};
        p.props.topic_alias = 2;
    }
    out.push_back(p);

    for (auto t : {packet_type::puback, packet_type::pubrec, packet_type::pubrel,
                   packet_type::pubcomp}) {
        ack a{t, 7, reason_code::success, {}};
        if (v5 && t == packet_type::pubrec) {
            a.reason = reason_code::quota_exceeded;
            a.props.reason_string = "full";
        }
        out.push_back(a);
    }

    subscribe s;
    s.packet_id = 3;
    s.subscriptions = {{"a/+/c", 1}, {"#", 0}};
    if (v5) {
        s.props.subscription_identifiers = {42};
        s.subscriptions.push_back({"$share/g/x", 2, false, true, 2});
    }
    out.push_back(s);

    suback sa;
    sa.packet_id = 3;
    sa.reasons = {reason_code::granted_qos_1, reason_code::unspecified_error};
    out.push_back(sa);

    unsubscribe us;
    us.packet_id = 4;
    us.filters = {"a/+/c", "#"};
    out.push_back(us);

    unsuback ua;
    ua.packet_id = 4;
    if (v5) ua.reasons = {reason_code::success, reason_code::no_subscription_existed};
    out.push_back(ua);

    out.push_back(pingreq{});
    out.push_back(pingresp{});

    disconnect d;
    if (v5) {
        d.reason = reason_code::disconnect_with_will;
        d.props.session_expiry_interval = 0;
    }
    out.push_back(d);

    if (v5) {
        auth a{reason_code::continue_authentication, {}};
        a.props.authentication_method = "SCRAM-SHA-256";
        a.props.authentication_data = "abc";
        out.push_back(a);
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    const struct {
        protocol_version version;
        const char* name;
    } versions[] = {{protocol_version::v31, "v31"},
                    {protocol_version::v311, "v311"},
                    {protocol_version::v5, "v5"}};
    for (const auto& ver : versions) {
        std::string session;  // every packet of the version in one input, as on a connection
        for (const auto& p : seeds(ver.version)) {
            std::string wire;
            encode(p, ver.version, wire);
            session += wire;
            std::string name = to_string(type_of(p));
            for (auto& ch : name) ch = static_cast<char>(ch - 'A' + 'a');
            std::ofstream(dir + "/" + ver.name + "_" + name + ".bin", std::ios::binary) << wire;
        }
        std::ofstream(dir + "/" + ver.name + "_session.bin", std::ios::binary) << session;
    }
    return 0;
}
