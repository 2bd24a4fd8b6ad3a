// Certificates: issue and verify round trips, every refusal verify_client_chain knows, and
// what parse_* reads back.

#include "pki/pki.hpp"

#include <gtest/gtest.h>

#include "pki_test_util.hpp"

#include <chrono>

namespace iothub::pki {
namespace {

using test::named;
using test::now_ms;
using test::now_s;

std::string der_of(const std::string& pem) {
    auto info = parse_pem(pem);
    EXPECT_TRUE(info.has_value());
    return info ? info->der : std::string();
}

// One CA (EC P-256: fast) shared by the tests of this file.
struct pki_test : ::testing::Test {
    static const cert_and_key& ca() {
        static const cert_and_key c = make_ca(named("test root"), key_type::ec_p256, 10);
        return c;
    }
    static const cert_and_key& other_ca() {
        static const cert_and_key c = make_ca(named("other root"), key_type::ec_p256, 10);
        return c;
    }
};

TEST_F(pki_test, ca_reads_back_as_a_ca) {
    const cert_and_key c = make_ca(named("hub CA"), key_type::ec_p384, 30);
    const auto info = parse_pem(c.cert_pem);
    ASSERT_TRUE(info);
    EXPECT_TRUE(info->is_ca);
    EXPECT_EQ(info->common_name, "hub CA");
    EXPECT_NE(info->subject.find("CN=hub CA"), std::string::npos);
    EXPECT_EQ(info->subject_hash, info->issuer_hash);  // self-signed
    EXPECT_NE(c.key_pem.find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
    const auto now = now_ms();
    EXPECT_LE(info->not_before_ms, now);
    EXPECT_GE(info->not_before_ms, now - 2 * 3600 * 1000);
    const std::uint64_t thirty_years_ms = 30ull * 365 * 24 * 3600 * 1000;
    EXPECT_GE(info->not_after_ms, now + thirty_years_ms);
    EXPECT_TRUE(key_matches(c.cert_pem, c.key_pem));
    EXPECT_TRUE(signed_by(c.cert_pem, c.cert_pem));
}

TEST_F(pki_test, serials_are_random_positive_and_at_most_159_bits) {
    const auto a = parse_pem(make_ca(named("a"), key_type::ec_p256, 1).cert_pem);
    const auto b = parse_pem(make_ca(named("a"), key_type::ec_p256, 1).cert_pem);
    ASSERT_TRUE(a && b);
    EXPECT_NE(a->serial, b->serial);
    for (const auto& s : {a->serial, b->serial}) {
        ASSERT_FALSE(s.empty());
        EXPECT_LE(s.size(), 40u);
        if (s.size() == 40u) {
            EXPECT_LT(s[0], '8') << s;  // the top bit of 160 is clear
        }
    }
}

TEST_F(pki_test, client_certificate_round_trip_rsa_and_ec) {
    const cert_and_key rsa = issue_client(ca(), named("device-1"), key_type::rsa_2048, 10);
    EXPECT_EQ(rsa.key_pem.rfind("-----BEGIN RSA PRIVATE KEY-----", 0), 0u) << rsa.key_pem;
    const cert_and_key ec = issue_client(ca(), named("device-2"), key_type::ec_p256, 10);
    EXPECT_EQ(ec.key_pem.rfind("-----BEGIN PRIVATE KEY-----", 0), 0u);
    for (const auto* c : {&rsa, &ec}) {
        const auto info = parse_pem(c->cert_pem);
        ASSERT_TRUE(info);
        EXPECT_FALSE(info->is_ca);
        EXPECT_EQ(info->issuer_hash, parse_pem(ca().cert_pem)->subject_hash);
        EXPECT_TRUE(key_matches(c->cert_pem, c->key_pem));
        EXPECT_TRUE(signed_by(c->cert_pem, ca().cert_pem));
        EXPECT_FALSE(signed_by(c->cert_pem, other_ca().cert_pem));
        const auto v = verify_client_chain({info->der}, ca().cert_pem, now_ms());
        EXPECT_EQ(v.result, verdict::ok) << v.detail;
    }
    EXPECT_EQ(parse_pem(rsa.cert_pem)->common_name, "device-1");
    EXPECT_FALSE(key_matches(rsa.cert_pem, ec.key_pem));
    EXPECT_FALSE(key_matches(rsa.cert_pem, "not a key"));
    EXPECT_FALSE(signed_by("not a certificate", ca().cert_pem));
    // Ten years from now, give or take the skew hour.
    const auto info = parse_pem(rsa.cert_pem);
    EXPECT_GE(info->not_after_ms, now_ms() + 10ull * 365 * 24 * 3600 * 1000);
    EXPECT_LT(info->not_after_ms, now_ms() + 10ull * 366 * 24 * 3600 * 1000);
}

TEST_F(pki_test, wrong_ca_is_untrusted) {
    const auto c = issue_client(ca(), named("d"), key_type::ec_p256, 1);
    const auto v = verify_client_chain({der_of(c.cert_pem)}, other_ca().cert_pem, now_ms());
    EXPECT_EQ(v.result, verdict::untrusted) << v.detail;
    EXPECT_FALSE(v.detail.empty());
    // A self-signed certificate presented as a client certificate.
    const auto self = make_ca(named("self"), key_type::ec_p256, 1);
    EXPECT_EQ(verify_client_chain({der_of(self.cert_pem)}, ca().cert_pem, now_ms()).result,
              verdict::untrusted);
    // No trusted certificate at all.
    EXPECT_EQ(verify_client_chain({der_of(c.cert_pem)}, "", now_ms()).result, verdict::untrusted);
}

TEST_F(pki_test, expired_and_not_yet_valid) {
    const std::int64_t now = now_s();
    const auto old =
        issue_client(ca(), named("old"), key_type::ec_p256, validity{now - 3 * 86400, now - 86400});
    const auto future = issue_client(ca(), named("future"), key_type::ec_p256,
                                     validity{now + 86400, now + 3 * 86400});
    EXPECT_EQ(verify_client_chain({der_of(old.cert_pem)}, ca().cert_pem, now_ms()).result,
              verdict::expired);
    EXPECT_EQ(verify_client_chain({der_of(future.cert_pem)}, ca().cert_pem, now_ms()).result,
              verdict::not_yet_valid);
    // The time is the caller's: the same certificate at other moments.
    const auto good = issue_client(ca(), named("good"), key_type::ec_p256, 1);
    const auto der = der_of(good.cert_pem);
    EXPECT_EQ(
        verify_client_chain({der}, ca().cert_pem, now_ms() + 3ull * 365 * 86400 * 1000).result,
        verdict::expired);
    EXPECT_EQ(verify_client_chain({der}, ca().cert_pem, now_ms() - 86400ull * 1000).result,
              verdict::not_yet_valid);
    const auto info = parse_pem(old.cert_pem);
    EXPECT_EQ(info->not_before_ms, static_cast<std::uint64_t>(now - 3 * 86400) * 1000);
    EXPECT_EQ(info->not_after_ms, static_cast<std::uint64_t>(now - 86400) * 1000);
    // An expired CA expires what it signed.
    const auto old_ca =
        make_ca(named("old ca"), key_type::ec_p256, validity{now - 3 * 86400, now - 86400});
    const auto under_old = issue_client(old_ca, named("x"), key_type::ec_p256, 1);
    EXPECT_EQ(verify_client_chain({der_of(under_old.cert_pem)}, old_ca.cert_pem, now_ms()).result,
              verdict::expired);
}

TEST_F(pki_test, intermediate_chains) {
    const auto inter = issue_ca(ca(), named("intermediate"), key_type::ec_p256, valid_for_years(5));
    EXPECT_TRUE(parse_pem(inter.cert_pem)->is_ca);
    EXPECT_TRUE(signed_by(inter.cert_pem, ca().cert_pem));
    const auto leaf = issue_client(inter, named("sensor-42"), key_type::ec_p256, 1);
    const std::string leaf_der = der_of(leaf.cert_pem);
    const std::string inter_der = der_of(inter.cert_pem);
    // The full chain verifies against the root.
    auto v = verify_client_chain({leaf_der, inter_der}, ca().cert_pem, now_ms());
    EXPECT_EQ(v.result, verdict::ok) << v.detail;
    // With the root sent too.
    v = verify_client_chain({leaf_der, inter_der, der_of(ca().cert_pem)}, ca().cert_pem, now_ms());
    EXPECT_EQ(v.result, verdict::ok) << v.detail;
    // The leaf alone does not: the intermediate is missing.
    EXPECT_EQ(verify_client_chain({leaf_der}, ca().cert_pem, now_ms()).result, verdict::untrusted);
    // An intermediate trusted on its own anchors the chain.
    v = verify_client_chain({leaf_der}, inter.cert_pem, now_ms());
    EXPECT_EQ(v.result, verdict::ok) << v.detail;
    // Several trusted certificates in one bundle.
    v = verify_client_chain({leaf_der, inter_der}, other_ca().cert_pem + ca().cert_pem, now_ms());
    EXPECT_EQ(v.result, verdict::ok) << v.detail;
    // A client certificate cannot sign others.
    const auto fake = issue_client(leaf, named("forged"), key_type::ec_p256, 1);
    v = verify_client_chain({der_of(fake.cert_pem), leaf_der, inter_der}, ca().cert_pem, now_ms());
    EXPECT_NE(v.result, verdict::ok);
}

TEST_F(pki_test, chain_too_long_and_malformed) {
    cert_and_key parent = ca();
    std::vector<std::string> intermediates;
    for (int i = 0; i < 4; ++i) {
        parent = issue_ca(parent, named("level " + std::to_string(i)), key_type::ec_p256,
                          valid_for_years(1));
        intermediates.insert(intermediates.begin(), der_of(parent.cert_pem));
    }
    const auto leaf = issue_client(parent, named("deep"), key_type::ec_p256, 1);
    std::vector<std::string> chain{der_of(leaf.cert_pem)};
    chain.insert(chain.end(), intermediates.begin(), intermediates.end());
    EXPECT_EQ(verify_client_chain(chain, ca().cert_pem, now_ms()).result, verdict::ok);
    const auto v = verify_client_chain(chain, ca().cert_pem, now_ms(), 3);
    EXPECT_EQ(v.result, verdict::bad_chain);
    EXPECT_NE(v.detail.find("too long"), std::string::npos) << v.detail;

    EXPECT_EQ(verify_client_chain({}, ca().cert_pem, now_ms()).result, verdict::bad_chain);
    EXPECT_EQ(verify_client_chain({"garbage"}, ca().cert_pem, now_ms()).result, verdict::bad_chain);
    EXPECT_EQ(verify_client_chain({chain[0], "garbage"}, ca().cert_pem, now_ms()).result,
              verdict::bad_chain);
}

TEST_F(pki_test, a_server_certificate_is_no_client_certificate) {
    const auto server = issue_server(ca(), {"localhost"}, key_type::ec_p256, 1);
    const auto v = verify_client_chain({der_of(server.cert_pem)}, ca().cert_pem, now_ms());
    EXPECT_EQ(v.result, verdict::bad_chain) << v.detail;
}

TEST_F(pki_test, server_certificate_names) {
    const auto server =
        issue_server(ca(), {"iot.example.net", "127.0.0.1", "::1"}, key_type::ec_p256, 2);
    const auto info = parse_pem(server.cert_pem);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->common_name, "iot.example.net");
    EXPECT_EQ(info->dns_names, std::vector<std::string>{"iot.example.net"});
    EXPECT_EQ(info->ip_addresses, (std::vector<std::string>{"127.0.0.1", "::1"}));
    EXPECT_TRUE(key_matches(server.cert_pem, server.key_pem));
}

TEST_F(pki_test, empty_and_long_common_names) {
    const auto empty = issue_client(ca(), subject{}, key_type::ec_p256, 1);
    const auto info = parse_pem(empty.cert_pem);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->common_name, "");
    EXPECT_EQ(verify_client_chain({info->der}, ca().cert_pem, now_ms()).result, verdict::ok);

