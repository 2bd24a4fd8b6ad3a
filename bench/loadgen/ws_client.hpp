#pragma once
// The client side of MQTT over WebSocket (RFC 6455) for the load generator: the opening
// handshake, masked frames out, a server's frames decoded in place. Written independently of
// the server's codec in src/net/websocket.*, so a bug there is not mirrored here and hidden.
// No I/O: link (transport.hpp) feeds bytes in and sends what these functions make.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "wire.hpp"

namespace iothub::bench::ws {

enum : std::uint8_t {
    op_continuation = 0x0,
    op_text = 0x1,
    op_binary = 0x2,
    op_close = 0x8,
    op_ping = 0x9,
    op_pong = 0xa,
};

// A random 16-byte key, base64 (24 characters).
std::string make_key(std::uint64_t& rng);
// The GET request of the opening handshake, asking for the "mqtt" subprotocol.
std::string upgrade_request(std::string_view host, std::uint16_t port, std::string_view path,
                            std::string_view key);
// base64(SHA-1(key + the RFC 6455 GUID)): what Sec-WebSocket-Accept must say.
std::string accept_token(std::string_view key);

// Checks the server's response head (status line and headers, without the final blank line):
// 101, Upgrade: websocket, Connection: upgrade, the right Sec-WebSocket-Accept and, if the
// server names a subprotocol, "mqtt". Returns "" when accepted, otherwise what was wrong.
std::string check_upgrade_response(std::string_view head, std::string_view key);

// Appends one client frame: FIN, `op`, a mask from `rng` and the masked payload. The copy and
// the mask are one pass.
void append_frame(bytes& out, std::uint8_t op, const std::uint8_t* payload, std::size_t size,
                  std::uint64_t& rng);

// XORs [data, data + size) with the 4-byte mask, the first byte taking mask[offset % 4].
void mask_bytes(std::uint8_t* data, std::size_t size, const std::uint8_t mask[4],
                std::size_t offset = 0) noexcept;

// Decodes a server's frames (which are never masked). Stateful: a frame, or its header, may be
// cut anywhere between reads.
class frame_reader {
public:
    struct control {
        std::uint8_t op = op_ping;
        std::string payload;
    };

    // Decodes [data, data + size) in place: the payloads of binary frames and their
    // continuations are moved to the front, so on return [data, data + out) is the byte stream
    // they carry. Completed ping, pong and close frames are appended to `controls`; nothing is
    // decoded after a close. False on a protocol violation (error() says which); the data
    // decoded before it is still in [data, data + out).
    bool feed(std::uint8_t* data, std::size_t size, std::size_t& out,
              std::vector<control>& controls);

    const std::string& error() const noexcept { return error_; }
    bool closed() const noexcept { return closed_; }

private:
    bool fail(std::string why);

    std::uint8_t header_[10] = {};
    std::uint8_t header_len_ = 0;
    std::uint64_t remaining_ = 0;
    std::uint8_t op_ = op_binary;
    bool in_frame_ = false;
    bool in_message_ = false;  // a fragmented binary message awaits continuations
    bool closed_ = false;
    std::string control_;
    std::string error_;
};

// The status code of a close frame's payload: 1005 when there is none.
std::uint16_t close_code(std::string_view payload) noexcept;

}  // namespace iothub::bench::ws
