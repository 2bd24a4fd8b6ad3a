#include "ws_client.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace iothub::bench::ws {
namespace {

constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// xorshift64*: masks and keys need to be unpredictable to a browser's script, not to a broker
// under test; this keeps a frame's cost at a few nanoseconds.
std::uint64_t next(std::uint64_t& s) noexcept {
    if (s == 0) {
        s = 0x9e3779b97f4a7c15ull;
    }
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545f4914f6cdd1dull;
}

std::string base64(const unsigned char* p, std::size_t n) {
    std::string out(4 * ((n + 2) / 3), '\0');
    const int len =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), p, static_cast<int>(n));
    out.resize(static_cast<std::size_t>(len));
    return out;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return s;
}

// Whether a comma-separated header value holds `token` (case-insensitive).
bool has_token(std::string_view value, std::string_view token) {
    while (!value.empty()) {
        const std::size_t comma = value.find(',');
        if (iequals(trim(value.substr(0, comma)), token)) {
            return true;
        }
        if (comma == std::string_view::npos) {
            break;
        }
        value.remove_prefix(comma + 1);
    }
    return false;
}

}  // namespace

std::string make_key(std::uint64_t& rng) {
    unsigned char raw[16];
    const std::uint64_t a = next(rng);
    const std::uint64_t b = next(rng);
    std::memcpy(raw, &a, 8);
    std::memcpy(raw + 8, &b, 8);
    return base64(raw, sizeof raw);
}

std::string upgrade_request(std::string_view host, std::uint16_t port, std::string_view path,
                            std::string_view key) {
    std::string r;
    r.reserve(256);
    r += "GET ";
    r += path;
    r += " HTTP/1.1\r\nHost: ";
    r += host;
    r += ':';
    r += std::to_string(port);
    r += "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ";
    r += key;
    r += "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";
    return r;
}

std::string accept_token(std::string_view key) {
    std::string in(key);
    in += guid;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(in.data(), in.size(), digest, &len, EVP_sha1(), nullptr);
    return base64(digest, len);
}

std::string check_upgrade_response(std::string_view head, std::string_view key) {
    const std::size_t eol = head.find("\r\n");
    const std::string_view status_line = head.substr(0, eol);
    // "HTTP/1.1 101 Switching Protocols"
    const std::size_t sp = status_line.find(' ');
    if (status_line.substr(0, 5) != "HTTP/" || sp == std::string_view::npos ||
        status_line.substr(sp + 1, 3) != "101") {
        return "upgrade refused: " + std::string(status_line);
    }
    bool upgrade = false;
    bool connection = false;
    bool accepted = false;
    std::string protocol;
    std::string_view rest =
        eol == std::string_view::npos ? std::string_view{} : head.substr(eol + 2);
    const std::string want = accept_token(key);
    while (!rest.empty()) {
        const std::size_t end = rest.find("\r\n");
        const std::string_view line = rest.substr(0, end);
        rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 2);
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) {
            continue;
        }
        const std::string_view name = trim(line.substr(0, colon));
        const std::string_view value = trim(line.substr(colon + 1));
        if (iequals(name, "upgrade")) {
            upgrade = iequals(value, "websocket");
        } else if (iequals(name, "connection")) {
            connection = has_token(value, "upgrade");
        } else if (iequals(name, "sec-websocket-accept")) {
            accepted = value == want;
        } else if (iequals(name, "sec-websocket-protocol")) {
            protocol = std::string(value);
        }
    }
    if (!upgrade) {
        return "101 without Upgrade: websocket";
    }
    if (!connection) {
        return "101 without Connection: upgrade";
    }
    if (!accepted) {
        return "wrong or missing Sec-WebSocket-Accept";
    }
    if (!protocol.empty() && protocol != "mqtt") {
        return "subprotocol " + protocol + " instead of mqtt";
    }
    return {};
}

void mask_bytes(std::uint8_t* data, std::size_t size, const std::uint8_t mask[4],
                std::size_t offset) noexcept {
    std::uint8_t m8[8];
    for (std::size_t i = 0; i < 8; ++i) {
        m8[i] = mask[(i + offset) & 3];
    }
    std::uint64_t w = 0;
    std::memcpy(&w, m8, 8);
    std::size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        std::uint64_t x = 0;
        std::memcpy(&x, data + i, 8);
        x ^= w;
        std::memcpy(data + i, &x, 8);
    }
    for (; i < size; ++i) {
        data[i] ^= m8[i & 7];
    }
}

