#include "net/websocket.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <boost/beast/http.hpp>
#include <cstring>

namespace iothub::net::ws {

namespace http = boost::beast::http;

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return x == y ||
                      ((x | 0x20) == (y | 0x20) && (x | 0x20) >= 'a' && (x | 0x20) <= 'z');
           });
}

// Whether the comma-separated header value lists `token` (case-insensitive unless `exact`).
bool lists(std::string_view value, std::string_view token, bool exact = false) {
    while (!value.empty()) {
        const auto comma = value.find(',');
        const auto item = trim(value.substr(0, comma));
        if (exact ? item == token : iequals(item, token)) return true;
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
    return false;
}

bool valid_key(std::string_view key) {
    // 16 random bytes in base64: 22 characters and "==".
    if (key.size() != 24 || key.substr(22) != "==") return false;
    static constexpr std::string_view alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    return std::all_of(key.begin(), key.begin() + 22,
                       [](char c) { return alphabet.find(c) != std::string_view::npos; });
}

const char* reason_phrase(int status) {
    switch (status) {
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    default: return "Error";
    }
}

upgrade_outcome refuse(int status, std::string why, std::size_t consumed) {
    upgrade_outcome o;
    o.result = upgrade_outcome::kind::refused;
    o.status = status;
    o.consumed = consumed;
    const std::string body = why + "\n";
    o.response = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) +
                 "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
                 "\r\nConnection: close\r\n";
    if (status == 426) o.response += "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
    if (status == 405) o.response += "Allow: GET\r\n";
    o.response += "\r\n" + body;
    o.why = std::move(why);
    return o;
}

}  // namespace

std::string accept_token(std::string_view key) {
    static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    std::string input(key);
    input += guid;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    EVP_Digest(input.data(), input.size(), digest, &digest_len, EVP_sha1(), nullptr);
    unsigned char encoded[64] = {};
    const int n = EVP_EncodeBlock(encoded, digest, static_cast<int>(digest_len));
    return std::string(reinterpret_cast<const char*>(encoded), static_cast<std::size_t>(n));
}

upgrade_outcome parse_upgrade(std::string_view received, const upgrade_policy& policy) {
    const auto end = received.find("\r\n\r\n");
    // Control bytes never appear in an HTTP head: a TLS ClientHello sent to the ws port, or
    // MQTT sent without the upgrade, is refused at once instead of waiting for a blank line.
    // Only the bytes a head may span are looked at, and the refusal takes up to the first such
    // byte, so any prefix holding it decides as the whole does.
    const auto head = received.substr(
        0, std::min(end == std::string_view::npos ? received.size() : end, max_request_head));
    const auto bad = std::find_if(head.begin(), head.end(), [](char ch) {
        const auto c = static_cast<unsigned char>(ch);
        return (c < 0x20 && c != '\r' && c != '\n' && c != '\t') || c == 0x7f;
    });
    if (bad != head.end())
        return refuse(400, "not an HTTP request (control bytes in the request head)",
                      static_cast<std::size_t>(bad - head.begin()) + 1);
    if (end == std::string_view::npos) {
        if (received.size() >= max_request_head)
            return refuse(431, "request head larger than " + std::to_string(max_request_head) +
                                   " bytes",
                          received.size());
        return {};
    }
    const std::size_t consumed = end + 4;
    if (consumed > max_request_head)
        return refuse(431, "request head larger than " + std::to_string(max_request_head) + " bytes",
                      consumed);

    http::request_parser<http::empty_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(max_request_head));
    boost::beast::error_code ec;
    parser.put(boost::asio::buffer(received.data(), consumed), ec);
    if (ec || !parser.is_header_done())
        return refuse(400, "malformed HTTP request" + (ec ? ": " + ec.message() : std::string()),
                      consumed);
    if (!parser.is_done())
        return refuse(400, "a WebSocket upgrade request has no body", consumed);
    const auto& req = parser.get();

    if (req.method() != http::verb::get)
        return refuse(405, "method " + std::string(req.method_string()) +
                               " not allowed: a WebSocket upgrade is a GET",
                      consumed);
    if (req.version() < 11) return refuse(400, "HTTP/1.1 or later required", consumed);
    std::string_view target(req.target().data(), req.target().size());
    target = target.substr(0, target.find('?'));
    if (target != policy.path)
        return refuse(404, "no WebSocket endpoint at " + std::string(target) + " (MQTT is at " +
                               policy.path + ")",
                      consumed);
    const auto header = [&req](http::field f) {
        const auto it = req.find(f);
        return it == req.end() ? std::string_view()
                               : std::string_view(it->value().data(), it->value().size());
    };
    if (!lists(header(http::field::upgrade), "websocket"))
        return refuse(426, "not a WebSocket upgrade (Upgrade: websocket missing)", consumed);
    if (!lists(header(http::field::connection), "upgrade"))
        return refuse(400, "Connection: Upgrade missing", consumed);
    if (trim(header(http::field::sec_websocket_version)) != "13")
        return refuse(426, "unsupported Sec-WebSocket-Version (13 required)", consumed);
    const auto key = trim(header(http::field::sec_websocket_key));
    if (!valid_key(key)) return refuse(400, "missing or malformed Sec-WebSocket-Key", consumed);
    if (req.find(http::field::origin) != req.end() && !policy.origins.empty()) {
        const auto origin = trim(header(http::field::origin));
        const bool allowed = std::any_of(policy.origins.begin(), policy.origins.end(),
                                         [origin](const std::string& o) { return iequals(o, origin); });
        if (!allowed)
            return refuse(403, "origin " + std::string(origin) + " not allowed (ws_origins)",
                          consumed);
    }
    std::string subprotocol;
    if (req.find(http::field::sec_websocket_protocol) != req.end()) {
        const auto offered = header(http::field::sec_websocket_protocol);
        // Subprotocol names compare exactly (RFC 6455 section 4.1): the answer must be one
        // the client offered, byte for byte.
        if (lists(offered, "mqtt", true))
            subprotocol = "mqtt";
        else if (lists(offered, "mqttv3.1", true))
            subprotocol = "mqttv3.1";
        else
            return refuse(400,
                          "no supported subprotocol in '" + std::string(offered) +
                              "' (mqtt or mqttv3.1)",
                          consumed);
    }

    upgrade_outcome o;
    o.result = upgrade_outcome::kind::accepted;
    o.status = 101;
    o.consumed = consumed;
    o.subprotocol = subprotocol;
    o.response =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " +
        accept_token(key) + "\r\n";
    if (!subprotocol.empty()) o.response += "Sec-WebSocket-Protocol: " + subprotocol + "\r\n";
    o.response += "\r\n";
    return o;
}

