// Certificate revocation lists on OpenSSL 3's X509_CRL API (see crl.hpp).
//
// The set keeps each CRL as DER with what a lookup needs (issuer name hash, authority key id,
// the revoked serials), in plain containers: workers read it concurrently and no OpenSSL
// object is shared between threads. A CRL is decoded again only when it lists the serial
// asked about, to compare names exactly and check its signature.

#include "pki/crl.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <optional>
#include <unordered_map>

#include "pki/ossl.hpp"

namespace iothub::pki {

using namespace ossl;

struct crl_set::entry {
    std::string der;
    std::uint32_t issuer_hash = 0;
    std::string authority_key_id;  // empty: the CRL names none
    // Serial (as serial_of) -> the reason given, if any ("keyCompromise").
    std::unordered_map<std::string, std::string> serials;
    std::string issuer;  // for messages
};

namespace {

// A serial number as cert_info::serial writes it (upper-case hex of its magnitude), with a
// leading '-' for a (non-conforming) negative one, so it is never mistaken for its opposite.
std::string serial_of(const ASN1_INTEGER* serial) {
    if (serial == nullptr) return {};
    bn_ptr bn(ASN1_INTEGER_to_BN(serial, nullptr));
    if (!bn) {
        ERR_clear_error();
        return {};
    }
    std::string bytes(static_cast<std::size_t>(BN_num_bytes(bn.get())), '\0');
    BN_bn2bin(bn.get(), reinterpret_cast<unsigned char*>(bytes.data()));
    std::string hex =
        to_hex(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), true);
    return BN_is_negative(bn.get()) ? "-" + hex : hex;
}

std::string key_id_of(const AUTHORITY_KEYID* akid) {
    if (akid == nullptr || akid->keyid == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(akid->keyid)),
                       static_cast<std::size_t>(ASN1_STRING_length(akid->keyid)));
}

std::string authority_key_id(X509* cert) {
    const ASN1_OCTET_STRING* id = X509_get0_authority_key_id(cert);
    if (id == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(id)),
                       static_cast<std::size_t>(ASN1_STRING_length(id)));
}

// RFC 5280 5.3.1 CRLReason; empty for unspecified or unknown.
std::string reason_text(long code) {
    switch (code) {
    case 1:
        return "keyCompromise";
    case 2:
        return "cACompromise";
    case 3:
        return "affiliationChanged";
    case 4:
        return "superseded";
    case 5:
        return "cessationOfOperation";
    case 6:
        return "certificateHold";
    case 9:
        return "privilegeWithdrawn";
    case 10:
        return "aACompromise";
    default:
        return {};
    }
}
constexpr long remove_from_crl = 8;

crl_ptr read_der_crl(std::string_view der) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    crl_ptr crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
    ERR_clear_error();
    return crl;
}

std::string der_of_crl(X509_CRL* crl) {
    unsigned char* buf = nullptr;
    const int n = i2d_X509_CRL(crl, &buf);
    if (n <= 0) fail("i2d_X509_CRL");
    std::string out(reinterpret_cast<char*>(buf), static_cast<std::size_t>(n));
    OPENSSL_free(buf);
    return out;
}

std::string nid_text(const ASN1_OBJECT* obj) {
    char buf[128];
    OBJ_obj2txt(buf, sizeof buf, obj, 0);
    return buf;
}

// Throws pki::error "CRL <n> (<issuer>): <why>" for what a CRL of the set may not be.
void check_usable(X509_CRL* crl, const std::string& which) {
    const int sig_nid = X509_CRL_get_signature_nid(crl);
    int md_nid = NID_undef;
    int pkey_nid = NID_undef;
    if (sig_nid == NID_undef || OBJ_find_sigid_algs(sig_nid, &md_nid, &pkey_nid) != 1) {
        const X509_ALGOR* alg = nullptr;
        X509_CRL_get0_signature(crl, nullptr, &alg);
        const ASN1_OBJECT* obj = nullptr;
        if (alg != nullptr) X509_ALGOR_get0(&obj, nullptr, nullptr, alg);
        throw error("pki: " + which + ": unknown signature algorithm " +
                    (obj != nullptr ? nid_text(obj) : std::string("?")) +
                    ": its signature could never be checked");
    }
    for (int i = 0; i < X509_CRL_get_ext_count(crl); ++i) {
        X509_EXTENSION* ext = X509_CRL_get_ext(crl, i);
        const int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
        if (nid == NID_delta_crl)
            throw error("pki: " + which + ": a delta CRL; give the complete CRL instead");
        if (X509_EXTENSION_get_critical(ext) == 1 && nid != NID_issuing_distribution_point &&
            nid != NID_authority_key_identifier && nid != NID_crl_number) {
            throw error("pki: " + which + ": critical extension " +
                        nid_text(X509_EXTENSION_get_object(ext)) + " is not supported");
        }
    }
    int crit = 0;
    auto* idp = static_cast<ISSUING_DIST_POINT*>(
        X509_CRL_get_ext_d2i(crl, NID_issuing_distribution_point, &crit, nullptr));
    const bool indirect = idp != nullptr && idp->indirectCRL != 0;
    ISSUING_DIST_POINT_free(idp);
    ERR_clear_error();
    if (crit == -2) throw error("pki: " + which + ": repeated issuing distribution point");
    if (indirect)
        throw error("pki: " + which +
                    ": an indirect CRL (entries of other issuers) is not supported");
}