void append_frame(bytes& out, std::uint8_t op, const std::uint8_t* payload, std::size_t size,
                  std::uint64_t& rng) {
    std::uint8_t h[14];
    std::size_t n = 0;
    h[n++] = static_cast<std::uint8_t>(0x80 | op);
    if (size < 126) {
        h[n++] = static_cast<std::uint8_t>(0x80 | size);
    } else if (size <= 0xffff) {
        h[n++] = 0x80 | 126;
        h[n++] = static_cast<std::uint8_t>(size >> 8);
        h[n++] = static_cast<std::uint8_t>(size & 0xff);
    } else {
        h[n++] = 0x80 | 127;
        for (int k = 7; k >= 0; --k) {
            h[n++] =
                static_cast<std::uint8_t>((static_cast<std::uint64_t>(size) >> (8 * k)) & 0xff);
        }
    }
    const auto key = static_cast<std::uint32_t>(next(rng) >> 32);
    std::uint8_t mask[4];
    std::memcpy(mask, &key, 4);
    std::memcpy(h + n, mask, 4);
    n += 4;
    const std::size_t at = out.size();
    out.resize(at + n + size);
    std::memcpy(out.data() + at, h, n);
    if (size > 0) {
        std::memcpy(out.data() + at + n, payload, size);
        mask_bytes(out.data() + at + n, size, mask);
    }
}

bool frame_reader::fail(std::string why) {
    error_ = std::move(why);
    return false;
}

bool frame_reader::feed(std::uint8_t* data, std::size_t size, std::size_t& out,
                        std::vector<control>& controls) {
    out = 0;
    std::size_t i = 0;
    while (i < size && !closed_) {
        if (!in_frame_) {
            while (header_len_ < 2 && i < size) {
                header_[header_len_++] = data[i++];
            }
            if (header_len_ < 2) {
                break;
            }
            const std::uint8_t len7 = header_[1] & 0x7f;
            const std::size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
            while (header_len_ < need && i < size) {
                header_[header_len_++] = data[i++];
            }
            if (header_len_ < need) {
                break;
            }
            const bool fin = (header_[0] & 0x80) != 0;
            op_ = header_[0] & 0x0f;
            if ((header_[0] & 0x70) != 0) {
                return fail("frame with reserved bits set (no extension was negotiated)");
            }
            if ((header_[1] & 0x80) != 0) {
                return fail("masked frame from the server");
            }
            std::uint64_t len = len7;
            if (len7 == 126) {
                len = (std::uint64_t{header_[2]} << 8) | header_[3];
            } else if (len7 == 127) {
                len = 0;
                for (int k = 2; k < 10; ++k) {
                    len = (len << 8) | header_[k];
                }
                if (len >> 63) {
                    return fail("frame length with the top bit set");
                }
            }
            header_len_ = 0;
            switch (op_) {
            case op_binary:
                if (in_message_) {
                    return fail("new binary frame inside a fragmented message");
                }
                in_message_ = !fin;
                break;
            case op_continuation:
                if (!in_message_) {
                    return fail("continuation frame without a message");
                }
                in_message_ = !fin;
                break;
            case op_text:
                return fail("text frame (MQTT over WebSocket is binary)");
            case op_close:
            case op_ping:
            case op_pong:
                if (!fin || len > 125) {
                    return fail("fragmented or long control frame");
                }
                control_.clear();
                break;
            default:
                return fail("unknown opcode " + std::to_string(op_));
            }
            remaining_ = len;
            in_frame_ = true;
        }
        const std::size_t take =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, size - i));
        if (op_ == op_binary || op_ == op_continuation) {
            if (out != i && take > 0) {
                std::memmove(data + out, data + i, take);
            }
            out += take;
        } else {
            control_.append(reinterpret_cast<const char*>(data + i), take);
        }
        i += take;
        remaining_ -= take;
        if (remaining_ == 0) {
            in_frame_ = false;
            if (op_ >= op_close) {
                controls.push_back(control{op_, control_});
                if (op_ == op_close) {
                    closed_ = true;
                }
            }
        }
    }
    return true;
}

std::uint16_t close_code(std::string_view payload) noexcept {
    if (payload.size() < 2) {
        return 1005;
    }
    return static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                      static_cast<unsigned char>(payload[1]));
}

}  // namespace iothub::bench::ws
