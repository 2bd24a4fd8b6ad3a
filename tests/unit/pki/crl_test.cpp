// Certificate revocation lists: what a CRL file may hold, which CRLs revoke which
// certificates (the issuer's own, proven by its signature where the issuer is known), and
// revocation inside verify_client_chain.

#include "pki/crl.hpp"

#include <gtest/gtest.h>

#include "pki_test_util.hpp"

#include <chrono>
#include <cstring>

#include "pki/pki.hpp"

namespace iothub::pki {
namespace {

using test::named;
using test::now_ms;
using test::now_s;

cert_info info_of(const cert_and_key& c) {
    auto info = parse_pem(c.cert_pem);
    EXPECT_TRUE(info.has_value());
    return info ? *info : cert_info{};
}

std::string der_of(const cert_and_key& c) {
    return info_of(c).der;
}

// A CRL of `ca` dated now, valid a week, listing `revoked`.
std::string crl_of(const cert_and_key& ca, const std::vector<cert_and_key>& revoked) {
    std::vector<std::string> serials;
    for (const auto& r : revoked) serials.push_back(info_of(r).serial);
    return issue_crl(ca, serials, validity{now_s() - 60, now_s() + 7 * 86400});
}

// Base64 both ways, to take a PEM apart and put it back together.
constexpr char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string unbase64_body(const std::string& pem) {
    std::string out;
    unsigned bits = 0;
    int n = 0;
    const auto body = pem.find('\n');
    for (std::size_t i = body; i < pem.size() && pem[i] != '-'; ++i) {
        const char* at = std::strchr(b64, pem[i]);
        if (pem[i] == '\0' || at == nullptr) continue;
        bits = (bits << 6) | static_cast<unsigned>(at - b64);
        n += 6;
        if (n >= 8) {
            n -= 8;
            out.push_back(static_cast<char>((bits >> n) & 0xff));
        }
    }
    return out;
}

std::string pem_crl(const std::string& der) {
    std::string text;
    for (std::size_t i = 0; i < der.size(); i += 3) {
        unsigned v = static_cast<unsigned char>(der[i]) << 16;
        if (i + 1 < der.size()) v |= static_cast<unsigned char>(der[i + 1]) << 8;
        if (i + 2 < der.size()) v |= static_cast<unsigned char>(der[i + 2]);
        text += b64[(v >> 18) & 63];
        text += b64[(v >> 12) & 63];
        text += i + 1 < der.size() ? b64[(v >> 6) & 63] : '=';
        text += i + 2 < der.size() ? b64[v & 63] : '=';
    }
    std::string out = "-----BEGIN X509 CRL-----\n";
    for (std::size_t i = 0; i < text.size(); i += 64) out += text.substr(i, 64) + "\n";
    return out + "-----END X509 CRL-----\n";
}

std::string error_of(const std::string& pem) {
    try {
        crl_set::from_pem(pem);
    } catch (const error& e) {
        return e.what();
    }
    return "no error";
}

struct crl_test : ::testing::Test {
    static const cert_and_key& root() {
        static const cert_and_key c = make_ca(named("crl root"), key_type::ec_p256, 10);
        return c;
    }
    // Another CA with the same name: its CRLs are not root()'s.
    static const cert_and_key& namesake() {
        static const cert_and_key c = make_ca(named("crl root"), key_type::ec_p256, 10);
        return c;
    }
    static const cert_and_key& other_root() {
        static const cert_and_key c = make_ca(named("other root"), key_type::ec_p256, 10);
        return c;
    }
    cert_and_key leaf(const cert_and_key& ca, const std::string& cn) {
        return issue_client(ca, named(cn), key_type::ec_p256, 1);
    }
};

TEST_F(crl_test, a_bundle_reads_back_with_its_facts) {
    const auto a = leaf(root(), "a");
    const auto b = leaf(root(), "b");
    const auto both = crl_of(root(), {a, b});
    const auto none = crl_of(other_root(), {});
    // Certificates in the file are skipped.
    const auto set = crl_set::from_pem(both + root().cert_pem + none);
    ASSERT_EQ(set.crls().size(), 2u);
    EXPECT_FALSE(set.empty());
    EXPECT_NE(set.crls()[0].issuer.find("CN=crl root"), std::string::npos) << set.crls()[0].issuer;
    EXPECT_EQ(set.crls()[0].revoked, 2u);
    EXPECT_EQ(set.crls()[1].revoked, 0u);
    const std::uint64_t now = now_ms();
    EXPECT_LE(set.crls()[0].this_update_ms, now);
    EXPECT_GT(set.crls()[0].next_update_ms, now + 6 * 86400 * 1000ull);
    EXPECT_TRUE(set.expired(now).empty());
    EXPECT_TRUE(crl_set().empty());
}

TEST_F(crl_test, what_is_not_a_crl_file_is_refused) {
    EXPECT_NE(error_of("").find("no CRL"), std::string::npos) << error_of("");
    EXPECT_NE(error_of("garbage\n").find("no CRL"), std::string::npos);
    EXPECT_NE(error_of(root().cert_pem).find("no CRL"), std::string::npos);
    // A CRL block whose body is not a CRL, and a good CRL followed by a damaged one.
    const std::string good = crl_of(root(), {});
    const std::string broken = "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n";
    EXPECT_NE(error_of(broken).find("CRL 1 does not parse"), std::string::npos) << error_of(broken);
    std::string cut = good.substr(0, good.size() / 2) + "\n-----END X509 CRL-----\n";
    EXPECT_NE(error_of(good + cut).find("CRL 2"), std::string::npos) << error_of(good + cut);
    // A signature algorithm OpenSSL does not know (ecdsa-with-SHA256's OID, changed in both
    // places): it could never be checked.
    std::string der = unbase64_body(good);
    const std::string ecdsa_sha256("\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02", 10);
    int changed = 0;
    for (auto at = der.find(ecdsa_sha256); at != std::string::npos;
         at = der.find(ecdsa_sha256, at + 1)) {
        der[at + ecdsa_sha256.size() - 1] = '\x7f';
        ++changed;
    }
    ASSERT_EQ(changed, 2);
    const auto msg = error_of(pem_crl(der));
    EXPECT_NE(msg.find("unknown signature algorithm"), std::string::npos) << msg;
    EXPECT_NE(msg.find("CN=crl root"), std::string::npos) << msg;
}

TEST_F(crl_test, a_crl_of_the_issuer_revokes_what_it_lists) {
    const auto gone = leaf(root(), "gone");
    const auto kept = leaf(root(), "kept");
    const auto set = crl_set::from_pem(crl_of(root(), {gone}));
    const std::vector<std::string> issuer{der_of(root())};
    std::string why;
    EXPECT_TRUE(set.revoked(der_of(gone), issuer, {}, &why));
    EXPECT_EQ(why.rfind("certificate revoked (serial " + info_of(gone).serial, 0), 0u) << why;
    EXPECT_NE(why.find("CN=crl root"), std::string::npos) << why;
    EXPECT_FALSE(set.revoked(der_of(kept), issuer));
    // Without a known issuer: its name and authority key id.
    EXPECT_TRUE(set.revoked(der_of(gone), {}));
    // Not a certificate: not revoked here (refused elsewhere).
    EXPECT_FALSE(set.revoked("garbage", issuer));
    // An empty set revokes nothing.
    EXPECT_FALSE(crl_set().revoked(der_of(gone), issuer));
}

TEST_F(crl_test, a_crl_another_key_signed_is_not_the_issuers) {
    const auto device = leaf(root(), "device");
    // Same issuer name, same serial, another CA's key.
    const auto set = crl_set::from_pem(crl_of(namesake(), {device}));
    EXPECT_FALSE(set.revoked(der_of(device), {der_of(root())}));
    // The issuer unknown: its authority key id is not the CRL's either.
    EXPECT_FALSE(set.revoked(der_of(device), {}));
    // The namesake's own certificates it does revoke.
    const auto theirs = leaf(namesake(), "theirs");
    const auto set2 = crl_set::from_pem(crl_of(namesake(), {theirs}));
    EXPECT_TRUE(set2.revoked(der_of(theirs), {der_of(root()), der_of(namesake())}));
    // A CRL of another name never applies.
    const auto set3 = crl_set::from_pem(crl_of(other_root(), {device}));
    EXPECT_FALSE(set3.revoked(der_of(device), {der_of(root())}));
    EXPECT_FALSE(set3.revoked(der_of(device), {}));
}

TEST_F(crl_test, certificates_the_client_sent_count_only_when_they_signed_it) {
    const auto device = leaf(root(), "device");
    const auto set = crl_set::from_pem(crl_of(root(), {device}));
    // The real issuer in the sent chain: the CRL's signature is checked with it.
    EXPECT_TRUE(set.revoked(der_of(device), {}, {der_of(root())}));
    // A look-alike issuer (same name, another key) does not hide the revocation: it did not
    // sign the certificate, so the name and key id decide.
    EXPECT_TRUE(set.revoked(der_of(device), {}, {der_of(namesake())}));
    // And a look-alike's CRL is not made the issuer's by sending the look-alike.
    const auto fake = crl_set::from_pem(crl_of(namesake(), {device}));
    EXPECT_FALSE(fake.revoked(der_of(device), {}, {der_of(namesake())}));
}

TEST_F(crl_test, an_expired_crl_still_revokes) {
    const auto device = leaf(root(), "device");
    const auto stale = issue_crl(root(), {info_of(device).serial},
                                 validity{now_s() - 30 * 86400, now_s() - 86400});
    const auto set = crl_set::from_pem(stale);
    ASSERT_EQ(set.expired(now_ms()).size(), 1u);
    EXPECT_TRUE(set.expired(now_ms() - 2 * 86400 * 1000ull).empty());
    EXPECT_TRUE(set.revoked(der_of(device), {der_of(root())}));
}

TEST_F(crl_test, several_crls_each_for_its_issuer) {
    const auto a = leaf(root(), "a");
    const auto b = leaf(other_root(), "b");
    const auto set = crl_set::from_pem(crl_of(root(), {a}) + crl_of(other_root(), {b}));
    EXPECT_TRUE(set.revoked(der_of(a), {der_of(root())}));
    EXPECT_TRUE(set.revoked(der_of(b), {der_of(other_root())}));
    EXPECT_FALSE(set.revoked(der_of(leaf(root(), "c")), {der_of(root())}));
}

TEST_F(crl_test, verify_client_chain_refuses_a_revoked_leaf_or_intermediate) {
    const auto inter = issue_ca(root(), named("crl vendor"), key_type::ec_p256, valid_for_years(2));
    const auto device = leaf(inter, "device");
    const auto other = leaf(inter, "other");
    const std::vector<std::string> chain{der_of(device), der_of(inter)};

    const auto none = crl_set::from_pem(crl_of(root(), {}) + crl_of(inter, {}));
    EXPECT_EQ(verify_client_chain(chain, root().cert_pem, now_ms(), 8, &none).result, verdict::ok);
    EXPECT_EQ(verify_client_chain(chain, root().cert_pem, now_ms(), 8, nullptr).result,
              verdict::ok);

    // The leaf, by the intermediate's CRL.
    const auto leaf_gone = crl_set::from_pem(crl_of(inter, {device}));
    auto v = verify_client_chain(chain, root().cert_pem, now_ms(), 8, &leaf_gone);
    EXPECT_EQ(v.result, verdict::revoked);
    EXPECT_NE(v.detail.find("certificate revoked"), std::string::npos) << v.detail;
    EXPECT_NE(v.detail.find("depth 0"), std::string::npos) << v.detail;
    v = verify_client_chain({der_of(other), der_of(inter)}, root().cert_pem, now_ms(), 8,
                            &leaf_gone);
    EXPECT_EQ(v.result, verdict::ok) << v.detail;

    // The intermediate, by the root's CRL: every certificate under it.
    const auto inter_gone = crl_set::from_pem(crl_of(root(), {inter}));
    v = verify_client_chain({der_of(other), der_of(inter)}, root().cert_pem, now_ms(), 8,
                            &inter_gone);
    EXPECT_EQ(v.result, verdict::revoked);
    EXPECT_NE(v.detail.find("depth 1"), std::string::npos) << v.detail;
    // Also when the intermediate is the trust anchor (a hub whose CA is an intermediate).
    v = verify_client_chain({der_of(other)}, inter.cert_pem, now_ms(), 8, &inter_gone);
    EXPECT_EQ(v.result, verdict::revoked) << v.detail;

    // A namesake's CRL listing the intermediate is not the root's.
    const auto forged = crl_set::from_pem(crl_of(namesake(), {inter}));
    v = verify_client_chain(chain, root().cert_pem, now_ms(), 8, &forged);
    EXPECT_EQ(v.result, verdict::ok) << v.detail;

    // Other failures come first: an untrusted chain is untrusted, revoked or not.
    EXPECT_EQ(verify_client_chain(chain, other_root().cert_pem, now_ms(), 8, &leaf_gone).result,
              verdict::untrusted);
}

TEST_F(crl_test, a_crl_signed_with_a_mismatched_key_revokes_nothing) {
    cert_and_key mixed{root().cert_pem, other_root().key_pem};
    const auto a = leaf(root(), "a");
    // Signed with the wrong key: it parses, but is not root()'s.
    const auto set = crl_set::from_pem(
        issue_crl(mixed, {info_of(a).serial}, validity{now_s(), now_s() + 86400}));
    EXPECT_FALSE(set.revoked(der_of(a), {der_of(root())}));
    EXPECT_THROW(issue_crl({"junk", root().key_pem}, {}, validity{}), error);
}

}  // namespace
}  // namespace iothub::pki
