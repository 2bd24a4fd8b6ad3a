#pragma once
// Bytes <-> packets. Decoding never throws: every failure carries the MQTT 5 reason
// code the server must answer with (malformed_packet, protocol_error, packet_too_large...).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "mqtt/packet.hpp"

namespace iothub::mqtt {

enum class decode_status : std::uint8_t { ok, need_more, error };

struct decode_error {
    reason_code code = reason_code::malformed_packet;
    const char* message = "";  // static text, for logs and v5 reason strings
};

// Fixed header of one packet at the front of a buffer.
struct frame {
    packet_type type{};
    std::uint8_t flags = 0;              // low nibble of the first byte
    std::size_t header_size = 0;         // 1 + length of the remaining-length field
    std::uint32_t remaining_length = 0;  // body size
    std::size_t total_size() const noexcept { return header_size + remaining_length; }
};

// Reads the fixed header. need_more when the buffer does not yet hold the whole header.
// error (malformed_packet) on packet type 0, a remaining length over 4 bytes;
// error (packet_too_large) when total_size() > max_packet_size.
// Fixed-header flags are checked here too (reserved bits; PUBLISH QoS 3).
// A max_packet_size of 0 means no limit.
decode_status read_frame(std::span<const std::uint8_t> buf, std::uint32_t max_packet_size,
                         frame& out, decode_error& err) noexcept;

// Decodes one packet's body (exactly f.remaining_length bytes). For CONNECT the version is
// taken from the packet itself and `version` is ignored; all other packets decode per
// `version`. Validates what the specification requires the receiver to validate:
// UTF-8 strings (well-formed, no U+0000), property identifiers allowed for the packet,
// duplicate properties, packet id 0 where forbidden, empty SUBSCRIBE/UNSUBSCRIBE,
// invalid subscription options, CONNECT flags, will QoS/retain, trailing bytes.
// Topic name/filter *syntax* (wildcards in a PUBLISH topic, misplaced '#') is left to
// topic.hpp so the server can answer with the precise reason.
// `body` may extend past the packet; only its first f.remaining_length bytes are read.
decode_status decode(const frame& f, std::span<const std::uint8_t> body, protocol_version version,
                     packet& out, decode_error& err);

// decode() for a PUBLISH (f.type must be publish), into `out` directly: its topic and payload
// strings are reused, so a receiver that decodes every PUBLISH into one object allocates
// nothing for them once they are large enough. v5 properties start from empty; on 3.x they
// are left as they are.
decode_status decode_publish(const frame& f, std::span<const std::uint8_t> body,
                             protocol_version version, publish& out, decode_error& err);

// The protocol version a CONNECT body announces (protocol name and level consistent), even
// when the rest of the packet fails to decode: tells the server which CONNACK format to answer
// a bad CONNECT with. nullopt when the name or level is not one iothub speaks.
std::optional<protocol_version> connect_version(std::span<const std::uint8_t> body) noexcept;

// Appends the wire encoding of `p` for `version` to `out`.
// Fields that do not exist in `version` are left out (e.g. properties before v5).
// A CONNECT is written for `version` (its protocol name and level follow from it; the
// packet's own version and protocol_name fields are not consulted). AUTH has no encoding
// before v5 and writes nothing.
void encode(const packet& p, protocol_version version, std::string& out);

// Encodes v5 properties (length prefix included) / decodes them; used by the store to
// keep message properties as bytes.
void encode_properties(const properties& props, std::string& out);
bool decode_properties(std::span<const std::uint8_t> bytes, properties& out);

// Size on the wire of a variable byte integer, and the integer itself.
std::size_t varint_size(std::uint32_t v) noexcept;
void put_varint(std::uint32_t v, std::string& out);

}  // namespace iothub::mqtt
