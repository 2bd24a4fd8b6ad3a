#pragma once
// Certificates on OpenSSL 3: certificate authorities, device and server certificates,
// fingerprints and chain verification. PEM and DER travel as std::string; OpenSSL types stay
// inside pki/*.cpp. Every function throws pki::error on failure unless it says otherwise.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace iothub::pki {

class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class key_type { ec_p256, ec_p384, rsa_2048 };

struct cert_and_key {
    std::string cert_pem;
    std::string key_pem;  // PKCS#8 PEM ("PRIVATE KEY"); RSA keys as "RSA PRIVATE KEY"
};

struct subject {
    std::string common_name;
    std::string organization;         // empty: none
    std::string organizational_unit;  // empty: none
};

// When a certificate is valid, in unix seconds (both ends included).
struct validity {
    std::int64_t not_before_s = 0;
    std::int64_t not_after_s = 0;
};
// From an hour before `now_s` (clock skew between hosts) to `valid_years` after it;
// `now_s` defaults to the wall clock. The `int valid_years` overloads below use it.
validity valid_for_years(int valid_years, std::optional<std::int64_t> now_s = std::nullopt);

// A self-signed CA certificate (basicConstraints CA:TRUE, keyCertSign, cRLSign).
cert_and_key make_ca(const subject& s, key_type k, int valid_years);
cert_and_key make_ca(const subject& s, key_type k, const validity& v);
// An intermediate CA certificate signed by `ca`, with a fresh key.
cert_and_key issue_ca(const cert_and_key& ca, const subject& s, key_type k, const validity& v);

// A client certificate (CA:FALSE, digitalSignature + keyEncipherment, EKU clientAuth)
// signed by `ca`, with a fresh key.
cert_and_key issue_client(const cert_and_key& ca, const subject& s, key_type k, int valid_years);
cert_and_key issue_client(const cert_and_key& ca, const subject& s, key_type k, const validity& v);

// A server certificate (EKU serverAuth) signed by `ca` for these DNS names / IP addresses
// (subjectAltName), with a fresh key.
cert_and_key issue_server(const cert_and_key& ca, const std::vector<std::string>& names, key_type k,
                          int valid_years);
cert_and_key issue_server(const cert_and_key& ca, const std::vector<std::string>& names, key_type k,
                          const validity& v);

struct cert_info {
    std::string common_name;  // empty when the subject has none
    std::uint64_t not_before_ms = 0;
    std::uint64_t not_after_ms = 0;
    bool is_ca = false;
    std::string fingerprint;  // hex SHA-256 of the DER, lower case
    std::string der;
    std::string subject;  // one line, RFC 2253 ("CN=a,O=b"), for logs and messages
    std::string issuer;
    // OpenSSL's hash of the canonical subject / issuer name (X509_NAME_hash_ex): equal
    // names hash equal, so a certificate's issuer_hash finds its CA by subject_hash (an
    // index key only; a collision is possible and settled by verification).
    std::uint32_t subject_hash = 0;
    std::uint32_t issuer_hash = 0;
    std::string serial;                     // hex, upper case
    std::vector<std::string> dns_names;     // subjectAltName DNS entries
    std::vector<std::string> ip_addresses;  // subjectAltName IP entries, as text
};

// Parses one certificate; nullopt (and `why`) when it is not a certificate.
std::optional<cert_info> parse_pem(std::string_view pem, std::string* why = nullptr);
std::optional<cert_info> parse_der(std::string_view der, std::string* why = nullptr);
// Every certificate in a PEM bundle, in order.
std::vector<cert_info> parse_pem_bundle(std::string_view pem);

// Hex SHA-256 of DER bytes, lower case.
std::string fingerprint(std::string_view der);
// A certificate's DER as PEM ("-----BEGIN CERTIFICATE-----"); throws when it is not one.
std::string pem_of(std::string_view der);

enum class verdict {
    ok,
    expired,  // the leaf or an intermediate
    not_yet_valid,
    untrusted,  // does not chain to the CA
    bad_chain,  // malformed, too long, or not usable for client authentication
    revoked,    // a CRL of its issuer lists the leaf, an intermediate or the anchor
};
struct verification {
    verdict result = verdict::ok;
    std::string detail;  // OpenSSL's reason, for logs
};

class crl_set;  // pki/crl.hpp

// Verifies `chain` (leaf first, DER; intermediates after it) against the CA certificates in
// `trusted_pem`, at `now_ms`, for client authentication, at most `max_depth` certificates.
// With `crls`, a chain that verifies is then refused (verdict::revoked) when a CRL of an
// issuer lists one of its certificates: each is checked against the next one of the verified
// chain; the anchor, unless self-signed, against its issuer's name (see crl_set::revoked).
verification verify_client_chain(const std::vector<std::string>& chain,
                                 std::string_view trusted_pem, std::uint64_t now_ms,
                                 int max_depth = 8, const crl_set* crls = nullptr);

// Whether `cert_pem` was signed by `ca_pem`'s key (a proof of possession challenge).
bool signed_by(std::string_view cert_pem, std::string_view ca_pem);

// Whether `key_pem` is the private key of `cert_pem`.
bool key_matches(std::string_view cert_pem, std::string_view key_pem);

// The server's own TLS identity under `data_dir`: a server CA (`server-ca.pem`, key
// `server-ca.key`, mode 0600) made on first start, and a server certificate it signs for
// `names` (`server.pem`, `server.key`), re-issued when the names change or it nears expiry.
struct server_identity {
    std::string ca_pem;
    std::string cert_pem;  // leaf, then nothing else (the CA is what clients trust)
    std::string key_pem;
    std::string ca_path;  // where the CA certificate is, for `iothub ca server` and logs
};
server_identity load_or_create_server_identity(const std::string& data_dir,
                                               const std::vector<std::string>& names);
// Only the server CA of `data_dir` (made when missing): what `iothub ca server` prints.
// Leaves the server certificate alone.
cert_and_key load_or_create_server_ca(const std::string& data_dir);
inline constexpr const char* server_ca_file = "server-ca.pem";
inline constexpr const char* server_ca_key_file = "server-ca.key";
inline constexpr const char* server_cert_file = "server.pem";
inline constexpr const char* server_key_file = "server.key";

}  // namespace iothub::pki
