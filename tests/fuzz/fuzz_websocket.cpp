// The WebSocket codec fed arbitrary bytes. The first byte picks what is fuzzed:
//   odd:  the opening handshake. The rest goes to parse_upgrade() whole and prefix by prefix
//         (as a connection's read buffer grows); bit 1 set: the next byte sets the length of
//         an "X-Pad" header inserted after the request line, to reach the 8192-byte limit.
//   even: the frame decoder. Then a byte for max_frame, two for a cut point, and the frames.
//         The frames are decoded whole, cut in two, and (when short) a byte at a time; every
//         way must give the same byte stream, controls, verdict and close code.
// Seeds: tests/fuzz/corpus/websocket.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "net/websocket.hpp"

namespace {

using namespace iothub::net::ws;

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "websocket property violated: %s\n", what);
    std::abort();
}

void check(bool ok, const char* what) {
    if (!ok) fail(what);
}

const upgrade_policy& policy() {
    static const upgrade_policy p{.path = "/mqtt",
                                  .origins = {"http://localhost:8080", "https://app.example.com"}};
    return p;
}

void check_outcome(const upgrade_outcome& o, std::string_view received) {
    check(o.consumed <= received.size(), "consumed beyond the bytes received");
    switch (o.result) {
    case upgrade_outcome::kind::incomplete:
        check(o.consumed == 0 && o.status == 0 && o.response.empty(), "incomplete with a verdict");
        check(received.size() < max_request_head, "incomplete past the head limit");
        check(received.find("\r\n\r\n") == std::string_view::npos, "incomplete after the head");
        break;
    case upgrade_outcome::kind::accepted:
        check(o.status == 101, "accepted without 101");
        check(o.response.starts_with("HTTP/1.1 101 "), "accepted response is not a 101");
        check(o.response.ends_with("\r\n\r\n"), "accepted response not ended");
        check(o.response.find("\r\nSec-WebSocket-Accept: ") != std::string::npos,
              "accepted without Sec-WebSocket-Accept");
        check(o.subprotocol.empty() || o.subprotocol == "mqtt" || o.subprotocol == "mqttv3.1",
              "accepted an unsupported subprotocol");
        check(o.consumed >= 4 && o.consumed <= max_request_head, "accepted head size");
        check(received.substr(o.consumed - 4, 4) == "\r\n\r\n", "accepted head does not end there");
        check(received.starts_with("GET "), "accepted something other than a GET");
        break;
    case upgrade_outcome::kind::refused: {
        static constexpr int statuses[] = {400, 403, 404, 405, 426, 431};
        check(std::find(std::begin(statuses), std::end(statuses), o.status) != std::end(statuses),
              "refused with an unexpected status");
        check(o.response.starts_with("HTTP/1.1 " + std::to_string(o.status) + " "),
              "refusal's status line");
        check(o.response.ends_with(o.why + "\n"), "refusal's body is not its reason");
        check(o.subprotocol.empty(), "refused with a subprotocol");
        check(o.consumed > 0, "refused nothing");
        break;
    }
    }
}

void fuzz_upgrade(std::string_view received) {
    const auto whole = parse_upgrade(received, policy());
    check_outcome(whole, received);

    // Every prefix is undecided, or decided as the whole is. Long inputs are checked at every
    // prefix near where a decision may fall and at a stride elsewhere, to keep runs fast.
    const std::size_t n = received.size();
    const auto near = [](std::size_t at, std::size_t point) {
        return at + 8 >= point && at <= point + 8;
    };
    for (std::size_t at = 0; at <= n; ++at) {
        if (n > 1024 && at > 256 && at % 61 != 0 && !near(at, whole.consumed) &&
            !near(at, max_request_head) && !near(at, n))
            continue;
        const auto prefix = received.substr(0, at);
        const auto o = parse_upgrade(prefix, policy());
        check_outcome(o, prefix);
        if (o.result == upgrade_outcome::kind::incomplete) continue;
        check(o.result == whole.result && o.status == whole.status,
              "a prefix decided otherwise than the whole");
        if (o.status != 431) {
            // Decided by the head alone: the same bytes consumed, the same answer.
            check(o.consumed == whole.consumed, "a prefix consumed otherwise than the whole");
            check(o.response == whole.response, "a prefix got another response");
            check(o.subprotocol == whole.subprotocol, "a prefix got another subprotocol");
        }
    }
}

