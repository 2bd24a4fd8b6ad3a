#include "cli/listen_address.hpp"

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace iothub::cli {
namespace {

constexpr std::string_view forms = "expected a.b.c.d:PORT, [IPv6]:PORT or localhost:PORT";

bool is_ipv4(const std::string& host) {
    in_addr addr{};
    return inet_pton(AF_INET, host.c_str(), &addr) == 1;
}

bool is_ipv6(const std::string& host) {
    in6_addr addr{};
    return inet_pton(AF_INET6, host.c_str(), &addr) == 1;
}

std::uint16_t parse_port(std::string_view text, std::string_view whole) {
    if (text.empty()) {
        throw std::invalid_argument("missing port in '" + std::string(whole) + "'; " +
                                    std::string(forms));
    }
    std::uint32_t value = 0;
    const auto* first = text.data();
    const auto* last = text.data() + text.size();
    auto [end, ec] = std::from_chars(first, last, value);
    if (ec == std::errc::result_out_of_range ||
        (ec == std::errc{} && end == last && value > 65535)) {
        throw std::invalid_argument("port " + std::string(text) + " is out of range (0..65535)");
    }
    if (ec != std::errc{} || end != last) {
        throw std::invalid_argument("port '" + std::string(text) + "' is not a number (0..65535)");
    }
    return static_cast<std::uint16_t>(value);
}

}  // namespace

std::string listen_address::to_string() const {
    if (!enabled()) return "off";
    auto port_text = std::to_string(port);
    if (is_ipv6()) {
        return "[" + host + "]:" + port_text;
    }
    return host + ":" + port_text;
}

bool listen_address::is_ipv6() const {
    return host.find(':') != std::string::npos;
}

bool listen_address::is_loopback() const {
    if (!enabled()) {
        return true;
    }
    if (host == "localhost") {
        return true;
    }
    in_addr v4{};
    if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
        return (ntohl(v4.s_addr) >> 24) == 127;
    }
    in6_addr v6{};
    if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
        static constexpr std::array<unsigned char, 16> loopback{0, 0, 0, 0, 0, 0, 0, 0,
                                                                0, 0, 0, 0, 0, 0, 0, 1};
        if (std::memcmp(v6.s6_addr, loopback.data(), loopback.size()) == 0) {
            return true;
        }
        static constexpr std::array<unsigned char, 12> v4_mapped{0, 0, 0, 0, 0,    0,
                                                                 0, 0, 0, 0, 0xff, 0xff};
        return std::memcmp(v6.s6_addr, v4_mapped.data(), v4_mapped.size()) == 0 &&
               v6.s6_addr[12] == 127;
    }
    return false;
}

listen_address parse_listen_address(std::string_view text, bool may_be_off) {
    const std::string whole(text);
    if (may_be_off && text == "off") {
        return {};
    }
    if (text.empty()) {
        throw std::invalid_argument("empty address; " + std::string(forms));
    }
    listen_address result;
    if (text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) {
            throw std::invalid_argument("missing ']' in '" + whole + "'; " + std::string(forms));
        }
        result.host = std::string(text.substr(1, close - 1));
        auto rest = text.substr(close + 1);
        if (rest.empty() || rest.front() != ':') {
            throw std::invalid_argument("missing ':PORT' after ']' in '" + whole + "'");
        }
        if (!is_ipv6(result.host)) {
            throw std::invalid_argument("'" + result.host + "' is not an IPv6 address");
        }
        result.port = parse_port(rest.substr(1), text);
        return result;
    }
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
        throw std::invalid_argument("missing ':PORT' in '" + whole + "'; " + std::string(forms));
    }
    result.host = std::string(text.substr(0, colon));
    if (result.host.find(':') != std::string::npos) {
        throw std::invalid_argument("IPv6 address in '" + whole +
                                    "' must be in brackets, as in [::1]:1883");
    }
    if (result.host.empty()) {
        throw std::invalid_argument("missing host in '" + whole +
                                    "'; use 0.0.0.0 or [::] to listen on every interface");
    }
    if (result.host != "localhost" && !is_ipv4(result.host)) {
        throw std::invalid_argument("'" + result.host + "' is not an IPv4 address or localhost; " +
                                    std::string(forms));
    }
    result.port = parse_port(text.substr(colon + 1), text);
    return result;
}

}  // namespace iothub::cli
