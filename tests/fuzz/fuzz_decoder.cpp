// Arbitrary bytes through read_frame + decode for every protocol version. Every packet that
// decodes must survive encode -> read_frame -> decode unchanged, and encode to the same
// bytes the second time. Every PUBLISH is also decoded into one object reused across inputs
// and versions (as a broker worker does, with one object for 3.x and one for v5), and must
// come out as decode() gives it.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>

#include "mqtt/codec.hpp"
#include "mqtt/topic.hpp"

namespace {

using namespace iothub::mqtt;

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "round-trip property violated: %s\n", what);
    std::abort();
}

std::span<const std::uint8_t> as_bytes(const std::string& s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

const properties* props_of(const packet& p) {
    return std::visit(
        [](const auto& pkt) -> const properties* {
            if constexpr (requires { pkt.props; })
                return &pkt.props;
            else
                return nullptr;
        },
        p);
}

void check_topic_rules(const packet& p) {
    const auto* pub = std::get_if<publish>(&p);
    if (pub == nullptr || !valid_topic_name(pub->topic)) return;
    // A valid topic name is a valid filter that matches itself.
    if (!valid_topic_filter(pub->topic)) fail("topic name is not a valid filter");
    if (!topic_matches(pub->topic, pub->topic)) fail("topic does not match itself");
    if (topic_matches("#", pub->topic) == (pub->topic.front() == '$'))
        fail("'#' and the '$' rule");
}

void check_round_trip(const packet& p, protocol_version v) {
    // A CONNECT carries its own version; everything else is encoded for the session's.
    if (const auto* c = std::get_if<connect>(&p)) v = c->version;

    std::string wire;
    encode(p, v, wire);
    frame f;
    decode_error err;
    if (read_frame(as_bytes(wire), 0, f, err) != decode_status::ok) fail("read_frame");
    if (f.total_size() != wire.size()) fail("frame size");
    packet back;
    if (decode(f, as_bytes(wire).subspan(f.header_size), v, back, err) != decode_status::ok)
        fail(err.message);
    if (!(back == p)) fail("decoded packet differs");
    std::string again;
    encode(back, v, again);
    if (again != wire) fail("second encoding differs");

    if (const auto* props = props_of(p)) {
        std::string bytes;
        encode_properties(*props, bytes);
        properties decoded;
        if (!decode_properties(as_bytes(bytes), decoded)) fail("decode_properties");
        if (!(decoded == *props)) fail("properties differ");
    }
    check_topic_rules(p);
}

void check_reused_publish(const frame& f, std::span<const std::uint8_t> body, protocol_version v,
                          decode_status whole_status, const packet& whole) {
    static publish reused_v3;
    static publish reused_v5;
    auto& reused = v == protocol_version::v5 ? reused_v5 : reused_v3;
    decode_error err;
    const auto status = decode_publish(f, body, v, reused, err);
    if (status != whole_status) fail("decode_publish status differs from decode");
    if (status == decode_status::ok && !(std::get<publish>(whole) == reused))
        fail("decode_publish into a reused object differs from decode");
}

void run(std::span<const std::uint8_t> buf, protocol_version v) {
    while (!buf.empty()) {
        frame f;
        decode_error err;
        if (read_frame(buf, 1u << 20, f, err) != decode_status::ok) return;
        if (f.total_size() > buf.size()) return;
        packet p;
        const auto body = buf.subspan(f.header_size, f.remaining_length);
        const auto status = decode(f, body, v, p, err);
        if (f.type == packet_type::publish) check_reused_publish(f, body, v, status, p);
        if (status == decode_status::ok) {
            if (const auto* c = std::get_if<connect>(&p); c && connect_version(body) != c->version)
                fail("connect_version disagrees with decode");
            check_round_trip(p, v);
        } else if (err.message == nullptr || err.message[0] == '\0') {
            fail("error without message");
        }
        buf = buf.subspan(f.total_size());
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> buf(data, size);
    for (auto v : {protocol_version::v31, protocol_version::v311, protocol_version::v5}) run(buf, v);
    return 0;
}
