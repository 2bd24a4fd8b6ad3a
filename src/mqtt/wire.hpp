#pragma once
// Internal to the codec: a bounds-checked reader over a packet body, two writers (one that
// counts bytes, one that appends them) so an encoder can size a packet before writing it, and
// the v5 property plumbing shared by the packet decoders and encoders.

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "mqtt/codec.hpp"
#include "mqtt/packet.hpp"
#include "mqtt/topic.hpp"

namespace iothub::mqtt::detail {

inline constexpr std::uint32_t max_varint = 268'435'455;

class reader {
public:
    explicit reader(std::span<const std::uint8_t> buf) noexcept : buf_(buf) {}

    std::size_t remaining() const noexcept { return buf_.size() - pos_; }
    bool empty() const noexcept { return pos_ == buf_.size(); }

    bool u8(std::uint8_t& v) noexcept {
        if (remaining() < 1) return false;
        v = buf_[pos_++];
        return true;
    }
    bool u16(std::uint16_t& v) noexcept {
        if (remaining() < 2) return false;
        v = static_cast<std::uint16_t>((buf_[pos_] << 8) | buf_[pos_ + 1]);
        pos_ += 2;
        return true;
    }
    bool u32(std::uint32_t& v) noexcept {
        if (remaining() < 4) return false;
        v = (std::uint32_t{buf_[pos_]} << 24) | (std::uint32_t{buf_[pos_ + 1]} << 16) |
            (std::uint32_t{buf_[pos_ + 2]} << 8) | std::uint32_t{buf_[pos_ + 3]};
        pos_ += 4;
        return true;
    }
    // Variable byte integer of at most four bytes; false when truncated or longer.
    bool varint(std::uint32_t& v) noexcept {
        v = 0;
        for (int i = 0; i < 4; ++i) {
            std::uint8_t b = 0;
            if (!u8(b)) return false;
            v |= std::uint32_t{b & 0x7Fu} << (7 * i);
            if ((b & 0x80) == 0) return true;
        }
        return false;
    }
    // n raw bytes into `out`.
    bool raw(std::size_t n, std::string& out) {
        if (remaining() < n) return false;
        out.assign(reinterpret_cast<const char*>(buf_.data() + pos_), n);
        pos_ += n;
        return true;
    }
    // Two-byte length followed by that many bytes (binary data or a string, unchecked).
    bool prefixed(std::string& out) {
        std::uint16_t n = 0;
        return u16(n) && raw(n, out);
    }
    // Splits off the next n bytes as their own reader.
    bool sub(std::size_t n, reader& out) noexcept {
        if (remaining() < n) return false;
        out = reader(buf_.subspan(pos_, n));
        pos_ += n;
        return true;
    }
    std::span<const std::uint8_t> rest() const noexcept { return buf_.subspan(pos_); }
    void skip_all() noexcept { pos_ = buf_.size(); }

private:
    std::span<const std::uint8_t> buf_;
    std::size_t pos_ = 0;
};

// Counts the bytes an encoding would take.
struct counter {
    std::size_t n = 0;
    void u8(std::uint8_t) noexcept { n += 1; }
    void u16(std::uint16_t) noexcept { n += 2; }
    void u32(std::uint32_t) noexcept { n += 4; }
    void varint(std::uint32_t v) noexcept { n += varint_size(v); }
    void raw(std::string_view s) noexcept { n += s.size(); }
    void prefixed(std::string_view s) noexcept { n += 2 + s.size(); }
};

// Appends an encoding to a string.
struct appender {
    std::string& out;
    void u8(std::uint8_t v) { out.push_back(static_cast<char>(v)); }
    void u16(std::uint16_t v) {
        out.push_back(static_cast<char>(v >> 8));
        out.push_back(static_cast<char>(v & 0xFF));
    }
    void u32(std::uint32_t v) {
        for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xFF));
    }
    void varint(std::uint32_t v) { put_varint(v, out); }
    void raw(std::string_view s) { out.append(s); }
    void prefixed(std::string_view s) {
        assert(s.size() <= 0xFFFF && "length-prefixed field longer than 65535 bytes");
        u16(static_cast<std::uint16_t>(s.size()));
        out.append(s);
    }
};

// Where a property list sits; each property identifier is allowed in some of these.
enum class prop_context : std::uint8_t {
    connect,
    connack,
    publish,
    will,
    ack,  // PUBACK, PUBREC, PUBREL, PUBCOMP
    subscribe,
    suback,
    unsubscribe,
    unsuback,
    disconnect,
    auth,
    any,  // decode_properties(): every known property, no per-packet rule
};

inline bool fail(decode_error& err, reason_code code, const char* message) noexcept {
    err.code = code;
    err.message = message;
    return false;
}

// A UTF-8 encoded string: two-byte length, then well-formed UTF-8 without U+0000.
inline bool read_string(reader& r, std::string& out, decode_error& err) {
    if (!r.prefixed(out)) return fail(err, reason_code::malformed_packet, "truncated string");
    if (!valid_utf8(out)) return fail(err, reason_code::malformed_packet, "invalid UTF-8 string");
    return true;
}

// Reads a property length and that many bytes of properties allowed in `ctx`.
bool read_properties(reader& r, prop_context ctx, properties& out, decode_error& err);

// Size of the property list without its length prefix.
std::size_t properties_body_size(const properties& props);
void append_properties_body(const properties& props, std::string& out);

inline void write_properties(const properties& props, counter& w) {
    const auto n = properties_body_size(props);
    w.n += varint_size(static_cast<std::uint32_t>(n)) + n;
}
inline void write_properties(const properties& props, appender& w) {
    w.varint(static_cast<std::uint32_t>(properties_body_size(props)));
    append_properties_body(props, w.out);
}

inline bool properties_empty(const properties& p) { return properties_body_size(p) == 0; }

}  // namespace iothub::mqtt::detail
