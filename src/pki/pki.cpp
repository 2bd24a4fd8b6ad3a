// Certificates on OpenSSL 3's EVP and X509 APIs (see pki.hpp).

#include "pki/pki.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "pki/crl.hpp"
#include "pki/ossl.hpp"

namespace iothub::pki {

namespace ossl {

std::string last_error() {
    std::string out;
    while (const unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "unknown OpenSSL error" : out;
}

void fail(const std::string& what) {
    throw error("pki: " + what + ": " + last_error());
}

bio_ptr memory_reader(std::string_view data) {
    bio_ptr b(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    if (!b) fail("BIO_new_mem_buf");
    return b;
}

std::string contents(BIO* b) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(b, &data);
    return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

x509_ptr read_pem_cert(std::string_view pem, std::string* why) {
    ERR_clear_error();
    auto b = memory_reader(pem);
    x509_ptr x(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
    if (!x && why != nullptr) *why = "not a PEM certificate: " + last_error();
    ERR_clear_error();
    return x;
}

x509_ptr read_der_cert(std::string_view der, std::string* why) {
    ERR_clear_error();
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    x509_ptr x(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
    if (x && p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
        x.reset();  // trailing bytes: not one certificate
        if (why != nullptr) *why = "bytes after the certificate";
        return x;
    }
    if (!x && why != nullptr) *why = "not a DER certificate: " + last_error();
    ERR_clear_error();
    return x;
}

pkey_ptr read_private_key(std::string_view pem) {
    ERR_clear_error();
    auto b = memory_reader(pem);
    pkey_ptr k(PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr));
    if (!k) fail("not a PEM private key");
    return k;
}

std::string der_of(X509* x) {
    unsigned char* buf = nullptr;
    const int n = i2d_X509(x, &buf);
    if (n <= 0) fail("i2d_X509");
    std::string out(reinterpret_cast<char*>(buf), static_cast<std::size_t>(n));
    OPENSSL_free(buf);
    return out;
}

std::string pem_of(X509* x) {
    bio_ptr b(BIO_new(BIO_s_mem()));
    if (!b || PEM_write_bio_X509(b.get(), x) != 1) fail("PEM_write_bio_X509");
    return contents(b.get());
}

const EVP_MD* digest_for(EVP_PKEY* signer) {
    if (EVP_PKEY_is_a(signer, "EC") == 1 && EVP_PKEY_get_bits(signer) >= 384) return EVP_sha384();
    return EVP_sha256();
}

std::uint64_t to_unix_ms(const ASN1_TIME* t) {
    std::tm tm{};
    if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
    const std::int64_t secs = timegm(&tm);
    return secs <= 0 ? 0 : static_cast<std::uint64_t>(secs) * 1000;
}

std::string name_text(const X509_NAME* n) {
    bio_ptr b(BIO_new(BIO_s_mem()));
    if (!b) return {};
    X509_NAME_print_ex(b.get(), n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    return contents(b.get());
}

std::uint32_t name_hash(const X509_NAME* n) {
    int ok = 0;
    const unsigned long h = X509_NAME_hash_ex(n, nullptr, nullptr, &ok);
    if (ok != 1) ERR_clear_error();
    return static_cast<std::uint32_t>(h);
}

std::string to_hex(const unsigned char* p, std::size_t n, bool upper) {
    static constexpr char lower_digits[] = "0123456789abcdef";
    static constexpr char upper_digits[] = "0123456789ABCDEF";
    const char* digits = upper ? upper_digits : lower_digits;
    std::string out;
    out.reserve(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back(digits[p[i] >> 4]);
        out.push_back(digits[p[i] & 15]);
    }
    return out;
}

}  // namespace ossl

namespace {

using namespace ossl;

constexpr std::int64_t skew_seconds = 3600;

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

pkey_ptr make_key(key_type k) {
    ERR_clear_error();
    EVP_PKEY* p = nullptr;
    switch (k) {
    case key_type::ec_p256:
        p = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
        break;
    case key_type::ec_p384:
        p = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
        break;
    case key_type::rsa_2048:
        p = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
        break;
    }
    if (p == nullptr) fail("key generation");
    return pkey_ptr(p);
}

// RSA keys as "RSA PRIVATE KEY" (PKCS#1, what the hosted service hands out), others as
// PKCS#8 "PRIVATE KEY".
std::string key_pem(EVP_PKEY* k) {
    bio_ptr b(BIO_new(BIO_s_mem()));
    if (!b) fail("BIO_new");
    const bool rsa = EVP_PKEY_is_a(k, "RSA") == 1;
    const int ok =
        rsa ? PEM_write_bio_PrivateKey_traditional(b.get(), k, nullptr, nullptr, 0, nullptr,
                                                   nullptr)
            : PEM_write_bio_PrivateKey(b.get(), k, nullptr, nullptr, 0, nullptr, nullptr);
    if (ok != 1) fail("writing the private key");
    return contents(b.get());
}

// A random positive serial of at most 159 bits (RFC 5280: at most 20 octets, positive).
asn1_integer_ptr random_serial() {
    unsigned char bytes[20];
    do {
        if (RAND_bytes(bytes, sizeof bytes) != 1) fail("RAND_bytes");
        bytes[0] &= 0x7f;
    } while (
        std::all_of(std::begin(bytes), std::end(bytes), [](unsigned char c) { return c == 0; }));
    bn_ptr bn(BN_bin2bn(bytes, sizeof bytes, nullptr));
    if (!bn) fail("BN_bin2bn");
    asn1_integer_ptr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
    if (!serial) fail("BN_to_ASN1_INTEGER");
    return serial;
}

void add_entry(X509_NAME* name, int nid, const std::string& value) {
    if (value.empty()) return;
    // V_ASN1_UTF8STRING (not MBSTRING_UTF8): the value is taken as it is, without the
    // 64-character cap RFC 5280 puts on a common name (device names may be 255 long).
    if (X509_NAME_add_entry_by_NID(name, nid, V_ASN1_UTF8STRING,
                                   reinterpret_cast<const unsigned char*>(value.data()),
                                   static_cast<int>(value.size()), -1, 0) != 1) {
        fail("setting a name entry");
    }
}

name_ptr make_name(const subject& s) {
    name_ptr n(X509_NAME_new());
    if (!n) fail("X509_NAME_new");
    add_entry(n.get(), NID_organizationName, s.organization);
    add_entry(n.get(), NID_organizationalUnitName, s.organizational_unit);
    add_entry(n.get(), NID_commonName, s.common_name);
    return n;
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    extension_ptr ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value));
    if (!ext) fail(std::string("extension ") + OBJ_nid2sn(nid) + "=" + value);
    if (X509_add_ext(cert, ext.get(), -1) != 1) fail("X509_add_ext");
}

void set_time(ASN1_TIME* t, std::int64_t unix_s) {
    if (ASN1_TIME_set(t, static_cast<time_t>(unix_s)) == nullptr) fail("ASN1_TIME_set");
}

enum class profile { ca, client, server };

// A certificate for `key` with subject `name`, signed by `issuer` (null: self-signed).
x509_ptr build(X509_NAME* name, EVP_PKEY* key, X509* issuer_cert, EVP_PKEY* issuer_key,
               const validity& v, profile what, const std::vector<std::string>& names = {}) {
    ERR_clear_error();
    if (v.not_after_s < v.not_before_s) throw error("pki: validity ends before it starts");
    x509_ptr x(X509_new());
    if (!x) fail("X509_new");
    if (X509_set_version(x.get(), X509_VERSION_3) != 1) fail("X509_set_version");
    auto serial = random_serial();
    if (X509_set_serialNumber(x.get(), serial.get()) != 1) fail("X509_set_serialNumber");
    set_time(X509_getm_notBefore(x.get()), v.not_before_s);
    set_time(X509_getm_notAfter(x.get()), v.not_after_s);
    if (X509_set_subject_name(x.get(), name) != 1) fail("X509_set_subject_name");
    X509* signer_cert = issuer_cert != nullptr ? issuer_cert : x.get();
    if (X509_set_issuer_name(x.get(), X509_get_subject_name(signer_cert)) != 1)
        fail("X509_set_issuer_name");
    if (X509_set_pubkey(x.get(), key) != 1) fail("X509_set_pubkey");

    // The subject key id first: a self-signed certificate's authority key id refers to it.
    add_ext(x.get(), signer_cert, NID_subject_key_identifier, "hash");
    add_ext(x.get(), signer_cert, NID_authority_key_identifier, "keyid:always");
    switch (what) {
    case profile::ca:
        add_ext(x.get(), signer_cert, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x.get(), signer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
        break;
    case profile::client:
        add_ext(x.get(), signer_cert, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x.get(), signer_cert, NID_key_usage, "critical,digitalSignature,keyEncipherment");
        add_ext(x.get(), signer_cert, NID_ext_key_usage, "clientAuth");
        break;
    case profile::server: {
        add_ext(x.get(), signer_cert, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x.get(), signer_cert, NID_key_usage, "critical,digitalSignature,keyEncipherment");
        add_ext(x.get(), signer_cert, NID_ext_key_usage, "serverAuth");
        general_names_ptr gens(GENERAL_NAMES_new());
        if (!gens) fail("GENERAL_NAMES_new");
        for (const auto& n : names) {
            // An IP address literal becomes an IP entry, anything else a DNS name.
            if (ASN1_OCTET_STRING* ip = a2i_IPADDRESS(n.c_str())) {
                general_name_ptr g(GENERAL_NAME_new());
                if (!g) {
                    ASN1_OCTET_STRING_free(ip);
                    fail("GENERAL_NAME_new");
                }
                GENERAL_NAME_set0_value(g.get(), GEN_IPADD, ip);
                if (sk_GENERAL_NAME_push(gens.get(), g.get()) <= 0) fail("sk_GENERAL_NAME_push");
                g.release();
                continue;
            }
            ERR_clear_error();
            ASN1_IA5STRING* dns = ASN1_IA5STRING_new();
            if (dns == nullptr || ASN1_STRING_set(dns, n.data(), static_cast<int>(n.size())) != 1) {
                ASN1_IA5STRING_free(dns);
                fail("DNS name");
            }
            general_name_ptr g(GENERAL_NAME_new());
            if (!g) {
                ASN1_IA5STRING_free(dns);
                fail("GENERAL_NAME_new");
            }
            GENERAL_NAME_set0_value(g.get(), GEN_DNS, dns);
            if (sk_GENERAL_NAME_push(gens.get(), g.get()) <= 0) fail("sk_GENERAL_NAME_push");
            g.release();
        }
        if (sk_GENERAL_NAME_num(gens.get()) > 0 &&
            X509_add1_ext_i2d(x.get(), NID_subject_alt_name, gens.get(), 0, X509V3_ADD_DEFAULT) !=
                1) {
            fail("subjectAltName");
        }
        break;
    }
    }
    EVP_PKEY* signer = issuer_key != nullptr ? issuer_key : key;
    if (X509_sign(x.get(), signer, digest_for(signer)) <= 0) fail("X509_sign");
    return x;
}

struct loaded_ca {
    x509_ptr cert;
    pkey_ptr key;
};

loaded_ca load_ca(const cert_and_key& ca) {
    loaded_ca out;
    std::string why;
    out.cert = read_pem_cert(ca.cert_pem, &why);
    if (!out.cert) throw error("pki: the CA certificate: " + why);
    out.key = read_private_key(ca.key_pem);
    if (X509_check_private_key(out.cert.get(), out.key.get()) != 1) {
        ERR_clear_error();
        throw error("pki: the CA key does not belong to the CA certificate");
    }
    return out;
}

cert_and_key issue(const cert_and_key& ca, const subject& s, key_type k, const validity& v,
                   profile what, const std::vector<std::string>& names = {}) {
    auto issuer = load_ca(ca);
    auto key = make_key(k);
    auto name = make_name(s);
    auto x = build(name.get(), key.get(), issuer.cert.get(), issuer.key.get(), v, what, names);
    return {pem_of(x.get()), key_pem(key.get())};
}

std::string utf8_of(const ASN1_STRING* s) {
    unsigned char* out = nullptr;
    const int n = ASN1_STRING_to_UTF8(&out, s);
    if (n < 0) {
        ERR_clear_error();
        return {};
    }
    std::string r(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
    OPENSSL_free(out);
    return r;
}

cert_info info_of(X509* x, std::string der) {
    cert_info info;
    const X509_NAME* subj = X509_get_subject_name(x);
    // The last common name is the most specific one.
    int idx = -1;
    for (int i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1); i >= 0;
         i = X509_NAME_get_index_by_NID(subj, NID_commonName, i)) {
        idx = i;
    }
    if (idx >= 0) {
        info.common_name = utf8_of(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx)));
    }
    info.not_before_ms = to_unix_ms(X509_get0_notBefore(x));
    info.not_after_ms = to_unix_ms(X509_get0_notAfter(x));
    info.is_ca = X509_check_ca(x) != 0;
    info.fingerprint = fingerprint(der);
    info.subject = name_text(subj);
    info.issuer = name_text(X509_get_issuer_name(x));
    info.subject_hash = name_hash(subj);
    info.issuer_hash = name_hash(X509_get_issuer_name(x));
    if (const ASN1_INTEGER* serial = X509_get0_serialNumber(x)) {
        bn_ptr bn(ASN1_INTEGER_to_BN(serial, nullptr));
        if (bn) {
            std::string bytes(static_cast<std::size_t>(BN_num_bytes(bn.get())), '\0');
            BN_bn2bin(bn.get(), reinterpret_cast<unsigned char*>(bytes.data()));
            info.serial =
                to_hex(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), true);
        }
    }
    if (auto* gens = static_cast<GENERAL_NAMES*>(
            X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr))) {
        for (int i = 0; i < sk_GENERAL_NAME_num(gens); ++i) {
            const GENERAL_NAME* g = sk_GENERAL_NAME_value(gens, i);
            if (g->type == GEN_DNS) {
                info.dns_names.push_back(utf8_of(g->d.dNSName));
            } else if (g->type == GEN_IPADD) {
                const ASN1_OCTET_STRING* ip = g->d.iPAddress;
                char text[INET6_ADDRSTRLEN] = {};
                const int family = ip->length == 4 ? AF_INET : ip->length == 16 ? AF_INET6 : 0;
                if (family != 0 && inet_ntop(family, ip->data, text, sizeof text) != nullptr)
                    info.ip_addresses.emplace_back(text);
            }
        }
        GENERAL_NAMES_free(gens);
    }
    ERR_clear_error();
    info.der = std::move(der);
    return info;
}

verdict verdict_of(int err) {
    switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return verdict::expired;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return verdict::not_yet_valid;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED:
        return verdict::untrusted;
    default:
        return verdict::bad_chain;
    }
}

}  // namespace

