#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace iothub::cli {

// Where a listener binds: a literal IPv4 or IPv6 address, or "localhost".
// The host is kept without brackets; to_string() adds them back for IPv6.
struct listen_address {
    std::string host;  // empty: the listener is off
    std::uint16_t port = 0;

    bool enabled() const { return !host.empty(); }

    // "127.0.0.1:1883", "[::1]:1883", "localhost:1883"; "off" when not enabled.
    std::string to_string() const;
    // 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 and "localhost". The wildcard
    // addresses 0.0.0.0 and :: are not loopback: they listen on every interface.
    // A listener that is off reaches no network, so it counts as loopback.
    bool is_loopback() const;
    bool is_ipv6() const;

    friend bool operator==(const listen_address&, const listen_address&) = default;
};

// Parses "a.b.c.d:PORT", "[v6]:PORT" or "localhost:PORT"; port 0 means "any
// free port"; with `may_be_off`, "off" gives a listener that is not enabled.
// Throws std::invalid_argument saying what is wrong.
listen_address parse_listen_address(std::string_view text, bool may_be_off = false);

}  // namespace iothub::cli
