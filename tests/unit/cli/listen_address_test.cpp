#include "cli/listen_address.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace iothub::cli {
namespace {

TEST(listen_address, parses_ipv4) {
    auto address = parse_listen_address("192.168.1.20:8883");
    EXPECT_EQ(address.host, "192.168.1.20");
    EXPECT_EQ(address.port, 8883);
    EXPECT_FALSE(address.is_ipv6());
    EXPECT_EQ(address.to_string(), "192.168.1.20:8883");
}

TEST(listen_address, parses_ipv6_in_brackets) {
    auto address = parse_listen_address("[::1]:1883");
    EXPECT_EQ(address.host, "::1");
    EXPECT_EQ(address.port, 1883);
    EXPECT_TRUE(address.is_ipv6());
    EXPECT_EQ(address.to_string(), "[::1]:1883");

    auto full = parse_listen_address("[2001:db8::42]:65535");
    EXPECT_EQ(full.host, "2001:db8::42");
    EXPECT_EQ(full.port, 65535);
}

TEST(listen_address, parses_localhost_and_port_zero) {
    auto address = parse_listen_address("localhost:0");
    EXPECT_EQ(address.host, "localhost");
    EXPECT_EQ(address.port, 0);
    EXPECT_EQ(address.to_string(), "localhost:0");
}

TEST(listen_address, parses_wildcards) {
    EXPECT_EQ(parse_listen_address("0.0.0.0:1883").host, "0.0.0.0");
    EXPECT_EQ(parse_listen_address("[::]:1883").host, "::");
}

std::string error_of(std::string_view text) {
    try {
        parse_listen_address(text);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "no error";
}

TEST(listen_address, rejects_port_out_of_range) {
    EXPECT_EQ(error_of("127.0.0.1:65536"), "port 65536 is out of range (0..65535)");
    EXPECT_EQ(error_of("127.0.0.1:99999999999999999999"),
              "port 99999999999999999999 is out of range (0..65535)");
    EXPECT_EQ(error_of("[::1]:70000"), "port 70000 is out of range (0..65535)");
}

TEST(listen_address, rejects_bad_ports) {
    EXPECT_NE(error_of("127.0.0.1:").find("missing port"), std::string::npos);
    EXPECT_NE(error_of("127.0.0.1:http").find("not a number"), std::string::npos);
    EXPECT_NE(error_of("127.0.0.1:-1").find("not a number"), std::string::npos);
    EXPECT_NE(error_of("127.0.0.1:+1").find("not a number"), std::string::npos);
    EXPECT_NE(error_of("127.0.0.1:18 83").find("not a number"), std::string::npos);
}

TEST(listen_address, rejects_missing_parts) {
    EXPECT_NE(error_of("").find("empty address"), std::string::npos);
    EXPECT_NE(error_of("127.0.0.1").find("missing ':PORT'"), std::string::npos);
    EXPECT_NE(error_of(":1883").find("missing host"), std::string::npos);
    EXPECT_NE(error_of("[::1]").find("missing ':PORT'"), std::string::npos);
    EXPECT_NE(error_of("[::1]1883").find("missing ':PORT'"), std::string::npos);
    EXPECT_NE(error_of("[::1:1883").find("missing ']'"), std::string::npos);
}

TEST(listen_address, rejects_bad_hosts) {
    EXPECT_NE(error_of("::1:1883").find("must be in brackets"), std::string::npos);
    EXPECT_NE(error_of("example.com:1883").find("not an IPv4 address"), std::string::npos);
    EXPECT_NE(error_of("256.0.0.1:1883").find("not an IPv4 address"), std::string::npos);
    EXPECT_NE(error_of("1.2.3:1883").find("not an IPv4 address"), std::string::npos);
    EXPECT_NE(error_of("[127.0.0.1]:1883").find("not an IPv6 address"), std::string::npos);
    EXPECT_NE(error_of("[fe80::1%eth0]:1883").find("not an IPv6 address"), std::string::npos);
    EXPECT_NE(error_of("[]:1883").find("not an IPv6 address"), std::string::npos);
}

TEST(listen_address, loopback_covers_127_slash_8_ipv6_and_localhost) {
    EXPECT_TRUE(parse_listen_address("127.0.0.1:1883").is_loopback());
    EXPECT_TRUE(parse_listen_address("127.255.3.4:1883").is_loopback());
    EXPECT_TRUE(parse_listen_address("[::1]:1883").is_loopback());
    EXPECT_TRUE(parse_listen_address("[0:0:0:0:0:0:0:1]:1883").is_loopback());
    EXPECT_TRUE(parse_listen_address("[::ffff:127.0.0.1]:1883").is_loopback());
    EXPECT_TRUE(parse_listen_address("localhost:1883").is_loopback());
}

TEST(listen_address, wildcard_and_public_addresses_are_not_loopback) {
    EXPECT_FALSE(parse_listen_address("0.0.0.0:1883").is_loopback());
    EXPECT_FALSE(parse_listen_address("[::]:1883").is_loopback());
    EXPECT_FALSE(parse_listen_address("128.0.0.1:1883").is_loopback());
    EXPECT_FALSE(parse_listen_address("10.0.0.1:1883").is_loopback());
    EXPECT_FALSE(parse_listen_address("[::2]:1883").is_loopback());
    EXPECT_FALSE(parse_listen_address("[::ffff:10.0.0.1]:1883").is_loopback());
}

TEST(listen_address, off_only_where_allowed) {
    EXPECT_THROW(parse_listen_address("off"), std::invalid_argument);
    const auto off = parse_listen_address("off", true);
    EXPECT_FALSE(off.enabled());
    EXPECT_EQ(off.to_string(), "off");
    EXPECT_TRUE(off.is_loopback());
    EXPECT_TRUE(parse_listen_address("127.0.0.1:1", true).enabled());
}

}  // namespace
}  // namespace iothub::cli