// A certificate of `candidates` that issued `cert`: names and key ids match, it may sign
// certificates, and its key verifies `cert`'s signature.
void add_signers(X509* cert, const std::vector<std::string>& candidates,
                 std::vector<x509_ptr>& out) {
    for (const auto& der : candidates) {
        x509_ptr x = read_der_cert(der);
        if (!x) continue;
        EVP_PKEY* key = X509_get0_pubkey(x.get());
        if (X509_check_issued(x.get(), cert) == X509_V_OK && key != nullptr &&
            X509_verify(cert, key) == 1) {
            out.push_back(std::move(x));
        }
        ERR_clear_error();
    }
}

// Whether `issuer` signed `crl` (and may: no key usage, or one with cRLSign).
bool signed_crl(X509* issuer, X509_CRL* crl) {
    if ((X509_get_key_usage(issuer) & KU_CRL_SIGN) == 0) return false;
    EVP_PKEY* key = X509_get0_pubkey(issuer);
    const bool ok = key != nullptr && X509_CRL_verify(crl, key) == 1;
    ERR_clear_error();
    return ok;
}

}  // namespace

crl_set::crl_set() : entries_(std::make_shared<const std::vector<entry>>()) {}

crl_set crl_set::from_pem(std::string_view pem) {
    auto entries = std::make_shared<std::vector<entry>>();
    std::vector<crl_info> infos;
    ERR_clear_error();
    auto b = memory_reader(pem);
    for (;;) {
        crl_ptr crl(PEM_read_bio_X509_CRL(b.get(), nullptr, nullptr, nullptr));
        const std::string which = "CRL " + std::to_string(entries->size() + 1);
        if (!crl) {
            const unsigned long e = ERR_peek_last_error();
            if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
                ERR_clear_error();  // the end of the text
                break;
            }
            fail(which + " does not parse");
        }
        const X509_NAME* issuer = X509_CRL_get_issuer(crl.get());
        entry en;
        crl_info info;
        info.issuer = name_text(issuer);
        check_usable(crl.get(), which + " (" + info.issuer + ")");
        en.der = der_of_crl(crl.get());
        en.issuer_hash = name_hash(issuer);
        en.issuer = info.issuer;
        auto* akid = static_cast<AUTHORITY_KEYID*>(
            X509_CRL_get_ext_d2i(crl.get(), NID_authority_key_identifier, nullptr, nullptr));
        en.authority_key_id = key_id_of(akid);
        AUTHORITY_KEYID_free(akid);
        ERR_clear_error();
        STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());
        for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
            X509_REVOKED* r = sk_X509_REVOKED_value(revoked, i);
            for (int k = 0; k < X509_REVOKED_get_ext_count(r); ++k) {
                X509_EXTENSION* ext = X509_REVOKED_get_ext(r, k);
                const int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
                if (X509_EXTENSION_get_critical(ext) == 1 && nid != NID_crl_reason &&
                    nid != NID_invalidity_date && nid != NID_hold_instruction_code) {
                    throw error("pki: " + which + " (" + info.issuer +
                                "): critical entry extension " +
                                nid_text(X509_EXTENSION_get_object(ext)) + " is not supported");
                }
            }
            long code = -1;
            if (auto* reason = static_cast<ASN1_ENUMERATED*>(
                    X509_REVOKED_get_ext_d2i(r, NID_crl_reason, nullptr, nullptr))) {
                code = ASN1_ENUMERATED_get(reason);
                ASN1_ENUMERATED_free(reason);
            }
            ERR_clear_error();
            if (code == remove_from_crl) continue;  // a delta CRL's "no longer revoked"
            const std::string serial = serial_of(X509_REVOKED_get0_serialNumber(r));
            if (serial.empty()) continue;
            en.serials.emplace(serial, reason_text(code));
        }
        info.revoked = en.serials.size();
        info.this_update_ms = to_unix_ms(X509_CRL_get0_lastUpdate(crl.get()));
        info.next_update_ms = to_unix_ms(X509_CRL_get0_nextUpdate(crl.get()));
        entries->push_back(std::move(en));
        infos.push_back(std::move(info));
    }
    if (entries->empty()) throw error("pki: no CRL (\"-----BEGIN X509 CRL-----\") in the text");
    crl_set out;
    out.entries_ = std::move(entries);
    out.infos_ = std::move(infos);
    return out;
}

bool crl_set::empty() const noexcept {
    return entries_->empty();
}

const std::vector<crl_info>& crl_set::crls() const noexcept {
    return infos_;
}

