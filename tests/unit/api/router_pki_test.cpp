// The certificate operations of the API (wire format of @scaleway/sdk-iot 1.2.0:
// CreateDevice's certificate, GetHubCA, SetHubCA, GetDeviceCertificate,
// SetDeviceCertificate, RenewDeviceCertificate) and the server CA extension.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api/api_fixture.hpp"
#include "api/router.hpp"
#include "hub/model.hpp"
#include "pki/pki.hpp"

namespace iothub::api {
namespace {

using nlohmann::json;
using testing::registry_env;

const std::string base = "/iot/v1/regions/fr-par/";

pki::subject named(std::string cn) {
    pki::subject s;
    s.common_name = std::move(cn);
    return s;
}

class RouterPkiTest : public ::testing::Test {
protected:
    explicit RouterPkiTest(bool rsa = false, std::string server_ca = {}) : env(rsa) {
        api_options o;
        o.server_ca_pem = std::move(server_ca);
        r = std::make_unique<router>(env.reg, *env.db, o);
    }

    response call(const std::string& method, const std::string& path, const std::string& body = {},
                  std::optional<std::string> token = std::nullopt, bool anonymous = false) {
        request req;
        req.method = method;
        req.target = path.front() == '/' ? path : base + path;
        if (!anonymous) req.token = token ? token : std::optional<std::string>(env.key.secret_key);
        req.body = body;
        return r->handle(req);
    }
    json ok(const std::string& method, const std::string& path, const json& body = nullptr) {
        const auto res = call(method, path, body.is_null() ? "" : body.dump());
        EXPECT_EQ(res.status, 200u) << method << " " << path << ": " << res.body;
        return json::parse(res.body);
    }
    json fails(unsigned status, const std::string& method, const std::string& path,
               const json& body = nullptr) {
        const auto res = call(method, path, body.is_null() ? "" : body.dump());
        EXPECT_EQ(res.status, status) << method << " " << path << ": " << res.body;
        return json::parse(res.body);
    }
    std::string new_hub() { return ok("POST", "hubs", json{{"name", "h"}}).at("id"); }
    json new_device(const std::string& hub_id, const std::string& name = "") {
        json body{{"hub_id", hub_id}};
        if (!name.empty()) body["name"] = name;
        return ok("POST", "devices", body);
    }

