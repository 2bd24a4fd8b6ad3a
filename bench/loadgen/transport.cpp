#include "transport.hpp"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <climits>
#include <cstring>

namespace iothub::bench {
namespace {

constexpr std::size_t max_response_head = 16 * 1024;
constexpr std::size_t wire_compact_at = 1024 * 1024;

std::string openssl_errors() {
    std::string out;
    while (const unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) {
            out += "; ";
        }
        out += buf;
    }
    return out;
}

// A frame built for wss before it is encrypted; one per thread, reused.
bytes& frame_scratch() {
    thread_local bytes scratch;
    scratch.clear();
    return scratch;
}

}  // namespace

const char* transport_name(transport t) noexcept {
    switch (t) {
    case transport::tls:
        return "tls";
    case transport::ws:
        return "ws";
    case transport::wss:
        return "wss";
    default:
        return "tcp";
    }
}

std::string tls_client::init(const std::string& cafile, const std::string& host) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (ctx_ == nullptr) {
        return "SSL_CTX_new: " + openssl_errors();
    }
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);
    if (cafile.empty()) {
        // Not verifying: skip building and checking the chain altogether (OpenSSL would still
        // do it under SSL_VERIFY_NONE, at the cost of a signature check per handshake, and then
        // ignore the outcome). The server's CertificateVerify signature is still checked.
        SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
        SSL_CTX_set_cert_verify_callback(
            ctx_, [](X509_STORE_CTX*, void*) { return 1; }, nullptr);
        return {};
    }
    if (SSL_CTX_load_verify_locations(ctx_, cafile.c_str(), nullptr) != 1) {
        return "cannot load --cafile " + cafile + ": " + openssl_errors();
    }
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(ctx_), host.c_str());
    return {};
}

tls_client::~tls_client() {
    SSL_CTX_free(ctx_);
}

link::link(const settings& s, std::uint64_t seed) : s_(s), rng_(seed | 1) {}

link::~link() {
    SSL_free(ssl_);
}

link::status link::fail(std::string why) {
    if (error_.empty()) {
        error_ = std::move(why);
    }
    return status::error;
}

link::status link::fail_tls(const char* what, int ret) {
    const int e = SSL_get_error(ssl_, ret);
    std::string detail = openssl_errors();
    if (detail.empty()) {
        detail = e == SSL_ERROR_SYSCALL ? "unexpected end of stream" : "error " + std::to_string(e);
    }
    return fail(std::string(what) + ": " + detail);
}

link::status link::begin() {
    if (uses_tls(s_.kind)) {
        ssl_ = SSL_new(s_.ctx);
        rbio_ = BIO_new(BIO_s_mem());
        wbio_ = BIO_new(BIO_s_mem());
        if (ssl_ == nullptr || rbio_ == nullptr || wbio_ == nullptr) {
            BIO_free(rbio_);
            BIO_free(wbio_);
            rbio_ = wbio_ = nullptr;
            return fail("SSL_new: " + openssl_errors());
        }
        // An empty read BIO means "wait for more", not end of stream.
        BIO_set_mem_eof_return(rbio_, -1);
        SSL_set_bio(ssl_, rbio_, wbio_);
        SSL_set_connect_state(ssl_);
        step_ = step::tls_handshake;
        return handshake();
    }
    if (uses_ws(s_.kind)) {
        return start_upgrade();
    }
    step_ = step::open;
    opened_ = true;
    return status::ok;
}

link::status link::handshake() {
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl_);
    const status d = drain_tls();
    if (d != status::ok) {
        return d;
    }
    if (r == 1) {
        if (uses_ws(s_.kind)) {
            return start_upgrade();
        }
        step_ = step::open;
        opened_ = true;
        return status::ok;
    }
    const int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        return status::ok;
    }
    return fail_tls("TLS handshake", r);
}

link::status link::start_upgrade() {
    key_ = ws::make_key(rng_);
    const std::string req = ws::upgrade_request(s_.host, s_.port, s_.path, key_);
    step_ = step::upgrade;
    return write_stream(reinterpret_cast<const std::uint8_t*>(req.data()), req.size());
}

link::status link::drain_tls() {
    const std::size_t pending = BIO_ctrl_pending(wbio_);
    if (pending == 0) {
        return status::ok;
    }
    const std::size_t at = wire.size();
    wire.resize(at + pending);
    const int r = BIO_read(wbio_, wire.data() + at, static_cast<int>(pending));
    wire.resize(at + (r > 0 ? static_cast<std::size_t>(r) : 0));
    return status::ok;
}

link::status link::write_stream(const std::uint8_t* p, std::size_t n) {
    if (ssl_ == nullptr) {
        wire.insert(wire.end(), p, p + n);
        return status::ok;
    }
    while (n > 0) {
        const int chunk = static_cast<int>(std::min<std::size_t>(n, INT_MAX / 2));
        ERR_clear_error();
        const int r = SSL_write(ssl_, p, chunk);
        if (r <= 0) {
            return fail_tls("TLS write", r);
        }
        p += r;
        n -= static_cast<std::size_t>(r);
    }
    return drain_tls();
}