    // Device names reach 255 characters, past RFC 5280's 64 for a common name.
    const std::string long_name(255, 'n');
    const auto long_cert = issue_client(ca(), named(long_name), key_type::ec_p256, 1);
    EXPECT_EQ(parse_pem(long_cert.cert_pem)->common_name, long_name);
    const std::string accented = "capteur-\xc3\xa9t\xc3\xa9";
    EXPECT_EQ(
        parse_pem(issue_client(ca(), named(accented), key_type::ec_p256, 1).cert_pem)->common_name,
        accented);
}

TEST_F(pki_test, fingerprints) {
    // SHA-256("abc"), FIPS 180-2 appendix B.1.
    EXPECT_EQ(fingerprint("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const auto info = parse_pem(ca().cert_pem);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->fingerprint, fingerprint(info->der));
    EXPECT_EQ(info->fingerprint.size(), 64u);
    EXPECT_EQ(parse_der(info->der)->fingerprint, info->fingerprint);
}

TEST_F(pki_test, parsing_what_is_not_a_certificate) {
    std::string why;
    EXPECT_FALSE(parse_pem("hello", &why));
    EXPECT_FALSE(why.empty());
    why.clear();
    EXPECT_FALSE(parse_der("\x30\x03\x02\x01\x01", &why));
    EXPECT_FALSE(why.empty());
    const auto der = der_of(ca().cert_pem);
    EXPECT_FALSE(parse_der(der + "x", &why));  // trailing bytes
    EXPECT_TRUE(parse_pem_bundle("nothing here").empty());
    EXPECT_THROW(pem_of("nope"), error);
}

TEST_F(pki_test, bundles_and_pem_round_trip) {
    const auto bundle = parse_pem_bundle(ca().cert_pem + "\n" + other_ca().cert_pem);
    ASSERT_EQ(bundle.size(), 2u);
    EXPECT_EQ(bundle[0].common_name, "test root");
    EXPECT_EQ(bundle[1].common_name, "other root");
    const auto der = der_of(ca().cert_pem);
    EXPECT_EQ(pem_of(der), ca().cert_pem);
}

TEST_F(pki_test, issuing_with_a_mismatched_ca_key_fails) {
    cert_and_key broken{ca().cert_pem, other_ca().key_pem};
    EXPECT_THROW(issue_client(broken, named("x"), key_type::ec_p256, 1), error);
    EXPECT_THROW(issue_client(cert_and_key{"x", "y"}, named("x"), key_type::ec_p256, 1), error);
    EXPECT_THROW(make_ca(named("x"), key_type::ec_p256, validity{10, 5}), error);
}

}  // namespace
}  // namespace iothub::pki