std::vector<crl_info> crl_set::expired(std::uint64_t now_ms) const {
    std::vector<crl_info> out;
    for (const auto& i : infos_) {
        if (i.next_update_ms != 0 && i.next_update_ms < now_ms) out.push_back(i);
    }
    return out;
}

bool crl_set::revoked(std::string_view cert_der, const std::vector<std::string>& issuers_der,
                      const std::vector<std::string>& untrusted_der, std::string* why) const {
    if (entries_->empty()) return false;
    x509_ptr cert = read_der_cert(cert_der);
    if (!cert) return false;
    const X509_NAME* issuer = X509_get_issuer_name(cert.get());
    const std::uint32_t hash = name_hash(issuer);
    const std::string serial = serial_of(X509_get0_serialNumber(cert.get()));
    // The certificates that issued it, found once a CRL lists its serial.
    std::optional<std::vector<x509_ptr>> signers;
    for (const auto& e : *entries_) {
        if (e.issuer_hash != hash) continue;
        const auto listed = e.serials.find(serial);
        if (listed == e.serials.end()) continue;
        crl_ptr crl = read_der_crl(e.der);
        if (!crl || X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), issuer) != 0) continue;
        if (!signers) {
            signers.emplace();
            add_signers(cert.get(), issuers_der, *signers);
            add_signers(cert.get(), untrusted_der, *signers);
        }
        bool applies = false;
        if (!signers->empty()) {
            // The issuer is known: the CRL is its own only when its key signed it.
            applies = std::any_of(signers->begin(), signers->end(), [&](const x509_ptr& s) {
                return signed_crl(s.get(), crl.get());
            });
        } else {
            const std::string cert_akid = authority_key_id(cert.get());
            applies =
                e.authority_key_id.empty() || cert_akid.empty() || e.authority_key_id == cert_akid;
        }
        ERR_clear_error();
        if (!applies) continue;
        if (why != nullptr) {
            *why = "certificate revoked (serial " + serial +
                   (listed->second.empty() ? std::string() : ", " + listed->second) + ", CRL of " +
                   e.issuer + ")";
        }
        return true;
    }
    ERR_clear_error();
    return false;
}

std::string issue_crl(const cert_and_key& ca, const std::vector<std::string>& serials,
                      const validity& v) {
    std::string why;
    x509_ptr issuer = read_pem_cert(ca.cert_pem, &why);
    if (!issuer) throw error("pki: the CA certificate: " + why);
    pkey_ptr key = read_private_key(ca.key_pem);
    crl_ptr crl(X509_CRL_new());
    if (!crl) fail("X509_CRL_new");
    if (X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1) fail("X509_CRL_set_version");
    if (X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer.get())) != 1)
        fail("X509_CRL_set_issuer_name");
    using time_ptr = std::unique_ptr<ASN1_TIME, deleter<ASN1_TIME_free>>;
    time_ptr this_update(ASN1_TIME_set(nullptr, static_cast<time_t>(v.not_before_s)));
    time_ptr next_update(ASN1_TIME_set(nullptr, static_cast<time_t>(v.not_after_s)));
    if (!this_update || !next_update) fail("ASN1_TIME_set");
    if (X509_CRL_set1_lastUpdate(crl.get(), this_update.get()) != 1 ||
        X509_CRL_set1_nextUpdate(crl.get(), next_update.get()) != 1)
        fail("setting the CRL's dates");
    for (const auto& s : serials) {
        BIGNUM* raw = nullptr;
        if (BN_hex2bn(&raw, s.c_str()) == 0) fail("serial " + s);
        bn_ptr bn(raw);
        asn1_integer_ptr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
        revoked_ptr r(X509_REVOKED_new());
        if (!serial || !r || X509_REVOKED_set_serialNumber(r.get(), serial.get()) != 1 ||
            X509_REVOKED_set_revocationDate(r.get(), this_update.get()) != 1)
            fail("a revoked entry");
        if (X509_CRL_add0_revoked(crl.get(), r.get()) != 1) fail("X509_CRL_add0_revoked");
        r.release();
    }
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer.get(), nullptr, nullptr, crl.get(), 0);
    extension_ptr akid(
        X509V3_EXT_nconf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
    if (!akid || X509_CRL_add_ext(crl.get(), akid.get(), -1) != 1) fail("authorityKeyIdentifier");
    asn1_integer_ptr number(ASN1_INTEGER_new());
    if (!number || ASN1_INTEGER_set(number.get(), 1) != 1 ||
        X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0) != 1)
        fail("cRLNumber");
    if (X509_CRL_sort(crl.get()) != 1) fail("X509_CRL_sort");
    if (X509_CRL_sign(crl.get(), key.get(), digest_for(key.get())) <= 0) fail("X509_CRL_sign");
    bio_ptr b(BIO_new(BIO_s_mem()));
    if (!b || PEM_write_bio_X509_CRL(b.get(), crl.get()) != 1) fail("PEM_write_bio_X509_CRL");
    return contents(b.get());
}

}  // namespace iothub::pki