    registry_env env;
    std::unique_ptr<router> r;
};

bool names_argument(const json& body, const std::string& arg) {
    if (body.value("type", "") != "invalid_arguments") return false;
    for (const auto& d : body.at("details")) {
        if (d.at("argument_name") == arg) return true;
    }
    return false;
}

TEST_F(RouterPkiTest, CreateDeviceReturnsACertificateFromTheHubCa) {
    const std::string hub = new_hub();
    const json ca = ok("GET", "hubs/" + hub + "/ca");
    ASSERT_EQ(ca.size(), 1u);
    const std::string ca_pem = ca.at("ca_cert_pem");
    EXPECT_TRUE(pki::parse_pem(ca_pem)->is_ca);

    const json created = new_device(hub, "thermo");
    const std::string crt = created.at("certificate").at("crt");
    const std::string key = created.at("certificate").at("key");
    EXPECT_EQ(created.at("certificate").size(), 2u);
    EXPECT_TRUE(pki::signed_by(crt, ca_pem));
    EXPECT_TRUE(pki::key_matches(crt, key));
    EXPECT_EQ(pki::parse_pem(crt)->common_name, "thermo");
    EXPECT_EQ(created.at("device").at("has_custom_certificate"), false);

    const std::string id = created.at("device").at("id");
    const json got = ok("GET", "devices/" + id + "/certificate");
    EXPECT_EQ(got.at("certificate_pem"), crt);
    EXPECT_EQ(got.at("device").at("id"), id);
    EXPECT_FALSE(got.contains("key"));
    EXPECT_EQ(got.dump().find("PRIVATE KEY"), std::string::npos);
    EXPECT_EQ(fails(404, "GET", "devices/" + hub::make_uuid() + "/certificate").at("resource"),
              "device");
    EXPECT_EQ(fails(404, "GET", "hubs/" + hub::make_uuid() + "/ca").at("resource"), "hub");
    EXPECT_TRUE(names_argument(fails(400, "GET", "hubs/nope/ca"), "hub_id"));
}

class RouterPkiRsaTest : public RouterPkiTest {
protected:
    RouterPkiRsaTest() : RouterPkiTest(true) {}
};

TEST_F(RouterPkiRsaTest, DeviceKeysAreRsaPrivateKeysAsTheHostedService) {
    const json created = new_device(new_hub());
    const std::string key = created.at("certificate").at("key");
    EXPECT_EQ(key.rfind("-----BEGIN RSA PRIVATE KEY-----", 0), 0u) << key;
}

TEST_F(RouterPkiTest, RenewDeviceCertificate) {
    const std::string hub = new_hub();
    const json created = new_device(hub);
    const std::string id = created.at("device").at("id");
    const json renewed = ok("POST", "devices/" + id + "/renew-certificate", json::object());
    EXPECT_EQ(renewed.at("device").at("id"), id);
    const std::string crt = renewed.at("certificate").at("crt");
    EXPECT_NE(crt, created.at("certificate").at("crt"));
    EXPECT_TRUE(pki::key_matches(crt, renewed.at("certificate").at("key").get<std::string>()));
    EXPECT_EQ(ok("GET", "devices/" + id + "/certificate").at("certificate_pem"), crt);
    EXPECT_EQ(fails(404, "POST", "devices/" + hub::make_uuid() + "/renew-certificate").at("type"),
              "not_found");
}

TEST_F(RouterPkiTest, SetDeviceCertificate) {
    const std::string hub = new_hub();
    const std::string a = new_device(hub).at("device").at("id");
    const std::string b = new_device(hub).at("device").at("id");
    const auto ca = pki::make_ca(named("mine"), pki::key_type::ec_p256, 1);
    const auto own = pki::issue_client(ca, named("own"), pki::key_type::ec_p256, 1);
    const json set =
        ok("PUT", "devices/" + a + "/certificate", {{"certificate_pem", own.cert_pem}});
    EXPECT_EQ(set.at("certificate_pem"), own.cert_pem);
    EXPECT_EQ(set.at("device").at("has_custom_certificate"), true);
    EXPECT_EQ(ok("GET", "devices/" + a).at("has_custom_certificate"), true);
    EXPECT_EQ(ok("GET", "devices/" + a + "/certificate").at("certificate_pem"), own.cert_pem);

    const json dup =
        fails(409, "PUT", "devices/" + b + "/certificate", {{"certificate_pem", own.cert_pem}});
    EXPECT_EQ(dup.at("type"), "already_exists");
    EXPECT_EQ(dup.at("resource"), "certificate");
    EXPECT_TRUE(dup.at("help_message").is_string());

    EXPECT_TRUE(names_argument(
        fails(400, "PUT", "devices/" + b + "/certificate", {{"certificate_pem", "junk"}}),
        "certificate_pem"));
    EXPECT_TRUE(names_argument(
        fails(400, "PUT", "devices/" + b + "/certificate", {{"certificate_pem", 12}}),
        "certificate_pem"));
    EXPECT_TRUE(names_argument(fails(400, "PUT", "devices/" + b + "/certificate", json::object()),
                               "certificate_pem"));
    EXPECT_EQ(fails(404, "PUT", "devices/" + hub::make_uuid() + "/certificate",
                    {{"certificate_pem", own.cert_pem}})
                  .at("resource"),
              "device");
}

TEST_F(RouterPkiTest, SetHubCaIsIrreversible) {
    const std::string hub = new_hub();
    const json issued = new_device(hub, "issued");
    const std::string issued_id = issued.at("device").at("id");
    const auto ca = pki::make_ca(named("customer"), pki::key_type::ec_p256, 5);
    const auto proof = pki::issue_client(ca, named(hub), pki::key_type::ec_p256, 1);
    const json body{{"ca_cert_pem", ca.cert_pem}, {"challenge_cert_pem", proof.cert_pem}};

    // Only while disabled.
    const json enabled = fails(412, "POST", "hubs/" + hub + "/ca", body);
    EXPECT_EQ(enabled.at("type"), "precondition_failed");
    EXPECT_TRUE(enabled.at("help_message").is_string());
    ok("POST", "hubs/" + hub + "/disable", json::object());
    // Proof of possession.
    const auto wrong_cn = pki::issue_client(ca, named("not-the-hub"), pki::key_type::ec_p256, 1);
    EXPECT_TRUE(names_argument(
        fails(400, "POST", "hubs/" + hub + "/ca",
              {{"ca_cert_pem", ca.cert_pem}, {"challenge_cert_pem", wrong_cn.cert_pem}}),
        "challenge_cert_pem"));
    const auto other = pki::make_ca(named("other"), pki::key_type::ec_p256, 5);
    const auto foreign = pki::issue_client(other, named(hub), pki::key_type::ec_p256, 1);
    EXPECT_TRUE(names_argument(
        fails(400, "POST", "hubs/" + hub + "/ca",
              {{"ca_cert_pem", ca.cert_pem}, {"challenge_cert_pem", foreign.cert_pem}}),
        "challenge_cert_pem"));
    EXPECT_TRUE(
        names_argument(fails(400, "POST", "hubs/" + hub + "/ca", json::object()), "ca_cert_pem"));
    EXPECT_TRUE(names_argument(fails(400, "POST", "hubs/" + hub + "/ca", {{"ca_cert_pem", 1}}),
                               "ca_cert_pem"));
    EXPECT_EQ(fails(404, "POST", "hubs/" + hub::make_uuid() + "/ca", body).at("resource"), "hub");

    // The answer is the hub (the SDK's setHubCA unmarshals a Hub).
    const json h = ok("POST", "hubs/" + hub + "/ca", body);
    EXPECT_EQ(h.at("id"), hub);
    EXPECT_EQ(h.at("has_custom_ca"), true);
    EXPECT_EQ(ok("GET", "hubs/" + hub + "/ca").at("ca_cert_pem"), ca.cert_pem);
    EXPECT_EQ(ok("GET", "hubs/" + hub).at("has_custom_ca"), true);

    // Issued certificates are gone, renewals refused, creation returns no certificate.
    EXPECT_EQ(fails(404, "GET", "devices/" + issued_id + "/certificate").at("resource"),
              "certificate");
    EXPECT_EQ(fails(412, "POST", "devices/" + issued_id + "/renew-certificate").at("type"),
              "precondition_failed");
    EXPECT_FALSE(new_device(hub).contains("certificate"));
    // Auto-provisioning may be enabled now.
    EXPECT_EQ(ok("PATCH", "hubs/" + hub, {{"enable_device_auto_provisioning", true}})
                  .at("enable_device_auto_provisioning"),
              true);
    ok("POST", "hubs/" + hub + "/enable", json::object());
}

TEST_F(RouterPkiTest, ServerCaWithoutOneIs404EvenAnonymous) {
    const auto res = call("GET", "server-ca", "", std::nullopt, true);
    EXPECT_EQ(res.status, 404u);
    EXPECT_EQ(json::parse(res.body).at("type"), "not_found");
}

class RouterServerCaTest : public RouterPkiTest {
protected:
    RouterServerCaTest() : RouterPkiTest(false, "-----BEGIN CERTIFICATE-----\nserver\n") {}
};

TEST_F(RouterServerCaTest, ServerCaIsPublic) {
    for (const bool anonymous : {true, false}) {
        const auto res = call("GET", "server-ca", "", std::nullopt, anonymous);
        EXPECT_EQ(res.status, 200u);
        EXPECT_EQ(json::parse(res.body),
                  (json{{"ca_cert_pem", "-----BEGIN CERTIFICATE-----\nserver\n"}}));
    }
    EXPECT_EQ(call("GET", "/iot/v1/regions/nl-ams/server-ca", "", std::nullopt, true).status, 404u);
    EXPECT_EQ(call("POST", "server-ca", "", std::nullopt, true).status, 405u);
}

}  // namespace
}  // namespace iothub::api