validity valid_for_years(int valid_years, std::optional<std::int64_t> now_s) {
    const std::int64_t now = now_s.value_or(unix_now());
    // 365.25 days a year: the leap days over the period.
    const std::int64_t span = static_cast<std::int64_t>(valid_years) * 31'557'600;
    return {now - skew_seconds, now + span};
}

cert_and_key make_ca(const subject& s, key_type k, int valid_years) {
    return make_ca(s, k, valid_for_years(valid_years));
}

cert_and_key make_ca(const subject& s, key_type k, const validity& v) {
    auto key = make_key(k);
    auto name = make_name(s);
    auto x = build(name.get(), key.get(), nullptr, nullptr, v, profile::ca);
    return {pem_of(x.get()), key_pem(key.get())};
}

cert_and_key issue_ca(const cert_and_key& ca, const subject& s, key_type k, const validity& v) {
    return issue(ca, s, k, v, profile::ca);
}

cert_and_key issue_client(const cert_and_key& ca, const subject& s, key_type k, int valid_years) {
    return issue_client(ca, s, k, valid_for_years(valid_years));
}

cert_and_key issue_client(const cert_and_key& ca, const subject& s, key_type k, const validity& v) {
    return issue(ca, s, k, v, profile::client);
}

cert_and_key issue_server(const cert_and_key& ca, const std::vector<std::string>& names, key_type k,
                          int valid_years) {
    return issue_server(ca, names, k, valid_for_years(valid_years));
}