struct decoded {
    std::string stream;
    std::vector<frame_decoder::control> controls;
    bool ok = true;
    std::uint16_t code = 0;
    std::string error;
    bool closed = false;
};

// Feeds `wire` cut at `cuts` (ascending), each piece in a buffer of its own.
decoded decode(std::string_view wire, std::uint64_t max_frame,
               const std::vector<std::size_t>& cuts) {
    frame_decoder decoder(max_frame);
    decoded d;
    std::size_t from = 0;
    for (std::size_t i = 0; i <= cuts.size(); ++i) {
        const std::size_t to = i < cuts.size() ? cuts[i] : wire.size();
        std::vector<std::uint8_t> buffer(wire.begin() + from, wire.begin() + to);
        std::size_t out = ~std::size_t{0};
        const auto before = d.controls.size();
        const bool ok = decoder.feed(buffer.data(), buffer.size(), out, d.controls);
        check(out <= buffer.size(), "out beyond the bytes fed");
        if (!d.ok) {
            // Once failed, always failed, and nothing more comes out.
            check(!ok && out == 0 && d.controls.size() == before, "a feed after a failure");
        } else {
            d.stream.append(reinterpret_cast<const char*>(buffer.data()), out);
            d.ok = ok;
        }
        if (d.closed) check(out == 0 && d.controls.size() == before, "decoded after a close");
        d.closed = decoder.closed();
        from = to;
    }
    d.code = decoder.error_code();
    d.error = std::string(decoder.error());
    check(d.ok == (d.code == 0), "verdict and close code disagree");
    for (const auto& c : d.controls) {
        check(c.op == opcode::ping || c.op == opcode::pong || c.op == opcode::close,
              "a data opcode among the controls");
        check(c.payload.size() <= 125, "control payload over 125 bytes");
        if (c.op == opcode::close)
            check(&c == &d.controls.back() && close_code_of(c.payload) != 0, "bad close control");
    }
    if (d.ok && !d.controls.empty() && d.controls.back().op == opcode::close)
        check(d.closed, "a close frame without closed()");
    return d;
}

bool same(const decoded& a, const decoded& b) {
    if (a.stream != b.stream || a.ok != b.ok || a.code != b.code || a.error != b.error ||
        a.closed != b.closed || a.controls.size() != b.controls.size())
        return false;
    for (std::size_t i = 0; i < a.controls.size(); ++i)
        if (a.controls[i].op != b.controls[i].op || a.controls[i].payload != b.controls[i].payload)
            return false;
    return true;
}

void fuzz_frames(const std::uint8_t* data, std::size_t size) {
    if (size < 3) return;
    // Small limits, and powers of two up to 2^63.
    const std::uint64_t max_frame =
        (data[0] & 0x80) != 0 ? std::uint64_t{1} << (data[0] & 0x3f) : std::uint64_t{data[0]} * 4;
    const std::size_t cut_seed = (std::size_t{data[1]} << 8) | data[2];
    const std::string_view wire(reinterpret_cast<const char*>(data + 3), size - 3);

    const auto whole = decode(wire, max_frame, {});
    check(whole.stream.size() <= wire.size(), "more bytes out than in");
    const auto split = decode(wire, max_frame, {cut_seed % (wire.size() + 1)});
    if (!same(whole, split)) fail("whole and split decodes differ");
    if (wire.size() <= 512) {
        std::vector<std::size_t> cuts;
        for (std::size_t i = 1; i < wire.size(); ++i) cuts.push_back(i);
        if (!same(whole, decode(wire, max_frame, cuts))) fail("whole and bytewise decodes differ");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t mode = data[0];
    ++data;
    --size;
    if ((mode & 1) == 0) {
        fuzz_frames(data, size);
        return 0;
    }
    std::string received(reinterpret_cast<const char*>(data), size);
    if ((mode & 2) != 0 && !received.empty()) {
        const std::size_t pad = std::size_t{static_cast<std::uint8_t>(received[0])} * 33;
        received.erase(0, 1);
        const auto eol = received.find("\r\n");
        const auto at = eol == std::string::npos ? received.size() : eol + 2;
        received.insert(at, "X-Pad: " + std::string(pad, 'a') + "\r\n");
    }
    fuzz_upgrade(received);
    return 0;
}