bool frame_decoder::fail(std::uint16_t code, const char* why) {
    failed_ = true;
    error_code_ = code;
    error_ = why;
    return false;
}

// Judges the header in header_ (complete); sets up the payload's state.
bool frame_decoder::start_frame() {
    const std::uint8_t b0 = header_[0];
    const std::uint8_t b1 = header_[1];
    fin_ = (b0 & 0x80) != 0;
    const unsigned code = b0 & 0x0f;
    if ((b0 & 0x70) != 0) return fail(close_protocol_error, "reserved bits set (no extension)");
    if ((b1 & 0x80) == 0) return fail(close_protocol_error, "client frame not masked");
    std::uint64_t length = b1 & 0x7f;
    std::size_t at = 2;
    if (length == 126) {
        length = (std::uint64_t{header_[2]} << 8) | header_[3];
        if (length < 126) return fail(close_protocol_error, "frame length not minimally encoded");
        at = 4;
    } else if (length == 127) {
        length = 0;
        for (int i = 0; i < 8; ++i) length = (length << 8) | header_[2 + i];
        if (length >> 63) return fail(close_protocol_error, "frame length over 2^63");
        if (length <= 0xffff) return fail(close_protocol_error, "frame length not minimally encoded");
        at = 10;
    }
    std::memcpy(mask_, header_ + at, 4);
    mask_pos_ = 0;
    switch (code) {
    case 0x0:
        if (!in_message_) return fail(close_protocol_error, "continuation frame without a message");
        break;
    case 0x1:
        return fail(close_unsupported_data, "text frame: MQTT travels in binary frames");
    case 0x2:
        if (in_message_) return fail(close_protocol_error, "new message inside a fragmented one");
        break;
    case 0x8:
    case 0x9:
    case 0xa:
        if (!fin_) return fail(close_protocol_error, "fragmented control frame");
        if (length > 125) return fail(close_protocol_error, "control frame longer than 125 bytes");
        break;
    default:
        return fail(close_protocol_error, "unknown opcode");
    }
    op_ = static_cast<opcode>(code);
    if ((code == 0x0 || code == 0x2) && length > max_frame_)
        return fail(close_too_big, "frame larger than the largest MQTT packet accepted");
    if (code == 0x0 || code == 0x2) in_message_ = !fin_;
    remaining_ = length;
    in_frame_ = true;
    control_.clear();
    return true;
}

