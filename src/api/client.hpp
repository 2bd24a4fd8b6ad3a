#pragma once
// A small synchronous HTTP/1.1 client of the management API, for the admin commands of
// the CLI. One request per connection; plain http:// only. No Boost in this header.

#include <chrono>
#include <optional>
#include <string>

namespace iothub::api {

struct http_reply {
    unsigned status = 0;
    std::string content_type;
    std::string body;
};

struct base_url {
    std::string host;
    std::string port = "80";
    std::string path;  // prefix without the trailing slash, e.g. "" or "/proxy"
};

// "http://host[:port][/prefix]" (IPv6 hosts in brackets); nullopt when it is not one.
std::optional<base_url> parse_base_url(const std::string& url);

// Sends one request and reads the whole answer. Throws std::runtime_error when the server
// cannot be reached or answers with something that is not HTTP.
http_reply http_call(const base_url& url, const std::string& method, const std::string& target,
                     const std::string& token, const std::string& body,
                     std::chrono::seconds timeout = std::chrono::seconds(30));

}  // namespace iothub::api
