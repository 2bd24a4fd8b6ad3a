#pragma once
// MQTT over WebSocket (RFC 6455): the opening handshake and the frame codec. No I/O: server.cpp
// feeds the bytes a connection reads (after TLS, for wss) and sends what these functions make.
//
// The frames are decoded in place, in the worker's read buffer, into the MQTT byte stream they
// carry, and that stream goes to the same broker::connection as a TCP one's. A connection keeps
// only the decoder's few bytes of state between reads (a header cut in two, the rest of a
// frame's length and its mask), so it moves to another worker, and stays idle, as cheaply as a
// TCP connection. Beast parses the HTTP request of the handshake; the frames are not left to
// beast::websocket::stream, which owns its socket and buffers and could not run in the
// worker's readiness loop beside TLS.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace iothub::net::ws {

// What the opening handshake accepts.
struct upgrade_policy {
    std::string path = "/mqtt";        // the request target, without query
    std::vector<std::string> origins;  // accepted Origin header values; empty = any
};

// The largest request head (request line and headers) accepted; larger gets 431.
inline constexpr std::size_t max_request_head = 8192;

struct upgrade_outcome {
    enum class kind : std::uint8_t {
        incomplete,  // the head has not ended yet: call again with more bytes
        accepted,    // send `response`, then frames follow
        refused,     // send `response`, then close
    };
    kind result = kind::incomplete;
    std::size_t consumed = 0;  // bytes of `received` that were the request head
    int status = 0;            // 101, or the HTTP error status
    std::string response;      // the whole HTTP response
    std::string subprotocol;   // accepted: "mqtt", "mqttv3.1", or empty when none was asked
    std::string why;           // refused: what was wrong, for the log (also in the body)
};

// Looks at the bytes a client sent so far. A GET of `policy.path` with Upgrade: websocket,
// Connection: Upgrade, Sec-WebSocket-Version: 13, a valid Sec-WebSocket-Key, an accepted
// Origin (when the request has one) and, when Sec-WebSocket-Protocol is present, "mqtt" or
// "mqttv3.1" among its values, is accepted; anything else is refused with 400, 403, 404, 405,
// 426 or 431 and a one-line text body saying why.
upgrade_outcome parse_upgrade(std::string_view received, const upgrade_policy& policy);

// The accept token for a Sec-WebSocket-Key: base64(SHA-1(key + RFC 6455 GUID)).
std::string accept_token(std::string_view key);

enum class opcode : std::uint8_t {
    continuation = 0x0,
    text = 0x1,
    binary = 0x2,
    close = 0x8,
    ping = 0x9,
    pong = 0xa,
};

// Close codes used here (RFC 6455 section 7.4.1).
inline constexpr std::uint16_t close_normal = 1000;
inline constexpr std::uint16_t close_going_away = 1001;
inline constexpr std::uint16_t close_protocol_error = 1002;
inline constexpr std::uint16_t close_unsupported_data = 1003;
inline constexpr std::uint16_t close_too_big = 1009;

// Decodes a client's frames. Stateful across reads: a frame, or its header, may be cut
// anywhere.
class frame_decoder {
public:
    struct control {
        opcode op = opcode::ping;  // ping, pong or close
        std::string payload;       // at most 125 bytes
    };

    // Data frames longer than `max_frame` bytes of payload are refused (1009).
    explicit frame_decoder(std::uint64_t max_frame) : max_frame_(max_frame) {}

    // Decodes [data, data + size) in place. The payloads of binary frames and of their
    // continuations are unmasked and moved to the front: on return [data, data + out) is the
    // byte stream they carry, in order. Ping, pong and close frames are appended to `controls`
    // as they complete. After a close frame nothing more is decoded (the rest is ignored).
    // Returns false on a protocol violation: error_code() and error() say which, and the
    // bytes of data frames decoded before it are still in [data, data + out).
    bool feed(std::uint8_t* data, std::size_t size, std::size_t& out,
              std::vector<control>& controls);

    std::uint16_t error_code() const noexcept { return error_code_; }
    std::string_view error() const noexcept { return error_; }
    // A close frame was received.
    bool closed() const noexcept { return closed_; }

    void set_max_frame(std::uint64_t max_frame) noexcept { max_frame_ = max_frame; }

private:
    bool fail(std::uint16_t code, const char* why);
    bool start_frame();

    std::uint64_t max_frame_;
    std::uint64_t remaining_ = 0;  // payload bytes of the current frame still to come
    std::uint8_t header_[14] = {};
    std::uint8_t header_len_ = 0;  // bytes of the next header received so far
    std::uint8_t mask_[4] = {};
    std::uint8_t mask_pos_ = 0;
    opcode op_ = opcode::binary;  // of the current frame
    bool in_frame_ = false;       // a header was decoded and its payload is under way
    bool fin_ = true;
    bool in_message_ = false;     // a fragmented binary message awaits continuations
    bool closed_ = false;
    bool failed_ = false;
    std::uint16_t error_code_ = 0;
    const char* error_ = "";
    std::string control_;  // the payload of the current control frame
};

// A frame header for `length` bytes of payload (2 to 14 bytes written to `out`). Server frames
// are not masked; a client's (the load generator's) pass their 4-byte `mask`, and then the
// payload must be masked with mask_payload().
std::size_t encode_header(std::uint8_t* out, opcode op, std::uint64_t length, bool fin = true,
                          const std::uint8_t* mask = nullptr);
// XORs [data, data + size) with `mask`, starting at byte `offset` of the payload.
void mask_payload(std::uint8_t* data, std::size_t size, const std::uint8_t mask[4],
                  std::uint64_t offset = 0);
// A whole unmasked control frame (payload cut to 125 bytes).
std::string control_frame(opcode op, std::string_view payload);
// A close frame with `code` and a short reason.
std::string close_frame(std::uint16_t code, std::string_view reason = {});
// The code a close frame's payload carries: 1005 (none) when empty, 0 when malformed (one
// byte, or a code no endpoint may send).
std::uint16_t close_code_of(std::string_view payload);

}  // namespace iothub::net::ws