cert_and_key issue_server(const cert_and_key& ca, const std::vector<std::string>& names, key_type k,
                          const validity& v) {
    subject s;
    s.common_name = names.empty() ? "iothub" : names.front();
    s.organization = "iothub";
    return issue(ca, s, k, v, profile::server, names);
}

std::optional<cert_info> parse_pem(std::string_view pem, std::string* why) {
    auto x = read_pem_cert(pem, why);
    if (!x) return std::nullopt;
    return info_of(x.get(), der_of(x.get()));
}

std::optional<cert_info> parse_der(std::string_view der, std::string* why) {
    auto x = read_der_cert(der, why);
    if (!x) return std::nullopt;
    return info_of(x.get(), std::string(der));
}

std::vector<cert_info> parse_pem_bundle(std::string_view pem) {
    std::vector<cert_info> out;
    auto b = memory_reader(pem);
    for (;;) {
        x509_ptr x(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
        if (!x) break;
        out.push_back(info_of(x.get(), der_of(x.get())));
    }
    ERR_clear_error();  // the end of the bundle reads as "no start line"
    return out;
}

std::string fingerprint(std::string_view der) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(der.data(), der.size(), md, &n, EVP_sha256(), nullptr) != 1) fail("EVP_Digest");
    return to_hex(md, n, false);
}

