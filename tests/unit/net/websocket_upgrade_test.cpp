// The WebSocket opening handshake (RFC 6455 section 4.2): parse_upgrade() and accept_token().

#include <gtest/gtest.h>

#include <cctype>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "net/websocket.hpp"

namespace iothub::net::ws {
namespace {

using kind = upgrade_outcome::kind;
using header_list = std::vector<std::pair<std::string, std::string>>;

// What Chromium sends for MQTT.js's `mqtt.connect("ws://localhost:8083/mqtt")`, with the key of
// RFC 6455's example.
header_list browser_headers() {
    return {
        {"Host", "localhost:8083"},
        {"Connection", "Upgrade"},
        {"Pragma", "no-cache"},
        {"Cache-Control", "no-cache"},
        {"User-Agent",
         "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/124.0.0.0 Safari/537.36"},
        {"Upgrade", "websocket"},
        {"Origin", "http://localhost:8080"},
        {"Sec-WebSocket-Version", "13"},
        {"Accept-Encoding", "gzip, deflate, br, zstd"},
        {"Accept-Language", "en-US,en;q=0.9"},
        {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
        {"Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"},
        {"Sec-WebSocket-Protocol", "mqtt"},
    };
}

header_list with(header_list headers, const std::string& name, const std::string& value) {
    for (auto& [n, v] : headers) {
        if (n == name) {
            v = value;
            return headers;
        }
    }
    headers.emplace_back(name, value);
    return headers;
}

header_list without(header_list headers, const std::string& name) {
    std::erase_if(headers, [&name](const auto& h) { return h.first == name; });
    return headers;
}

std::string request(const header_list& headers, const std::string& line = "GET /mqtt HTTP/1.1") {
    std::string r = line + "\r\n";
    for (const auto& [name, value] : headers) r += name + ": " + value + "\r\n";
    return r + "\r\n";
}

// An HTTP response taken apart, header names lower-cased.
struct response {
    std::string status_line;
    std::multimap<std::string, std::string> headers;
    std::string body;

    std::optional<std::string> header(const std::string& name) const {
        const auto it = headers.find(name);
        if (it == headers.end()) return std::nullopt;
        return it->second;
    }
};

response parse_response(const std::string& text) {
    response r;
    const auto head_end = text.find("\r\n\r\n");
    EXPECT_NE(head_end, std::string::npos) << text;
    if (head_end == std::string::npos) return r;
    r.body = text.substr(head_end + 4);
    std::size_t at = text.find("\r\n");
    r.status_line = text.substr(0, at);
    while (at < head_end) {
        at += 2;
        const auto eol = text.find("\r\n", at);
        const auto line = text.substr(at, eol - at);
        const auto colon = line.find(':');
        EXPECT_NE(colon, std::string::npos) << line;
        std::string name = line.substr(0, colon);
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        auto value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        r.headers.emplace(name, value);
        at = eol;
    }
    return r;
}

upgrade_outcome upgrade(const std::string& received, const upgrade_policy& policy = {}) {
    return parse_upgrade(received, policy);
}

// A refusal with `status`: the whole request consumed, a complete response that closes.
void expect_refused(const upgrade_outcome& o, int status, std::size_t consumed) {
    EXPECT_EQ(o.result, kind::refused);
    EXPECT_EQ(o.status, status);
    EXPECT_EQ(o.consumed, consumed);
    EXPECT_FALSE(o.why.empty());
    EXPECT_TRUE(o.subprotocol.empty());
    const auto r = parse_response(o.response);
    EXPECT_EQ(r.status_line.substr(0, 13), "HTTP/1.1 " + std::to_string(status) + " ")
        << r.status_line;
    EXPECT_EQ(r.header("connection"), "close");
    EXPECT_EQ(r.header("content-length"), std::to_string(r.body.size()));
    EXPECT_EQ(r.body, o.why + "\n");
    EXPECT_FALSE(r.header("sec-websocket-accept").has_value());
}

void expect_refused(const std::string& req, int status, const upgrade_policy& policy = {}) {
    SCOPED_TRACE(req);
    expect_refused(upgrade(req, policy), status, req.size());
}

TEST(ws_accept_token, rfc6455_example) {
    // RFC 6455 section 1.3.
    EXPECT_EQ(accept_token("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    // RFC 6455 section 4.2.2's algorithm for another key (computed with
    // `printf %s 'x3JJHMbDL1EzLkh9GBhXDw==258EAFA5-E914-47DA-95CA-C5AB0DC85B11' |
    //  openssl sha1 -binary | base64`).
    EXPECT_EQ(accept_token("x3JJHMbDL1EzLkh9GBhXDw=="), "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

TEST(ws_upgrade, browser_request_is_accepted) {
    const auto req = request(browser_headers());
    const auto o = upgrade(req);
    ASSERT_EQ(o.result, kind::accepted) << o.why;
    EXPECT_EQ(o.status, 101);
    EXPECT_EQ(o.consumed, req.size());
    EXPECT_EQ(o.subprotocol, "mqtt");
    const auto r = parse_response(o.response);
    EXPECT_EQ(r.status_line, "HTTP/1.1 101 Switching Protocols");
    EXPECT_EQ(r.header("upgrade"), "websocket");
    EXPECT_EQ(r.header("connection"), "Upgrade");
    EXPECT_EQ(r.header("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    EXPECT_EQ(r.header("sec-websocket-protocol"), "mqtt");
    EXPECT_EQ(r.headers.count("sec-websocket-protocol"), 1u);
    // permessage-deflate is offered but not negotiated: frames must then never set RSV1.
    EXPECT_FALSE(r.header("sec-websocket-extensions").has_value());
    EXPECT_EQ(r.body, "");
    EXPECT_EQ(r.headers.size(), 4u);
}

TEST(ws_upgrade, node_ws_request_is_accepted) {
    // What MQTT.js sends under Node (the `ws` package): another header order, no Origin.
    const auto req = request({
        {"Sec-WebSocket-Version", "13"},
        {"Sec-WebSocket-Key", "x3JJHMbDL1EzLkh9GBhXDw=="},
        {"Connection", "Upgrade"},
        {"Upgrade", "websocket"},
        {"Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"},
        {"Sec-WebSocket-Protocol", "mqtt"},
        {"Host", "127.0.0.1:8083"},
    });
    const auto o = upgrade(req, {.path = "/mqtt", .origins = {"https://example.com"}});
    ASSERT_EQ(o.result, kind::accepted) << o.why;
    EXPECT_EQ(parse_response(o.response).header("sec-websocket-accept"),
              "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

TEST(ws_upgrade, firefox_connection_keep_alive_upgrade_is_accepted) {
    // Firefox sends "Connection: keep-alive, Upgrade" and a lower-case "upgrade" works too.
    for (const char* value : {"keep-alive, Upgrade", "upgrade", "keep-alive,upgrade", "UPGRADE"}) {
        const auto o = upgrade(request(with(browser_headers(), "Connection", value)));
        EXPECT_EQ(o.result, kind::accepted) << value << ": " << o.why;
    }
    const auto o = upgrade(request(with(browser_headers(), "Upgrade", "WebSocket")));
    EXPECT_EQ(o.result, kind::accepted) << o.why;
}

TEST(ws_upgrade, mqttv31_subprotocol_is_echoed) {
    const auto o = upgrade(request(with(browser_headers(), "Sec-WebSocket-Protocol", "mqttv3.1")));
    ASSERT_EQ(o.result, kind::accepted) << o.why;
    EXPECT_EQ(o.subprotocol, "mqttv3.1");
    EXPECT_EQ(parse_response(o.response).header("sec-websocket-protocol"), "mqttv3.1");
}

TEST(ws_upgrade, supported_subprotocol_is_picked_from_a_list) {
    const auto o = upgrade(request(with(browser_headers(), "Sec-WebSocket-Protocol", "foo, mqtt")));
    ASSERT_EQ(o.result, kind::accepted) << o.why;
    EXPECT_EQ(o.subprotocol, "mqtt");
    EXPECT_EQ(parse_response(o.response).header("sec-websocket-protocol"), "mqtt");
}

TEST(ws_upgrade, no_subprotocol_asked_gets_none) {
    const auto o = upgrade(request(without(browser_headers(), "Sec-WebSocket-Protocol")));
    ASSERT_EQ(o.result, kind::accepted) << o.why;
    EXPECT_EQ(o.subprotocol, "");
    const auto r = parse_response(o.response);
    EXPECT_FALSE(r.header("sec-websocket-protocol").has_value());
    EXPECT_EQ(r.header("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(ws_upgrade, unsupported_subprotocol_is_400) {
    expect_refused(request(with(browser_headers(), "Sec-WebSocket-Protocol", "foo")), 400);
    expect_refused(request(with(browser_headers(), "Sec-WebSocket-Protocol", "")), 400);
    expect_refused(request(with(browser_headers(), "Sec-WebSocket-Protocol", "mqtt5, wamp")), 400);
}

TEST(ws_upgrade, incomplete_head_at_every_cut) {
    const auto req = request(browser_headers());
    for (std::size_t n = 0; n < req.size(); ++n) {
        const auto o = upgrade(req.substr(0, n));
        EXPECT_EQ(o.result, kind::incomplete) << "cut at " << n;
        EXPECT_EQ(o.consumed, 0u);
        EXPECT_EQ(o.response, "");
    }
}

TEST(ws_upgrade, bytes_after_the_head_are_left_for_frames) {
    const auto req = request(browser_headers());
    // A masked binary frame whose payload holds a blank line, as the client may send it with
    // the request (pipelined).
    const std::string frame = "\x82\x84\x00\x00\x00\x00\r\n\r\n";
    const auto o = upgrade(req + frame);
    ASSERT_EQ(o.result, kind::accepted) << o.why;
    EXPECT_EQ(o.consumed, req.size());
    EXPECT_EQ(o.response, upgrade(req).response);
    // A refusal also says where the head ended.
    const auto bad = request(with(browser_headers(), "Sec-WebSocket-Version", "8"));
    EXPECT_EQ(upgrade(bad + frame).consumed, bad.size());
}

TEST(ws_upgrade, query_string_is_ignored) {
    const auto o = upgrade(request(browser_headers(), "GET /mqtt?clientId=a&x=%20 HTTP/1.1"));
    EXPECT_EQ(o.result, kind::accepted) << o.why;
    const auto p =
        upgrade(request(browser_headers(), "GET /ws?x HTTP/1.1"), {.path = "/ws", .origins = {}});
    EXPECT_EQ(p.result, kind::accepted) << p.why;
}

TEST(ws_upgrade, post_is_405) {
    const auto req = request(browser_headers(), "POST /mqtt HTTP/1.1");
    expect_refused(req, 405);
    EXPECT_EQ(parse_response(upgrade(req).response).header("allow"), "GET");
    expect_refused(request(browser_headers(), "PUT /mqtt HTTP/1.1"), 405);
}

TEST(ws_upgrade, other_path_is_404) {
    for (const char* line :
         {"GET / HTTP/1.1", "GET /other HTTP/1.1", "GET /mqtt/ HTTP/1.1", "GET /mqtt/x HTTP/1.1",
          "GET /MQTT HTTP/1.1", "GET /other?/mqtt HTTP/1.1",
          "GET http://localhost:8083/mqtt HTTP/1.1"})
        expect_refused(request(browser_headers(), line), 404);
}

TEST(ws_upgrade, missing_upgrade_header_is_426) {
    const auto req = request(without(browser_headers(), "Upgrade"));
    expect_refused(req, 426);
    // RFC 7230 section 6.7 and RFC 6455 section 4.4: 426 says what to upgrade to.
    const auto r = parse_response(upgrade(req).response);
    EXPECT_EQ(r.header("upgrade"), "websocket");
    EXPECT_EQ(r.header("sec-websocket-version"), "13");
    expect_refused(request(with(browser_headers(), "Upgrade", "h2c")), 426);
}

TEST(ws_upgrade, version_other_than_13_is_426) {
    const auto req = request(with(browser_headers(), "Sec-WebSocket-Version", "8"));
    expect_refused(req, 426);
    EXPECT_EQ(parse_response(upgrade(req).response).header("sec-websocket-version"), "13");
    expect_refused(request(without(browser_headers(), "Sec-WebSocket-Version")), 426);
    expect_refused(request(with(browser_headers(), "Sec-WebSocket-Version", "14")), 426);
}

TEST(ws_upgrade, missing_connection_upgrade_is_400) {
    expect_refused(request(without(browser_headers(), "Connection")), 400);
    expect_refused(request(with(browser_headers(), "Connection", "keep-alive")), 400);
    expect_refused(request(with(browser_headers(), "Connection", "upgraded")), 400);
}

TEST(ws_upgrade, bad_key_is_400) {
    for (const char* key : {
             "dGhlIHNhbXBsZSBub25j",       // 16 bytes of base64 is 24 characters
             "dGhlIHNhbXBsZSBub25jZQ=",    // one '=' short
             "dGhlIHNhbXBsZSBub25jZQ===",  // one too many
             "dGhlIHNhbXBsZSBub25jZQAA",   // 24 characters but no "=="
             "dGhlIHNhbXBsZSBub25jZ!==",   // not base64
             "dGhlIHNhbXBsZSBub2 jZQ==",   // nor is a space
             "dGhlIHNhbXBsZSBub25jZQ=A",
             "",
         }) {
        expect_refused(request(with(browser_headers(), "Sec-WebSocket-Key", key)), 400);
    }
    expect_refused(request(without(browser_headers(), "Sec-WebSocket-Key")), 400);
}

TEST(ws_upgrade, origin_not_listed_is_403) {
    const upgrade_policy policy{.path = "/mqtt",
                                .origins = {"https://app.example.com", "http://localhost:8080"}};
    expect_refused(request(with(browser_headers(), "Origin", "https://evil.example.com")), 403,
                   policy);
    expect_refused(request(with(browser_headers(), "Origin", "http://localhost:8081")), 403,
                   policy);
    expect_refused(request(with(browser_headers(), "Origin", "null")), 403, policy);
    expect_refused(request(with(browser_headers(), "Origin", "https://app.example.com.evil")), 403,
                   policy);
}

TEST(ws_upgrade, origin_listed_is_accepted_ignoring_case) {
    const upgrade_policy policy{.path = "/mqtt",
                                .origins = {"https://app.example.com", "http://localhost:8080"}};
    for (const char* origin :
         {"http://localhost:8080", "HTTP://LocalHost:8080", "https://app.example.com"}) {
        const auto o = upgrade(request(with(browser_headers(), "Origin", origin)), policy);
        EXPECT_EQ(o.result, kind::accepted) << origin << ": " << o.why;
    }
}

TEST(ws_upgrade, origin_case_folding_is_ascii_letters_only) {
    // '[' and '{' differ only in bit 0x20, as 'A' and 'a' do; they are not the same origin.
    const upgrade_policy policy{.path = "/mqtt", .origins = {"http://[::1]:8080"}};
    expect_refused(request(with(browser_headers(), "Origin", "http://{::1}:8080")), 403, policy);
}

TEST(ws_upgrade, no_origin_is_accepted_with_a_list) {
    // Non-browser clients send no Origin; the list guards only against other web pages.
    const upgrade_policy policy{.path = "/mqtt", .origins = {"https://app.example.com"}};
    const auto o = upgrade(request(without(browser_headers(), "Origin")), policy);
    EXPECT_EQ(o.result, kind::accepted) << o.why;
}

TEST(ws_upgrade, any_origin_without_a_list) {
    const auto o = upgrade(request(with(browser_headers(), "Origin", "https://anything.example")));
    EXPECT_EQ(o.result, kind::accepted) << o.why;
}

TEST(ws_upgrade, head_over_8192_bytes_is_431) {
    // No end of head in the first 8192 bytes: refused without waiting for more.
    const std::string endless = "GET /mqtt HTTP/1.1\r\nX-Pad: " + std::string(8192, 'a');
    expect_refused(upgrade(endless.substr(0, max_request_head)), 431, max_request_head);
    expect_refused(upgrade(endless), 431, endless.size());
    EXPECT_EQ(upgrade(endless.substr(0, max_request_head - 1)).result, kind::incomplete);
}

TEST(ws_upgrade, head_of_exactly_8192_bytes_is_accepted_one_more_is_431) {
    const auto base = request(with(browser_headers(), "X-Pad", ""));
    ASSERT_LT(base.size(), max_request_head);
    const auto pad = std::string(max_request_head - base.size(), 'p');
    const auto exact = request(with(browser_headers(), "X-Pad", pad));
    ASSERT_EQ(exact.size(), max_request_head);
    const auto o = upgrade(exact);
    EXPECT_EQ(o.result, kind::accepted) << o.why;
    EXPECT_EQ(o.consumed, max_request_head);

    const auto over = request(with(browser_headers(), "X-Pad", pad + "p"));
    ASSERT_EQ(over.size(), max_request_head + 1);
    expect_refused(over, 431);
}

TEST(ws_upgrade, garbage_is_400) {
    for (const std::string& req : {
             std::string("\r\n\r\n"),
             std::string("hello\r\n\r\n"),
             std::string("GET\r\n\r\n"),
             std::string("GET /mqtt\r\n\r\n"),
             std::string("GET /mqtt HTTP/1.1\r\nno colon here\r\n\r\n"),
             std::string("GET /mqtt HTTP/1.1\r\nUpgrade : websocket\r\n\r\n"),
             std::string("GET /mqtt HTTP/1.1\nHost: a\n\r\n\r\n"),
         }) {
        expect_refused(req, 400);
    }
    // Control bytes: refused at the first one, blank line or not.
    for (const std::string& req : {
             std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15),
             std::string("\0\0\0\0\r\n\r\n", 8),
         }) {
        expect_refused(upgrade(req), 400, 1);
    }
}

TEST(ws_upgrade, http_1_0_is_400) {
    expect_refused(request(browser_headers(), "GET /mqtt HTTP/1.0"), 400);
}

TEST(ws_upgrade, body_is_400) {
    const auto req = request(with(browser_headers(), "Content-Length", "5"));
    // The body's bytes are not part of the head, whether they came or not.
    expect_refused(upgrade(req), 400, req.size());
    expect_refused(upgrade(req + "hello"), 400, req.size());
    expect_refused(request(with(browser_headers(), "Transfer-Encoding", "chunked")), 400);
}

TEST(ws_upgrade, subprotocol_names_compare_exactly) {
    // The answer must be a value the client offered, byte for byte.
    expect_refused(request(with(browser_headers(), "Sec-WebSocket-Protocol", "MQTT")), 400);
    const auto o = upgrade(request(with(browser_headers(), "Sec-WebSocket-Protocol", "MQTT, mqtt")));
    EXPECT_EQ(o.result, kind::accepted);
    EXPECT_EQ(o.subprotocol, "mqtt");
}

TEST(ws_upgrade, control_bytes_are_refused_before_the_head_ends) {
    // A TLS ClientHello on the plain port, or MQTT without the upgrade: refused at once.
    const std::string client_hello("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
    expect_refused(upgrade(client_hello), 400, 1);
    const std::string connect("\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00", 14);
    expect_refused(upgrade(connect), 400, 1);
    // Decided at the first such byte, however much follows.
    const std::string late = "GET /mqtt HTTP/1.1\r\nHost: x\x01y\r\n";
    expect_refused(upgrade(late), 400, late.find('\x01') + 1);
    expect_refused(upgrade(late + "\r\n"), 400, late.find('\x01') + 1);
}

}  // namespace
}  // namespace iothub::net::ws
