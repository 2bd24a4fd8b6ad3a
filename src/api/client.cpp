#include "api/client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <stdexcept>

namespace iothub::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::optional<base_url> parse_base_url(const std::string& url) {
    constexpr std::string_view scheme = "http://";
    if (url.compare(0, scheme.size(), scheme) != 0) return std::nullopt;
    std::string_view rest = std::string_view(url).substr(scheme.size());
    base_url out;
    const auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    if (slash != std::string_view::npos) {
        std::string_view p = rest.substr(slash);
        while (!p.empty() && p.back() == '/') p.remove_suffix(1);
        out.path = std::string(p);
    }
    if (authority.empty()) return std::nullopt;
    if (authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        out.host = std::string(authority.substr(1, close - 1));
        authority = authority.substr(close + 1);
        if (!authority.empty()) {
            if (authority.front() != ':') return std::nullopt;
            out.port = std::string(authority.substr(1));
        }
    } else {
        const auto colon = authority.find(':');
        out.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) out.port = std::string(authority.substr(colon + 1));
    }
    if (out.host.empty() || out.port.empty()) return std::nullopt;
    for (const char c : out.port) {
        if (c < '0' || c > '9') return std::nullopt;
    }
    return out;
}

http_reply http_call(const base_url& url, const std::string& method, const std::string& target,
                     const std::string& token, const std::string& body,
                     std::chrono::seconds timeout) {
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    const std::string where = "http://" + url.host + ":" + url.port;
    http::request<http::string_body> req;
    req.method_string(method);
    req.target(url.path + target);
    req.version(11);
    req.set(http::field::host, url.host + ":" + url.port);
    req.set(http::field::user_agent, "iothub-cli");
    req.set(http::field::accept, "application/json");
    if (!token.empty()) req.set("X-Auth-Token", token);
    if (!body.empty()) {
        req.set(http::field::content_type, "application/json");
        req.body() = body;
    }
    req.keep_alive(false);
    req.prepare_payload();

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    if (method == "HEAD") parser.skip(true);

    // Asynchronous steps run to completion here: only they honour the stream's timeout.
    beast::error_code result;
    tcp::resolver resolver(ioc);
    const auto endpoints = resolver.resolve(url.host, url.port, result);
    if (result) throw std::runtime_error("cannot resolve " + url.host + ": " + result.message());
    stream.expires_after(timeout);
    stream.async_connect(endpoints, [&](beast::error_code ec, const tcp::endpoint&) {
        if (ec) {
            result = ec;
            return;
        }
        stream.expires_after(timeout);
        http::async_write(stream, req, [&](beast::error_code ec, std::size_t) {
            if (ec) {
                result = ec;
                return;
            }
            stream.expires_after(timeout);
            http::async_read(stream, buffer, parser,
                             [&](beast::error_code ec, std::size_t) { result = ec; });
        });
    });
    ioc.run();
    if (result)
        throw std::runtime_error("cannot talk to the API at " + where + ": " + result.message());

    auto res = parser.release();
    http_reply out;
    out.status = res.result_int();
    out.content_type = std::string(res[http::field::content_type]);
    out.body = std::move(res.body());
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    return out;
}

}  // namespace iothub::api