std::string pem_of(std::string_view der) {
    std::string why;
    auto x = read_der_cert(der, &why);
    if (!x) throw error("pki: " + why);
    return ossl::pem_of(x.get());
}

verification verify_client_chain(const std::vector<std::string>& chain,
                                 std::string_view trusted_pem, std::uint64_t now_ms, int max_depth,
                                 const crl_set* crls) {
    if (chain.empty()) return {verdict::bad_chain, "no certificate"};
    if (static_cast<int>(chain.size()) > max_depth) {
        return {verdict::bad_chain, "certificate chain too long (" + std::to_string(chain.size()) +
                                        " certificates, at most " + std::to_string(max_depth) +
                                        ")"};
    }
    std::string why;
    x509_ptr leaf = read_der_cert(chain.front(), &why);
    if (!leaf) return {verdict::bad_chain, "leaf: " + why};
    x509_stack_ptr untrusted(sk_X509_new_null());
    if (!untrusted) fail("sk_X509_new_null");
    for (std::size_t i = 1; i < chain.size(); ++i) {
        x509_ptr x = read_der_cert(chain[i], &why);
        if (!x) return {verdict::bad_chain, "certificate " + std::to_string(i) + ": " + why};
        if (sk_X509_push(untrusted.get(), x.get()) <= 0) fail("sk_X509_push");
        x.release();
    }
    store_ptr store(X509_STORE_new());
    if (!store) fail("X509_STORE_new");
    {
        auto b = memory_reader(trusted_pem);
        int anchors = 0;
        for (;;) {
            x509_ptr x(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
            if (!x) break;
            if (X509_STORE_add_cert(store.get(), x.get()) != 1) fail("X509_STORE_add_cert");
            ++anchors;
        }
        ERR_clear_error();
        if (anchors == 0) return {verdict::untrusted, "no trusted certificate"};
    }
    store_ctx_ptr ctx(X509_STORE_CTX_new());
    if (!ctx) fail("X509_STORE_CTX_new");
    if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), untrusted.get()) != 1)
        fail("X509_STORE_CTX_init");
    X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
    X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(now_ms / 1000));
    // Any trusted certificate anchors a chain: a hub's CA may itself be an intermediate.
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
    X509_VERIFY_PARAM_set_depth(param, max_depth);
    if (X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT) != 1)
        fail("X509_STORE_CTX_set_purpose");
    const int ok = X509_verify_cert(ctx.get());
    if (ok == 1) {
        ERR_clear_error();
        if (crls == nullptr || crls->empty()) return {verdict::ok, {}};
        // Revocation: each certificate against the next one of the verified chain, which
        // issued it; the anchor, unless self-signed, by its issuer's name alone.
        STACK_OF(X509)* verified = X509_STORE_CTX_get0_chain(ctx.get());
        const int n = sk_X509_num(verified);
        for (int i = 0; i < n; ++i) {
            X509* x = sk_X509_value(verified, i);
            std::vector<std::string> issuer;
            if (i + 1 < n) {
                issuer.push_back(der_of(sk_X509_value(verified, i + 1)));
            } else if ((X509_get_extension_flags(x) & EXFLAG_SS) != 0) {
                break;  // a root: trusted as configured, nothing above it revokes it
            }
            std::string revoked;
            if (crls->revoked(der_of(x), issuer, {}, &revoked)) {
                return {verdict::revoked, revoked + " (at depth " + std::to_string(i) + ")"};
            }
        }
        return {verdict::ok, {}};
    }
    const int err = X509_STORE_CTX_get_error(ctx.get());
    const int depth = X509_STORE_CTX_get_error_depth(ctx.get());
    ERR_clear_error();
    return {verdict_of(err), std::string(X509_verify_cert_error_string(err)) + " (at depth " +
                                 std::to_string(depth) + ")"};
}

bool signed_by(std::string_view cert_pem, std::string_view ca_pem) {
    auto cert = read_pem_cert(cert_pem);
    auto ca = read_pem_cert(ca_pem);
    if (!cert || !ca) return false;
    EVP_PKEY* key = X509_get0_pubkey(ca.get());
    const bool ok = key != nullptr && X509_verify(cert.get(), key) == 1;
    ERR_clear_error();
    return ok;
}

bool key_matches(std::string_view cert_pem, std::string_view key_pem) {
    auto cert = read_pem_cert(cert_pem);
    if (!cert) return false;
    ERR_clear_error();
    auto b = memory_reader(key_pem);
    pkey_ptr key(PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr));
    const bool ok = key && X509_check_private_key(cert.get(), key.get()) == 1;
    ERR_clear_error();
    return ok;
}

}  // namespace iothub::pki
