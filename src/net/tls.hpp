#pragma once
// TLS for the MQTT listeners, on OpenSSL 3, for server.cpp. No OpenSSL or Boost type appears
// here: the context is built in tls.cpp (through Boost.Asio's ssl::context), and a connection
// keeps its TLS state as one opaque pointer.
//
// A connection's SSL object reads and writes the socket's descriptor itself (a socket BIO on
// the non-blocking fd), and the event loop only waits for readiness, as it does for plain TCP.
// Nothing in that state belongs to an event loop, so a connection moves to another worker as a
// TCP one does: the descriptor is released and assigned there, and the SSL object goes along
// with whatever it has read ahead. Asio's ssl::stream is not used for the data path: it cannot
// change io_context, and it keeps about 34 KB of buffers per connection even when idle, where
// an idle SSL object here keeps none (SSL_MODE_RELEASE_BUFFERS).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct ssl_st;

namespace iothub::net {

struct tls_settings;

// A server TLS context: certificate, key, versions and cipher suites. Immutable once built;
// every SSL object made from it keeps it alive, so a reload just builds a new one.
class tls_context {
public:
    // Throws std::runtime_error saying what is wrong with the certificate or key.
    explicit tls_context(const tls_settings& s);
    ~tls_context();
    tls_context(const tls_context&) = delete;
    tls_context& operator=(const tls_context&) = delete;

    unsigned handshake_timeout_s() const noexcept { return handshake_timeout_s_; }

    struct impl;

private:
    friend class tls_session;
    std::unique_ptr<impl> impl_;
    unsigned handshake_timeout_s_ = 10;
};

// Most certificates a client may send (leaf and intermediates); a longer chain fails the
// handshake before anything looks at it.
inline constexpr int max_client_chain = 10;

// One connection's TLS state: the server side of a handshake, then records both ways.
// Empty (false) for a plain TCP connection. Calls never block: they say what they wait for.
class tls_session {
public:
    enum class result : std::uint8_t {
        ok,
        want_read,   // call again when the socket is readable
        want_write,  // call again, with the same arguments, when the socket is writable
        closed,      // the peer ended the connection (close_notify or EOF)
        failed,      // protocol error or socket error: the session is unusable
    };

    tls_session() = default;
    // A server session on the connected, non-blocking socket `fd`; empty when OpenSSL cannot
    // make one (out of memory).
    tls_session(const tls_context& ctx, int fd);
    ~tls_session();
    tls_session(tls_session&& o) noexcept;
    tls_session& operator=(tls_session&& o) noexcept;
    tls_session(const tls_session&) = delete;
    tls_session& operator=(const tls_session&) = delete;

    explicit operator bool() const noexcept { return ssl_ != nullptr; }

    // Advances the handshake; on failure `why` says what went wrong, for the log.
    result handshake(std::string& why);
    bool established() const noexcept { return established_; }
    // Plaintext into [data, data + size); `got` bytes on ok.
    result read(std::uint8_t* data, std::size_t size, std::size_t& got);
    // Encrypts and sends at least one record of [data, data + size); `sent` bytes on ok.
    result write(const std::uint8_t* data, std::size_t size, std::size_t& sent);
    // Bytes already taken from the socket and not yet returned by read(): the socket will not
    // report them as readable.
    bool has_pending() const noexcept;
    // Sends close_notify if the session is healthy; never waits.
    void shutdown() noexcept;
    // The client's certificate chain, leaf first, DER; empty without one.
    std::vector<std::string> peer_chain() const;
    // "TLSv1.3 TLS_AES_128_GCM_SHA256", for logs.
    std::string description() const;

private:
    result classify(int ret, std::string* why);

    ssl_st* ssl_ = nullptr;
    bool established_ = false;
    bool fatal_ = false;  // after a fatal error OpenSSL forbids SSL_shutdown
};

}  // namespace iothub::net
