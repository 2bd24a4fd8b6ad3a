#pragma once
// Event loops and listeners: one epoll loop per worker thread, a listening socket per
// worker on each address (SO_REUSEPORT spreads new connections), and the batched hand-off of
// deliveries between workers. MQTT over TCP, TLS, WebSocket and WebSocket over TLS. OpenSSL
// and Boost (Beast's HTTP parser, Asio's TLS context) stay inside net/*.cpp.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace iothub::broker {
class broker;
}

namespace iothub::net {

struct endpoint {
    std::string host;
    std::uint16_t port = 0;
};

// What the TLS listener serves. TLS 1.3 is negotiated whenever the client offers it; TLS 1.2
// only with ECDHE key exchange and AEAD ciphers. A client certificate is asked for but not
// required, and not judged here: the hub's gatekeeper decides what it proves.
struct tls_settings {
    std::string cert_pem;     // the server's certificate, then any intermediates
    std::string key_pem;      // its private key, unencrypted
    bool tls13_only = false;  // refuse TLS 1.2
    std::string origin;       // where they come from (file names), for error messages
    unsigned handshake_timeout_s = 10;
    // Ask the client for a certificate (mqtts: devices authenticate with one). The wss
    // listener does not: browsers abandon a WebSocket whose server asks for one, and devices
    // on WebSocket authenticate as insecure ones do.
    bool ask_client_certificate = true;
};

// What the WebSocket listeners accept (see net/websocket.hpp).
struct websocket_settings {
    std::string path = "/mqtt";        // request path
    std::vector<std::string> origins;  // Origin values accepted from browsers; empty = any
};

class server {
public:
    explicit server(broker::broker& b);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // Binds the MQTT listener; returns the bound address as "host:port". Throws
    // std::runtime_error with a clear message when the address cannot be bound.
    std::string listen_mqtt(const endpoint& ep);
    // Binds the MQTT-over-TLS listener. Throws std::runtime_error with a clear message when the
    // certificate or key cannot be used or the address cannot be bound.
    std::string listen_mqtts(const endpoint& ep, const tls_settings& tls);
    // Binds the MQTT-over-WebSocket listener.
    std::string listen_ws(const endpoint& ep, const websocket_settings& ws);
    // Binds the MQTT-over-WebSocket-over-TLS listener; `tls` as for listen_mqtts, without
    // asking for client certificates (reload_tls replaces both listeners' contexts).
    std::string listen_wss(const endpoint& ep, const websocket_settings& ws,
                           const tls_settings& tls);
    // A new path or origin list for the upgrades that start from now on.
    void set_websocket(const websocket_settings& ws);
    // New certificates and settings for the handshakes that start from now on; connected
    // clients keep their sessions. Throws std::runtime_error, and changes nothing, when they
    // cannot be used.
    void reload_tls(const tls_settings& tls);
    // Starts the worker threads.
    void start();
    // Runs `f` on every worker's thread and waits for all of them.
    void run_on_workers(const std::function<void(unsigned worker)>& f);
    // Stops accepting, closes every connection (broker shutdown), stops the threads.
    void stop();

    struct impl;  // defined in server.cpp

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace iothub::net
