#include "net/tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/ssl/context.hpp>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "net/server.hpp"

namespace iothub::net {

namespace {

namespace ssl = boost::asio::ssl;

// TLS 1.2: forward secrecy and AEAD only, as Mozilla's "intermediate" profile. TLS 1.3 keeps
// OpenSSL's suites (AES-GCM and ChaCha20-Poly1305), all of which qualify.
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* groups = "X25519:P-256:P-384";
constexpr unsigned char session_id_context[] = "iothub-mqtts";

// The chain a client sends is not verified here: which CA, which device and whether it has
// expired are the gatekeeper's questions (hub/), asked at CONNECT. Only its length is limited.
// The client still proves that it holds the leaf's key (CertificateVerify), as TLS requires.
int accept_any_chain(X509_STORE_CTX* store, void*) {
    const STACK_OF(X509)* chain = X509_STORE_CTX_get0_untrusted(store);
    if (chain != nullptr && sk_X509_num(chain) > max_client_chain) {
        X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_CHAIN_TOO_LONG);
        return 0;
    }
    return 1;
}

// Never prompts for a pass phrase on the terminal: an encrypted key just fails to load.
int no_pass_phrase(char*, int, int, void*) {
    return 0;
}

std::string openssl_reason(unsigned long e) {
    if (e == 0) return {};
    if (const char* r = ERR_reason_error_string(e)) return r;
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

std::string der_of(X509* cert) {
    const int n = i2d_X509(cert, nullptr);
    if (n <= 0) return {};
    std::string out(static_cast<std::size_t>(n), '\0');
    auto* p = reinterpret_cast<unsigned char*>(out.data());
    i2d_X509(cert, &p);
    return out;
}

}  // namespace

struct tls_context::impl {
    ssl::context ctx{ssl::context::tls_server};
};

tls_context::tls_context(const tls_settings& s)
    : impl_(std::make_unique<impl>()), handshake_timeout_s_(s.handshake_timeout_s) {
    SSL_CTX* h = impl_->ctx.native_handle();
    const std::string origin = s.origin.empty() ? "" : " (" + s.origin + ")";
    SSL_CTX_set_min_proto_version(h, s.tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(h, 0);  // the newest OpenSSL has: 1.3
    SSL_CTX_set_options(
        h, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (SSL_CTX_set_cipher_list(h, tls12_ciphers) != 1 || SSL_CTX_set1_groups_list(h, groups) != 1)
        throw std::runtime_error("TLS: OpenSSL refuses the cipher suites: " +
                                 openssl_reason(ERR_get_error()));
    SSL_CTX_set_default_passwd_cb(h, no_pass_phrase);
    try {
        impl_->ctx.use_certificate_chain(boost::asio::buffer(s.cert_pem));
    } catch (const boost::system::system_error& e) {
        ERR_clear_error();
        throw std::runtime_error("TLS certificate" + origin + ": " + e.code().message() +
                                 " (expected PEM: the server's certificate, then intermediates)");
    }
    try {
        impl_->ctx.use_private_key(boost::asio::buffer(s.key_pem), ssl::context::pem);
    } catch (const boost::system::system_error& e) {
        ERR_clear_error();
        throw std::runtime_error("TLS private key" + origin + ": " + e.code().message() +
                                 " (expected an unencrypted PEM key)");
    }
    if (SSL_CTX_check_private_key(h) != 1) {
        ERR_clear_error();
        throw std::runtime_error("TLS private key" + origin +
                                 ": it is not the key of the certificate");
    }
    // Ask for a client certificate; go on without one, or with one no CA here signed.
    if (s.ask_client_certificate) {
        SSL_CTX_set_verify(h, SSL_VERIFY_PEER, nullptr);
        SSL_CTX_set_cert_verify_callback(h, accept_any_chain, nullptr);
    } else {
        SSL_CTX_set_verify(h, SSL_VERIFY_NONE, nullptr);
    }
    // No session resumption: a resumed session knows the client's leaf certificate but not
    // the intermediates it sent (OpenSSL keeps no chain in a session), and the gatekeeper
    // judges the whole chain at every CONNECT. No tickets, and no cache for the workers to
    // share behind a lock; a client offering a session gets a full handshake. (The session id
    // context is set all the same: OpenSSL refuses resumption attempts without one when it
    // asks for client certificates, failing the handshake instead of starting a new session.)
    SSL_CTX_set_session_id_context(h, session_id_context, sizeof session_id_context - 1);
    SSL_CTX_set_session_cache_mode(h, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(h, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(h, 0);
    // Partial writes: one record at a time, retried with the same bytes after want_write.
    // Release buffers: an idle connection holds no record buffer. Read ahead: one read(2)
    // takes as many records as have arrived.
    SSL_CTX_set_mode(h, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(h, 1);
    ERR_clear_error();
}

tls_context::~tls_context() = default;

tls_session::tls_session(const tls_context& ctx, int fd) {
    ssl_ = SSL_new(ctx.impl_->ctx.native_handle());
    if (ssl_ == nullptr) {
        ERR_clear_error();
        return;
    }
    // A socket BIO that does not own the descriptor: the connection's socket closes it.
    if (SSL_set_fd(ssl_, fd) != 1) {
        SSL_free(ssl_);
        ssl_ = nullptr;
        ERR_clear_error();
        return;
    }
    SSL_set_accept_state(ssl_);
}

tls_session::~tls_session() {
    if (ssl_ != nullptr) SSL_free(ssl_);
}

tls_session::tls_session(tls_session&& o) noexcept
    : ssl_(std::exchange(o.ssl_, nullptr)), established_(o.established_), fatal_(o.fatal_) {}

tls_session& tls_session::operator=(tls_session&& o) noexcept {
    if (this != &o) {
        if (ssl_ != nullptr) SSL_free(ssl_);
        ssl_ = std::exchange(o.ssl_, nullptr);
        established_ = o.established_;
        fatal_ = o.fatal_;
    }
    return *this;
}

// The error queue is per thread and shared by every connection of the worker: each call
// starts with it empty and leaves it empty.
tls_session::result tls_session::classify(int ret, std::string* why) {
    const int err = SSL_get_error(ssl_, ret);
    const int saved_errno = errno;
    result r = result::failed;
    switch (err) {
    case SSL_ERROR_WANT_READ:
        r = result::want_read;
        break;
    case SSL_ERROR_WANT_WRITE:
        r = result::want_write;
        break;
    case SSL_ERROR_ZERO_RETURN:
        r = result::closed;
        if (why) *why = "the client closed the connection";
        break;
    case SSL_ERROR_SYSCALL: {
        fatal_ = true;
        const unsigned long e = ERR_peek_last_error();
        if (e != 0) {
            r = result::failed;
            if (why) *why = openssl_reason(e);
        } else if (saved_errno == 0 || saved_errno == ECONNRESET || saved_errno == EPIPE) {
            r = result::closed;
            if (why)
                *why = saved_errno == 0 ? "the client closed the connection"
                                        : std::string("the client reset the connection");
        } else {
            r = result::failed;
            if (why) *why = std::strerror(saved_errno);
        }
        break;
    }
    default:
        fatal_ = true;
        if (why) {
            *why = openssl_reason(ERR_peek_last_error());
            if (why->empty()) *why = "TLS error " + std::to_string(err);
        }
        break;
    }
    ERR_clear_error();
    return r;
}

tls_session::result tls_session::handshake(std::string& why) {
    ERR_clear_error();
    errno = 0;
    const int ret = SSL_do_handshake(ssl_);
    if (ret == 1) {
        established_ = true;
        return result::ok;
    }
    const long verify = SSL_get_verify_result(ssl_);
    auto r = classify(ret, &why);
    if (r == result::closed && why.empty()) why = "the client closed the connection";
    if (r == result::failed && verify != X509_V_OK)
        why += std::string(": ") + X509_verify_cert_error_string(verify);
    return r;
}

tls_session::result tls_session::read(std::uint8_t* data, std::size_t size, std::size_t& got) {
    ERR_clear_error();
    errno = 0;
    got = 0;
    const int ret = SSL_read_ex(ssl_, data, size, &got);
    if (ret == 1) return result::ok;
    return classify(ret, nullptr);
}

tls_session::result tls_session::write(const std::uint8_t* data, std::size_t size,
                                       std::size_t& sent) {
    ERR_clear_error();
    errno = 0;
    sent = 0;
    const int ret = SSL_write_ex(ssl_, data, size, &sent);
    if (ret == 1) return result::ok;
    return classify(ret, nullptr);
}

bool tls_session::has_pending() const noexcept {
    return ssl_ != nullptr && SSL_has_pending(ssl_) == 1;
}

void tls_session::shutdown() noexcept {
    if (ssl_ == nullptr || !established_ || fatal_) return;
    ERR_clear_error();
    SSL_shutdown(ssl_);  // sends close_notify if the socket takes it now; never waits for the reply
    ERR_clear_error();
}

std::vector<std::string> tls_session::peer_chain() const {
    std::vector<std::string> out;
    if (ssl_ == nullptr) return out;
    X509* leaf = SSL_get0_peer_certificate(ssl_);
    if (leaf == nullptr) return out;
    out.push_back(der_of(leaf));
    // On the server side the stack holds what came after the leaf.
    if (STACK_OF(X509)* rest = SSL_get_peer_cert_chain(ssl_)) {
        for (int i = 0; i < sk_X509_num(rest); ++i) {
            X509* c = sk_X509_value(rest, i);
            if (X509_cmp(c, leaf) != 0) out.push_back(der_of(c));
        }
    }
    return out;
}

std::string tls_session::description() const {
    if (ssl_ == nullptr) return {};
    return std::string(SSL_get_version(ssl_)) + " " + SSL_get_cipher_name(ssl_);
}

}  // namespace iothub::net
