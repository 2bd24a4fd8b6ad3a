#pragma once
// What the API tests share: a registry on a memory store, with a key, and a raw HTTP/1.1
// client on a plain socket (written here from RFC 9112, not with Beast, so the server's
// HTTP code is not its own witness).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>

#include "api/keys.hpp"
#include "hub/registry.hpp"
#include "store/registry_store.hpp"

namespace iothub::api::testing {

// A registry on a memory store, a fixed clock and one key (the caller's).
struct registry_env {
    std::unique_ptr<store::registry_store> db = store::make_memory_registry();
    std::atomic<std::uint64_t> now_ms{1737627984158};  // 2025-01-23T10:26:24.158Z
    hub::registry reg{*db, [this] { return now_ms.load(); }};
    created_key key = create_api_key(*db, "", "test");

    // EC device keys, fast; `rsa` keeps the default (RSA-2048, as the hosted service).
    explicit registry_env(bool rsa = false) {
        if (!rsa) reg.set_device_key_type(pki::key_type::ec_p256);
    }
};

struct http_response {
    unsigned status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;

    nlohmann::json json() const { return nlohmann::json::parse(body); }
    std::string header(const std::string& name) const {
        const auto it = headers.find(name);
        return it == headers.end() ? std::string() : it->second;
    }
};

class raw_client {
public:
    explicit raw_client(std::uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd_ < 0) throw std::runtime_error("socket");
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            ::close(fd_);
            throw std::runtime_error("connect");
        }
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    ~raw_client() {
        if (fd_ >= 0) ::close(fd_);
    }
    raw_client(const raw_client&) = delete;
    raw_client& operator=(const raw_client&) = delete;

    void send(const std::string& bytes) {
        std::size_t done = 0;
        while (done < bytes.size()) {
            const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
            if (n <= 0) throw std::runtime_error("send failed");
            done += static_cast<std::size_t>(n);
        }
    }

    // One response (Content-Length framed, or none for 204/1xx); nullopt if the server
    // closed or said nothing within `timeout`.
    std::optional<http_response> read_response(
        std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            if (auto r = take_response()) return r;
            if (!fill(deadline)) return std::nullopt;
        }
    }

    // True when the server closes the connection (EOF or reset) within `timeout`.
    bool closed_by_server(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            buffer_.clear();
            const int r = wait_readable(deadline);
            if (r <= 0) return false;
            char buf[4096];
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) return true;
        }
    }

    std::string pending() const { return buffer_; }

private:
    int wait_readable(std::chrono::steady_clock::time_point deadline) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                              deadline - std::chrono::steady_clock::now())
                              .count();
        if (left <= 0) return 0;
        pollfd p{fd_, POLLIN, 0};
        return ::poll(&p, 1, static_cast<int>(left));
    }

    bool fill(std::chrono::steady_clock::time_point deadline) {
        if (wait_readable(deadline) <= 0) return false;
        char buf[65536];
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) return false;
        buffer_.append(buf, static_cast<std::size_t>(n));
        return true;
    }

    std::optional<http_response> take_response() {
        const auto end = buffer_.find("\r\n\r\n");
        if (end == std::string::npos) return std::nullopt;
        http_response r;
        const std::string head = buffer_.substr(0, end);
        std::size_t pos = head.find("\r\n");
        const std::string status_line = head.substr(0, pos);
        // "HTTP/1.1 200 OK"
        r.status = static_cast<unsigned>(std::stoul(status_line.substr(9, 3)));
        while (pos != std::string::npos) {
            const std::size_t next = head.find("\r\n", pos + 2);
            const std::string line = head.substr(
                pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
            const auto colon = line.find(':');
            if (colon != std::string::npos) {
                std::string name = line.substr(0, colon);
                for (auto& c : name)
                    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                std::string value = line.substr(colon + 1);
                while (!value.empty() && value.front() == ' ') value.erase(value.begin());
                r.headers[name] = value;
            }
            pos = next;
        }
        std::size_t length = 0;
        if (auto it = r.headers.find("content-length"); it != r.headers.end()) {
            length = std::stoul(it->second);
        }
        if (buffer_.size() < end + 4 + length) return std::nullopt;
        r.body = buffer_.substr(end + 4, length);
        buffer_.erase(0, end + 4 + length);
        return r;
    }

    int fd_ = -1;
    std::string buffer_;
};

// "host:port" → port
inline std::uint16_t port_of(const std::string& address) {
    return static_cast<std::uint16_t>(std::stoul(address.substr(address.rfind(':') + 1)));
}

}  // namespace iothub::api::testing
