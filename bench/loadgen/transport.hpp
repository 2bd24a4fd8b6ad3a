#pragma once
// What lies between a connection's MQTT bytes and its socket when the transport is not plain
// TCP: TLS (OpenSSL 3 on memory BIOs, so the worker's non-blocking loop does every read() and
// write() itself, one of each per readiness event, as for TCP) and WebSocket framing, alone
// (ws) or inside TLS (wss).
//
// Out: the MQTT bytes queued since the last flush become one masked binary frame (ws), are
// encrypted (tls), and land in `wire`, which the worker sends. In: the bytes read are
// decrypted and unframed into the connection's read buffer, where packets are parsed as for
// TCP. A plain TCP connection has no link and pays nothing for this.

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "wire.hpp"
#include "ws_client.hpp"

namespace iothub::bench {

enum class transport : std::uint8_t { tcp, tls, ws, wss };

inline bool uses_tls(transport t) noexcept {
    return t == transport::tls || t == transport::wss;
}
inline bool uses_ws(transport t) noexcept {
    return t == transport::ws || t == transport::wss;
}
const char* transport_name(transport t) noexcept;

// The client SSL_CTX every worker thread shares. No session cache: each connection makes a
// full handshake. Without a CA file the server is not verified (benchmarks only); with one,
// its chain and its IP address (--host) are.
class tls_client {
public:
    // Empty on success; otherwise what failed.
    std::string init(const std::string& cafile, const std::string& host);
    ~tls_client();
    SSL_CTX* ctx() const noexcept { return ctx_; }

private:
    SSL_CTX* ctx_ = nullptr;
};

// What a TLS handshake settled on, for the report.
struct tls_summary {
    std::string version;     // TLSv1.3
    std::string cipher;      // TLS_AES_256_GCM_SHA384
    std::string group;       // X25519 (key exchange)
    std::string server_key;  // EC P-256, RSA 2048
};

class link {
public:
    enum class status : std::uint8_t {
        ok,
        closed,  // the peer ended the stream (TLS close_notify, WebSocket close frame)
        error,
    };

    struct settings {
        transport kind = transport::tcp;
        SSL_CTX* ctx = nullptr;
        std::string host;  // Host header
        std::uint16_t port = 0;
        std::string path;                   // request target
        std::size_t max_frame = 64 * 1024;  // payload bytes per WebSocket frame at most
    };

    link(const settings& s, std::uint64_t seed);
    ~link();
    link(const link&) = delete;
    link& operator=(const link&) = delete;

    // The TCP connection is up: starts the TLS handshake or sends the upgrade request.
    status begin();

    // The transport is open: MQTT bytes may be put and arrive in the read buffer.
    bool open() const noexcept { return step_ == step::open; }
    // True once after the transport opened (the worker then sends CONNECT).
    bool take_opened() noexcept {
        const bool o = opened_;
        opened_ = false;
        return o;
    }
    bool tls() const noexcept { return ssl_ != nullptr; }

    // Queues MQTT bytes into `wire`: for ws, as one frame, or as frames of max_frame bytes
    // (which may cut packets anywhere) when there are more. Only when open().
    status put(const std::uint8_t* p, std::size_t n);

    // TLS: ciphertext read from the socket. The MQTT bytes it carries are appended to
    // in[in_len...], growing `in` as needed.
    status feed_tls(const std::uint8_t* raw, std::size_t n, bytes& in, std::size_t& in_len);
    // No TLS: `n` bytes were read into in[in_len...]; unframes them in place and advances
    // in_len by the MQTT bytes they carried.
    status feed_plain(bytes& in, std::size_t& in_len, std::size_t n);

    std::size_t wire_pending() const noexcept { return wire.size() - wire_head; }
    void sent(std::size_t n) noexcept;

    const std::string& error() const noexcept { return error_; }
    tls_summary summary() const;

    bytes wire;  // ready for send()
    std::size_t wire_head = 0;

private:
    enum class step : std::uint8_t { tls_handshake, upgrade, open };

    status handshake();
    status start_upgrade();
    status write_stream(const std::uint8_t* p, std::size_t n);
    status drain_tls();
    // Plaintext at in[in_len, in_len + n): the upgrade response, then WebSocket frames or MQTT.
    status on_plain(bytes& in, std::size_t& in_len, std::size_t n);
    status fail(std::string why);
    status fail_tls(const char* what, int ret);

    settings s_;
    step step_ = step::open;
    bool opened_ = false;
    SSL* ssl_ = nullptr;
    BIO* rbio_ = nullptr;  // owned by ssl_
    BIO* wbio_ = nullptr;  // owned by ssl_
    std::uint64_t rng_;
    std::string key_;       // Sec-WebSocket-Key
    std::string response_;  // the upgrade response head so far
    ws::frame_reader reader_;
    std::vector<ws::frame_reader::control> controls_;
    std::string error_;
};

}  // namespace iothub::bench