bool frame_decoder::feed(std::uint8_t* data, std::size_t size, std::size_t& out,
                         std::vector<control>& controls) {
    out = 0;
    if (failed_) return false;
    std::size_t at = 0;
    while (at < size && !closed_) {
        if (!in_frame_) {
            // The header: 2 bytes tell its full length (2 + 0/2/8 + 4 for the mask).
            header_[header_len_++] = data[at++];
            if (header_len_ < 2) continue;
            if ((header_[1] & 0x80) == 0)
                return fail(close_protocol_error, "client frame not masked");
            const std::uint8_t len7 = header_[1] & 0x7f;
            const std::size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
            // Copy what is available of the rest at once.
            const std::size_t take = std::min(need - header_len_, size - at);
            std::memcpy(header_ + header_len_, data + at, take);
            header_len_ = static_cast<std::uint8_t>(header_len_ + take);
            at += take;
            if (header_len_ < need) continue;
            header_len_ = 0;
            if (!start_frame()) return false;
        }
        const std::size_t take =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, size - at));
        std::uint8_t* payload = data + at;
        mask_payload(payload, take, mask_, mask_pos_);
        mask_pos_ = static_cast<std::uint8_t>((mask_pos_ + take) & 3);
        if (op_ == opcode::binary || op_ == opcode::continuation) {
            if (payload != data + out) std::memmove(data + out, payload, take);
            out += take;
        } else {
            control_.append(reinterpret_cast<const char*>(payload), take);
        }
        at += take;
        remaining_ -= take;
        if (remaining_ != 0) break;
        in_frame_ = false;
        if (op_ == opcode::close || op_ == opcode::ping || op_ == opcode::pong) {
            if (op_ == opcode::close) {
                closed_ = true;
                if (close_code_of(control_) == 0) {
                    return fail(close_protocol_error, "malformed close frame");
                }
            }
            controls.push_back({op_, std::move(control_)});
            control_.clear();
        }
    }
    return true;
}

std::size_t encode_header(std::uint8_t* out, opcode op, std::uint64_t length, bool fin,
                          const std::uint8_t* mask) {
    std::size_t n = 0;
    out[n++] = static_cast<std::uint8_t>((fin ? 0x80 : 0x00) | static_cast<std::uint8_t>(op));
    const std::uint8_t mask_bit = mask != nullptr ? 0x80 : 0x00;
    if (length < 126) {
        out[n++] = static_cast<std::uint8_t>(mask_bit | length);
    } else if (length <= 0xffff) {
        out[n++] = mask_bit | 126;
        out[n++] = static_cast<std::uint8_t>(length >> 8);
        out[n++] = static_cast<std::uint8_t>(length);
    } else {
        out[n++] = mask_bit | 127;
        for (int i = 7; i >= 0; --i) out[n++] = static_cast<std::uint8_t>(length >> (8 * i));
    }
    if (mask != nullptr) {
        std::memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

void mask_payload(std::uint8_t* data, std::size_t size, const std::uint8_t mask[4],
                  std::uint64_t offset) {
    if (size == 0) return;
    // Eight bytes at a time with the mask rotated to this offset.
    std::uint8_t rotated[8];
    for (int i = 0; i < 8; ++i) rotated[i] = mask[(offset + static_cast<unsigned>(i)) & 3];
    std::uint64_t wide = 0;
    std::memcpy(&wide, rotated, 8);
    std::size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        std::uint64_t chunk = 0;
        std::memcpy(&chunk, data + i, 8);
        chunk ^= wide;
        std::memcpy(data + i, &chunk, 8);
    }
    for (; i < size; ++i) data[i] ^= rotated[i & 7];
}

std::string control_frame(opcode op, std::string_view payload) {
    payload = payload.substr(0, 125);
    std::uint8_t header[14];
    const auto n = encode_header(header, op, payload.size());
    std::string frame(reinterpret_cast<const char*>(header), n);
    frame.append(payload);
    return frame;
}

std::string close_frame(std::uint16_t code, std::string_view reason) {
    std::string payload;
    payload.push_back(static_cast<char>(code >> 8));
    payload.push_back(static_cast<char>(code & 0xff));
    payload.append(reason.substr(0, 123));
    return control_frame(opcode::close, payload);
}

std::uint16_t close_code_of(std::string_view payload) {
    if (payload.empty()) return 1005;
    if (payload.size() == 1) return 0;
    const auto code = static_cast<std::uint16_t>((static_cast<std::uint8_t>(payload[0]) << 8) |
                                                 static_cast<std::uint8_t>(payload[1]));
    // Codes an endpoint may send: 1000-1003, 1007-1014 and the 3000-4999 application range.
    const bool ok = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                    (code >= 3000 && code <= 4999);
    return ok ? code : 0;
}

}  // namespace iothub::net::ws