link::status link::put(const std::uint8_t* p, std::size_t n) {
    if (n == 0) {
        return status::ok;
    }
    if (!uses_ws(s_.kind)) {
        return write_stream(p, n);
    }
    bytes& frames = ssl_ == nullptr ? wire : frame_scratch();
    while (n > 0) {
        const std::size_t chunk = std::min(n, s_.max_frame);
        ws::append_frame(frames, ws::op_binary, p, chunk, rng_);
        p += chunk;
        n -= chunk;
    }
    return ssl_ == nullptr ? status::ok : write_stream(frames.data(), frames.size());
}

void link::sent(std::size_t n) noexcept {
    wire_head += n;
    if (wire_head == wire.size()) {
        wire.clear();
        wire_head = 0;
    } else if (wire_head > wire_compact_at) {
        wire.erase(wire.begin(), wire.begin() + static_cast<std::ptrdiff_t>(wire_head));
        wire_head = 0;
    }
}

link::status link::feed_tls(const std::uint8_t* raw, std::size_t n, bytes& in,
                            std::size_t& in_len) {
    if (n > 0 && BIO_write(rbio_, raw, static_cast<int>(n)) != static_cast<int>(n)) {
        return fail("BIO_write: " + openssl_errors());
    }
    if (step_ == step::tls_handshake) {
        const status s = handshake();
        if (s != status::ok || step_ == step::tls_handshake) {
            return s;
        }
    }
    for (;;) {
        if (in.size() < in_len + 16 * 1024) {
            in.resize(in_len + 64 * 1024);
        }
        ERR_clear_error();
        const int r =
            SSL_read(ssl_, in.data() + in_len,
                     static_cast<int>(std::min<std::size_t>(in.size() - in_len, INT_MAX)));
        if (r > 0) {
            const status s = on_plain(in, in_len, static_cast<std::size_t>(r));
            if (s != status::ok) {
                drain_tls();
                return s;
            }
            continue;
        }
        const int e = SSL_get_error(ssl_, r);
        drain_tls();  // SSL_read may have something to send (a key update, an alert)
        if (e == SSL_ERROR_WANT_READ) {
            return status::ok;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            return status::closed;
        }
        return fail_tls("TLS read", r);
    }
}

link::status link::feed_plain(bytes& in, std::size_t& in_len, std::size_t n) {
    return on_plain(in, in_len, n);
}

link::status link::on_plain(bytes& in, std::size_t& in_len, std::size_t n) {
    std::uint8_t* p = in.data() + in_len;
    if (step_ == step::upgrade) {
        response_.append(reinterpret_cast<const char*>(p), n);
        const std::size_t end = response_.find("\r\n\r\n");
        if (end == std::string::npos) {
            if (response_.size() > max_response_head) {
                return fail("WebSocket upgrade response head longer than 16 KiB");
            }
            return status::ok;
        }
        const std::string why =
            ws::check_upgrade_response(std::string_view(response_).substr(0, end), key_);
        if (!why.empty()) {
            return fail("WebSocket " + why);
        }
        step_ = step::open;
        opened_ = true;
        // What followed the head is already frames; it came with this chunk, so it fits.
        n = response_.size() - (end + 4);
        std::memcpy(p, response_.data() + end + 4, n);
        response_.clear();
        response_.shrink_to_fit();
        if (n == 0) {
            return status::ok;
        }
    }
    if (!uses_ws(s_.kind)) {
        in_len += n;
        return status::ok;
    }
    std::size_t out = 0;
    const bool good = reader_.feed(p, n, out, controls_);
    in_len += out;
    status st = status::ok;
    for (const auto& c : controls_) {
        if (c.op == ws::op_ping && st == status::ok) {
            bytes& frame = frame_scratch();
            ws::append_frame(frame, ws::op_pong,
                             reinterpret_cast<const std::uint8_t*>(c.payload.data()),
                             c.payload.size(), rng_);
            st = write_stream(frame.data(), frame.size());
        } else if (c.op == ws::op_close) {
            error_ = "WebSocket close from the broker, code " +
                     std::to_string(ws::close_code(c.payload));
            st = status::closed;
        }
    }
    controls_.clear();
    if (!good) {
        return fail("WebSocket: " + reader_.error());
    }
    return st;
}

tls_summary link::summary() const {
    tls_summary s;
    if (ssl_ == nullptr) {
        return s;
    }
    s.version = SSL_get_version(ssl_);
    s.cipher = SSL_get_cipher_name(ssl_);
    const auto group = static_cast<int>(SSL_get_negotiated_group(ssl_));
    if (group != 0) {
        const char* name = SSL_group_to_name(ssl_, group);
        s.group = name != nullptr ? name : std::to_string(group);
    }
    if (X509* cert = SSL_get0_peer_certificate(ssl_)) {
        EVP_PKEY* key = X509_get0_pubkey(cert);
        if (key != nullptr) {
            const char* type = EVP_PKEY_get0_type_name(key);
            s.server_key = type != nullptr ? type : "?";
            s.server_key += ' ';
            char curve[64];
            std::size_t len = 0;
            if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof curve,
                                               &len) == 1) {
                s.server_key.append(curve, len);
            } else {
                s.server_key.append(std::to_string(EVP_PKEY_get_bits(key)));
            }
        }
    }
    return s;
}

}  // namespace iothub::bench
