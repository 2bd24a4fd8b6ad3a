// Certificate authentication at CONNECT: a device's own certificate (issued or custom),
// chains under a hub's custom CA matched by common name, auto-provisioning, every refusal
// with its hub event, certificate changes acting on live connections, and revocation lists.

#include <gtest/gtest.h>

#include <chrono>

#include "hub/access_fixture.hpp"
#include "hub/pki_helpers.hpp"
#include "pki/crl.hpp"
#include "pki/pki.hpp"

namespace iothub::hub {
namespace {

using testing::client;
using testing::hub_fixture;
using testing::protocol_version;
using testing::publishes;

using testing::named;
using testing::wall_ms;

std::string der(const std::string& pem) {
    const auto info = pki::parse_pem(pem);
    EXPECT_TRUE(info.has_value());
    return info ? info->der : std::string();
}

// The value of a string field of an event payload ("" when absent).
std::string field(const std::string& payload, const std::string& key) {
    const std::string probe = "\"" + key + "\":\"";
    const auto at = payload.find(probe);
    if (at == std::string::npos) return {};
    const auto start = at + probe.size();
    return payload.substr(start, payload.find('"', start) - start);
}

struct event {
    std::string severity;
    std::string object_id;
    std::string msg;
    std::string payload;
};

class cert_fixture : public hub_fixture {
protected:
    cert_fixture() { now = wall_ms(); }  // certificates are dated by the wall clock

    // A hub with the customer's CA `ca`, enabled again.
    hub_ptr custom_hub(const pki::cert_and_key& ca, bool auto_provisioning = false) {
        const auto id = make_hub(product_plan::plan_dedicated).hub->id;
        reg->disable_hub(sc, id);
        const auto proof = pki::issue_client(ca, named(id), pki::key_type::ec_p256, 1);
        reg->set_hub_ca(sc, id, ca.cert_pem, proof.cert_pem);
        if (auto_provisioning) {
            hub_update u;
            u.enable_device_auto_provisioning = true;
            reg->update_hub(sc, id, u);
        }
        return reg->enable_hub(sc, id).hub;
    }

    device_ptr named_device(const std::string& hub_id, const std::string& name,
                            bool insecure = false, bool multiple = false) {
        device_create req;
        req.hub_id = hub_id;
        req.name = name;
        req.allow_insecure = insecure;
        req.allow_multiple_connections = multiple;
        return reg->create_device(sc, req).device;
    }

    // CONNECT over "TLS" presenting `chain`.
    mqtt::connack connect_tls(client& c, const std::string& client_id,
                              std::vector<std::string> chain,
                              const std::string& peer = "192.0.2.7:50123") {
        c.t.is_tls = true;
        c.t.certificates = std::move(chain);
        c.t.peer_address = peer;
        return c.connect(client_id);
    }

    // The events the watcher received since the last call; `info`: presence and
    // provisioning too, not only warnings and errors.
    static std::vector<event> events(client& watcher, bool info = false) {
        std::vector<event> out;
        for (const auto& p : publishes(watcher.received())) {
            event e{field(p.payload, "severity"), field(p.payload, "object-id"),
                    field(p.payload, "msg"), p.payload};
            if (info || e.severity != "info") out.push_back(std::move(e));
        }
        return out;
    }

    // The client ids of the open sessions' connections on worker 0.
    std::vector<std::string> client_ids() const {
        std::vector<std::string> out;
        for (auto* c : b->worker_at(0).connections()) {
            if (c->connected() && !c->closing()) out.push_back(c->client_id());
        }
        return out;
    }

    static bool has(const std::vector<std::string>& v, const std::string& s) {
        return std::find(v.begin(), v.end(), s) != v.end();
    }

    pki::cert_and_key customer_ca = pki::make_ca(named("customer"), pki::key_type::ec_p256, 5);
};

TEST_F(cert_fixture, an_issued_certificate_authenticates_its_device_securely) {
    device_create req;
    req.hub_id = hub.hub->id;
    req.name = "secure";
    req.allow_insecure = false;
    const auto created = reg->create_device(sc, req);
    ASSERT_TRUE(created.certificate);
    const std::string id = created.device->id;
    auto w = watcher(hub.hub->id);

    client a(*b, protocol_version::v5);
    EXPECT_EQ(connect_tls(a, id, {der(created.certificate->crt)}).reason,
              mqtt::reason_code::success);
    ASSERT_TRUE(a.c->identity());
    EXPECT_FALSE(a.c->identity()->insecure);
    EXPECT_EQ(a.c->identity()->device_id, id);
    EXPECT_TRUE(acc->is_connected(id));

    // Any other client id: the session is the device's (no several connections allowed).
    client b2(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(b2, "whatever", {der(created.certificate->crt)}).reason,
              mqtt::reason_code::success);
    EXPECT_EQ(b2.c->client_id(), id);
    EXPECT_TRUE(a.t.closed);  // taken over, as for the same client id
    EXPECT_TRUE(events(*w).empty());

    // The same device without its certificate: insecure, refused.
    client plain(*b, protocol_version::v5);
    plain.t.is_tls = true;  // TLS without a client certificate
    const auto ack = plain.connect(id);
    EXPECT_EQ(ack.reason, mqtt::reason_code::not_authorized);
    EXPECT_EQ(ack.props.reason_string.value_or(""), "mutual TLS authentication is required");
}

TEST_F(cert_fixture, a_certificate_of_one_device_never_acts_as_another) {
    const auto a = reg->create_device(sc, device_create{hub.hub->id, "a", "", false, false, {}});
    const auto victim = make_device(hub.hub->id, true);
    client v(*b, protocol_version::v311);
    ASSERT_EQ(v.connect(victim->id).reason, mqtt::reason_code::success);

    client intruder(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(intruder, victim->id, {der(a.certificate->crt)}).reason,
              mqtt::reason_code::success);
    EXPECT_EQ(intruder.c->client_id(), a.device->id);
    EXPECT_EQ(intruder.c->identity()->device_id, a.device->id);
    EXPECT_FALSE(v.t.closed);  // the victim's session is untouched
    EXPECT_TRUE(has(client_ids(), victim->id));

    // With several connections allowed, a client keeps its own client id, but never
    // another device's.
    const auto multi =
        reg->create_device(sc, device_create{hub.hub->id, "multi", "", false, true, {}});
    client own(*b, protocol_version::v5);
    EXPECT_EQ(connect_tls(own, "multi-1", {der(multi.certificate->crt)}).reason,
              mqtt::reason_code::success);
    EXPECT_EQ(own.c->client_id(), "multi-1");
    EXPECT_EQ(own.c->identity()->device_id, multi.device->id);
    client stolen(*b, protocol_version::v5);
    const auto ack = connect_tls(stolen, victim->id, {der(multi.certificate->crt)});
    EXPECT_EQ(ack.reason, mqtt::reason_code::not_authorized);
    EXPECT_FALSE(v.t.closed);
    client assigned(*b, protocol_version::v5);
    const auto ack2 = connect_tls(assigned, "", {der(multi.certificate->crt)});
    EXPECT_EQ(ack2.reason, mqtt::reason_code::success);
    EXPECT_TRUE(ack2.props.assigned_client_identifier.has_value());
}

TEST_F(cert_fixture, a_custom_device_certificate_authenticates_by_fingerprint_with_its_dates) {
    auto w = watcher(hub.hub->id);
    const auto d = named_device(hub.hub->id, "custom");
    const auto own = pki::issue_client(customer_ca, named("any name"), pki::key_type::ec_p256, 1);
    reg->set_device_certificate(sc, d->id, own.cert_pem);
    client ok(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(ok, d->id, {der(own.cert_pem)}).reason, mqtt::reason_code::success);
    EXPECT_EQ(ok.c->identity()->device_id, d->id);
    events(*w);

    const std::int64_t now_s = static_cast<std::int64_t>(now / 1000);
    const auto expired = pki::issue_client(customer_ca, named("x"), pki::key_type::ec_p256,
                                           pki::validity{now_s - 3 * 86400, now_s - 86400});
    const auto e1 = named_device(hub.hub->id, "expired");
    reg->set_device_certificate(sc, e1->id, expired.cert_pem);
    client c1(*b, protocol_version::v5);
    auto ack = connect_tls(c1, e1->id, {der(expired.cert_pem)});
    EXPECT_EQ(ack.reason, mqtt::reason_code::not_authorized);
    EXPECT_EQ(ack.props.reason_string.value_or(""),
              "invalid device certificate: certificate has expired");

    const auto future = pki::issue_client(customer_ca, named("y"), pki::key_type::ec_p256,
                                          pki::validity{now_s + 86400, now_s + 3 * 86400});
    const auto e2 = named_device(hub.hub->id, "future");
    reg->set_device_certificate(sc, e2->id, future.cert_pem);
    client c2(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(c2, e2->id, {der(future.cert_pem)}).reason,
              mqtt::reason_code::not_authorized);

    const auto got = events(*w);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].msg, "invalid device certificate");
    EXPECT_EQ(got[0].object_id, e1->id);
    EXPECT_EQ(got[0].severity, "error");
    EXPECT_EQ(got[1].object_id, e2->id);
}

TEST_F(cert_fixture, an_unknown_certificate_is_refused_not_passed_over) {
    auto w = watcher(hub.hub->id);
    const auto insecure_ok = make_device(hub.hub->id, true);
    const auto stranger =
        pki::issue_client(customer_ca, named(insecure_ok->name), pki::key_type::ec_p256, 1);
    client c(*b, protocol_version::v5);
    const auto ack = connect_tls(c, insecure_ok->id, {der(stranger.cert_pem)});
    EXPECT_EQ(ack.reason, mqtt::reason_code::not_authorized);
    EXPECT_EQ(ack.props.reason_string.value_or("").rfind("invalid device certificate", 0), 0u);
    const auto got = events(*w);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].msg, "invalid device certificate");
    EXPECT_EQ(got[0].object_id, insecure_ok->id);  // the device the client id names

    // No device named, no hub involved: refused, no event anywhere.
    client anon(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(anon, "nobody", {der(stranger.cert_pem)}).reason,
              mqtt::reason_code::not_authorized);
    // Not a certificate at all, and a chain too long to read.
    client junk(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(junk, insecure_ok->id, {"not DER"}).reason,
              mqtt::reason_code::not_authorized);
    client longer(*b, protocol_version::v311);
    EXPECT_EQ(
        connect_tls(longer, insecure_ok->id, std::vector<std::string>(9, der(stranger.cert_pem)))
            .reason,
        mqtt::reason_code::not_authorized);
    EXPECT_EQ(events(*w).size(), 2u);
}

TEST_F(cert_fixture, renewal_disconnects_and_retires_the_old_certificate) {
    const auto created =
        reg->create_device(sc, device_create{hub.hub->id, "renewed", "", false, false, {}});
    auto w = watcher(hub.hub->id);
    client c(*b, protocol_version::v311);
    ASSERT_EQ(connect_tls(c, created.device->id, {der(created.certificate->crt)}).reason,
              mqtt::reason_code::success);
    events(*w);
    const auto renewed = reg->renew_device_certificate(sc, created.device->id);
    EXPECT_TRUE(c.t.closed);
    auto got = events(*w);
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got[0].msg, "device security has changed, requires authentication");
    EXPECT_EQ(got[0].object_id, created.device->id);

    // The old certificate still chains to the hub's CA, but is no device's any more; its
    // subject still names the device, so the event is about it, whatever the client id.
    client old(*b, protocol_version::v5);
    const auto ack = connect_tls(old, "someone-else", {der(created.certificate->crt)});
    EXPECT_EQ(ack.reason, mqtt::reason_code::not_authorized);
    got = events(*w);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].msg, "invalid device certificate");
    EXPECT_EQ(got[0].object_id, created.device->id);
    client fresh(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(fresh, created.device->id, {der(renewed.certificate->crt)}).reason,
              mqtt::reason_code::success);

    // A custom certificate set on a connected device disconnects it too.
    const auto own = pki::issue_client(customer_ca, named("own"), pki::key_type::ec_p256, 1);
    reg->set_device_certificate(sc, created.device->id, own.cert_pem);
    EXPECT_TRUE(fresh.t.closed);
}

TEST_F(cert_fixture, a_custom_ca_identifies_devices_by_common_name) {
    const auto h = custom_hub(customer_ca);
    auto w = watcher(h->id);
    const auto sensor = named_device(h->id, "sensor-1");
    const auto leaf = pki::issue_client(customer_ca, named("sensor-1"), pki::key_type::ec_p256, 1);
    client c(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(c, "sensor-1", {der(leaf.cert_pem)}).reason, mqtt::reason_code::success);
    EXPECT_EQ(c.c->client_id(), sensor->id);
    EXPECT_FALSE(c.c->identity()->insecure);

    // Through an intermediate: the full chain verifies, the leaf alone does not.
    const auto inter = pki::issue_ca(customer_ca, named("vendor"), pki::key_type::ec_p256,
                                     pki::valid_for_years(2));
    const auto deep = pki::issue_client(inter, named("sensor-1"), pki::key_type::ec_p256, 1);
    client full(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(full, "", {der(deep.cert_pem), der(inter.cert_pem)}).reason,
              mqtt::reason_code::success);
    EXPECT_EQ(full.c->identity()->device_id, sensor->id);
    events(*w);
    // Without its intermediate the leaf names an issuer no hub knows: refused, and no hub
    // to tell.
    client partial(*b, protocol_version::v5);
    const auto ack = connect_tls(partial, "", {der(deep.cert_pem)});
    EXPECT_EQ(ack.reason, mqtt::reason_code::not_authorized);
    EXPECT_EQ(ack.props.reason_string.value_or("").rfind("invalid device certificate", 0), 0u);
    auto got = events(*w);
    EXPECT_TRUE(got.empty());
    // A chain whose intermediate is there but the root is another customer's.
    const auto stranger = pki::make_ca(named("customer"), pki::key_type::ec_p256, 5);  // same name
    const auto fake_inter =
        pki::issue_ca(stranger, named("vendor"), pki::key_type::ec_p256, pki::valid_for_years(2));
    const auto fake = pki::issue_client(fake_inter, named("sensor-1"), pki::key_type::ec_p256, 1);
    client forged(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(forged, "", {der(fake.cert_pem), der(fake_inter.cert_pem)}).reason,
              mqtt::reason_code::not_authorized);
    got = events(*w);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].msg, "invalid device certificate");
    EXPECT_EQ(got[0].object_id, "unknown");

    // Expired under the custom CA.
    const std::int64_t now_s = static_cast<std::int64_t>(now / 1000);
    const auto expired = pki::issue_client(customer_ca, named("sensor-1"), pki::key_type::ec_p256,
                                           pki::validity{now_s - 3 * 86400, now_s - 86400});
    client late(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(late, "", {der(expired.cert_pem)}).reason,
              mqtt::reason_code::not_authorized);
    // Empty common name.
    const auto anonymous =
        pki::issue_client(customer_ca, pki::subject{}, pki::key_type::ec_p256, 1);
    client empty(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(empty, "", {der(anonymous.cert_pem)}).reason,
              mqtt::reason_code::not_authorized);
    // Unknown common name, no auto-provisioning.
    const auto unknown =
        pki::issue_client(customer_ca, named("sensor-2"), pki::key_type::ec_p256, 1);
    client who(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(who, "", {der(unknown.cert_pem)}).reason,
              mqtt::reason_code::not_authorized);
    got = events(*w);
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0].msg, "invalid device certificate");
    EXPECT_EQ(got[1].msg, "certificate common name cannot be empty");
    EXPECT_EQ(got[1].object_id, "unknown");
    EXPECT_EQ(got[2].msg, "could not identify device");
    EXPECT_EQ(got[2].object_id, "unknown");
    EXPECT_EQ(reg->devices_of(h->id).size(), 2u);  // the watcher and sensor-1

    // A disabled device is refused even with a good certificate.
    reg->disable_device(sc, sensor->id);
    events(*w);
    client off(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(off, "", {der(leaf.cert_pem)}).reason, mqtt::reason_code::not_authorized);
    got = events(*w);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].msg, "device is not enabled");
    EXPECT_EQ(got[0].object_id, sensor->id);
}

TEST_F(cert_fixture, auto_provisioning_creates_the_device_once) {
    const auto h = custom_hub(customer_ca, true);
    auto w = watcher(h->id);
    const auto leaf = pki::issue_client(customer_ca, named("SN-0042"), pki::key_type::ec_p256, 1);
    client c(*b, protocol_version::v5);
    EXPECT_EQ(connect_tls(c, "", {der(leaf.cert_pem)}, "198.51.100.4:61000").reason,
              mqtt::reason_code::success);
    const auto dev = reg->find_device_by_name(h->id, "SN-0042");
    ASSERT_TRUE(dev);
    EXPECT_FALSE(dev->allow_insecure);
    EXPECT_FALSE(dev->allow_multiple_connections);
    EXPECT_TRUE(dev->filters.publish.topics.empty());
    EXPECT_NE(dev->description.find("198.51.100.4:61000"), std::string::npos) << dev->description;
    EXPECT_EQ(c.c->client_id(), dev->id);
    auto got = events(*w, true);
    std::vector<event> provisioned;
    for (const auto& e : got) {
        if (e.msg == "device was auto-provisioned") provisioned.push_back(e);
    }
    ASSERT_EQ(provisioned.size(), 1u);
    EXPECT_EQ(provisioned[0].severity, "info");
    EXPECT_EQ(provisioned[0].object_id, dev->id);
    EXPECT_EQ(field(provisioned[0].payload, "object-name"), "SN-0042");
    EXPECT_EQ(field(provisioned[0].payload, "source-address"), "198.51.100.4:61000");

    // admit() runs again on the session's worker when the connection moves: the second
    // time finds the device, and raises nothing.
    mqtt::connect p;
    p.version = protocol_version::v311;
    p.protocol_name = "MQTT";
    p.clean_start = true;
    broker::link_info link{"198.51.100.4:61000", true, {der(leaf.cert_pem)}};
    const auto again = acc->admit(b->worker_at(0), p, link);
    EXPECT_EQ(again.rc, mqtt::reason_code::success);
    EXPECT_EQ(again.client_id, dev->id);
    EXPECT_EQ(reg->devices_of(h->id).size(), 2u);
    got = events(*w, true);
    for (const auto& e : got) EXPECT_NE(e.msg, "device was auto-provisioned");

    // A common name that cannot be a device name is not provisioned.
    const auto bad = pki::issue_client(customer_ca, named("a/b"), pki::key_type::ec_p256, 1);
    client slash(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(slash, "", {der(bad.cert_pem)}).reason,
              mqtt::reason_code::not_authorized);
    got = events(*w);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].msg, "could not identify device");

    // A disabled hub provisions nothing.
    reg->disable_hub(sc, h->id);
    const auto later = pki::issue_client(customer_ca, named("SN-0043"), pki::key_type::ec_p256, 1);
    client off(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(off, "", {der(later.cert_pem)}).reason,
              mqtt::reason_code::not_authorized);
    EXPECT_FALSE(reg->find_device_by_name(h->id, "SN-0043"));
}

TEST_F(cert_fixture, a_ca_shared_by_two_hubs_finds_the_device_in_either) {
    const auto h1 = custom_hub(customer_ca);
    const auto h2 = custom_hub(customer_ca, true);
    const auto in_h1 = named_device(h1->id, "only-in-1");
    const auto leaf1 =
        pki::issue_client(customer_ca, named("only-in-1"), pki::key_type::ec_p256, 1);
    client c1(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(c1, "", {der(leaf1.cert_pem)}).reason, mqtt::reason_code::success);
    EXPECT_EQ(c1.c->identity()->hub, h1->id);
    // Unknown in both: provisioned where auto-provisioning is on.
    const auto leaf2 = pki::issue_client(customer_ca, named("new-one"), pki::key_type::ec_p256, 1);
    client c2(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(c2, "", {der(leaf2.cert_pem)}).reason, mqtt::reason_code::success);
    EXPECT_EQ(c2.c->identity()->hub, h2->id);
    EXPECT_TRUE(reg->find_device_by_name(h2->id, "new-one"));
    EXPECT_FALSE(reg->find_device_by_name(h1->id, "new-one"));
}

// --- Certificate revocation lists

// A CRL of `ca` listing `revoked`, dated now, as a set access takes.
pki::crl_set_ptr crls_of(const pki::cert_and_key& ca, const std::vector<std::string>& revoked_pem) {
    std::vector<std::string> serials;
    for (const auto& pem : revoked_pem) serials.push_back(pki::parse_pem(pem)->serial);
    const std::int64_t now_s = static_cast<std::int64_t>(wall_ms() / 1000);
    return std::make_shared<const pki::crl_set>(pki::crl_set::from_pem(
        pki::issue_crl(ca, serials, pki::validity{now_s - 60, now_s + 86400})));
}

TEST_F(cert_fixture, a_revoked_issued_certificate_is_refused_with_the_event) {
    const auto created =
        reg->create_device(sc, device_create{hub.hub->id, "issued", "", false, false, {}});
    const auto kept =
        reg->create_device(sc, device_create{hub.hub->id, "kept", "", false, false, {}});
    // The hub's own CA, key included, as the store holds it.
    pki::cert_and_key hub_ca;
    db->load({}, {},
             [&](store::hub_ca_row&& r) {
                 if (r.hub_id == hub.hub->id) hub_ca = {r.cert_pem, r.key_pem};
             },
             {});
    ASSERT_FALSE(hub_ca.key_pem.empty());
    auto w = watcher(hub.hub->id);
    acc->set_crls(crls_of(hub_ca, {created.certificate->crt}));

    client c(*b, protocol_version::v5);
    const auto ack = connect_tls(c, created.device->id, {der(created.certificate->crt)});
    EXPECT_EQ(ack.reason, mqtt::reason_code::not_authorized);
    EXPECT_EQ(ack.props.reason_string.value_or("").rfind(
                  "invalid device certificate: certificate revoked (serial ", 0),
              0u)
        << ack.props.reason_string.value_or("");
    const auto got = events(*w);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].msg, "invalid device certificate");
    EXPECT_EQ(got[0].object_id, created.device->id);
    EXPECT_EQ(got[0].severity, "error");
    // MQTT 3.1.1: "not authorized" (5).
    client v3(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(v3, created.device->id, {der(created.certificate->crt)}).reason,
              mqtt::reason_code::not_authorized);

    // The hub's other devices are not revoked.
    client other(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(other, kept.device->id, {der(kept.certificate->crt)}).reason,
              mqtt::reason_code::success);
}

TEST_F(cert_fixture, a_revoked_custom_certificate_is_refused_by_its_issuers_crl) {
    auto w = watcher(hub.hub->id);
    const auto d = named_device(hub.hub->id, "custom");
    const auto own = pki::issue_client(customer_ca, named("own"), pki::key_type::ec_p256, 1);
    reg->set_device_certificate(sc, d->id, own.cert_pem);
    const auto d2 = named_device(hub.hub->id, "custom-2");
    const auto own2 = pki::issue_client(customer_ca, named("own2"), pki::key_type::ec_p256, 1);
    reg->set_device_certificate(sc, d2->id, own2.cert_pem);
    acc->set_crls(crls_of(customer_ca, {own.cert_pem}));

    // The issuer is no hub's CA: by its name and key id, and with the chain the client sent,
    // by the CRL's signature.
    client alone(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(alone, d->id, {der(own.cert_pem)}).reason,
              mqtt::reason_code::not_authorized);
    client chained(*b, protocol_version::v5);
    const auto ack = connect_tls(chained, d->id, {der(own.cert_pem), der(customer_ca.cert_pem)});
    EXPECT_EQ(ack.reason, mqtt::reason_code::not_authorized);
    EXPECT_NE(ack.props.reason_string.value_or("").find("certificate revoked"), std::string::npos);
    auto got = events(*w);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].msg, "invalid device certificate");
    EXPECT_EQ(got[0].object_id, d->id);
    EXPECT_EQ(got[1].object_id, d->id);

    client fine(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(fine, d2->id, {der(own2.cert_pem), der(customer_ca.cert_pem)}).reason,
              mqtt::reason_code::success);

    // A CRL of another CA of the same name (and another key) revokes none of these.
    const auto namesake = pki::make_ca(named("customer"), pki::key_type::ec_p256, 5);
    acc->set_crls(crls_of(namesake, {own.cert_pem}));
    client again(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(again, d->id, {der(own.cert_pem), der(customer_ca.cert_pem)}).reason,
              mqtt::reason_code::success);
    client again2(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(again2, d->id, {der(own.cert_pem)}).reason, mqtt::reason_code::success);
    // Sending the namesake as "issuer" does not make its CRL the issuer's.
    client again3(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(again3, d->id, {der(own.cert_pem), der(namesake.cert_pem)}).reason,
              mqtt::reason_code::success);
    EXPECT_TRUE(events(*w).empty());
}

TEST_F(cert_fixture, a_custom_ca_chain_with_a_revoked_leaf_or_intermediate_is_refused) {
    const auto h = custom_hub(customer_ca, true);
    auto w = watcher(h->id);
    const auto sensor = named_device(h->id, "sensor-1");
    const auto leaf = pki::issue_client(customer_ca, named("sensor-1"), pki::key_type::ec_p256, 1);
    const auto inter = pki::issue_ca(customer_ca, named("vendor"), pki::key_type::ec_p256,
                                     pki::valid_for_years(2));
    const auto deep = pki::issue_client(inter, named("sensor-1"), pki::key_type::ec_p256, 1);
    const auto newcomer = pki::issue_client(customer_ca, named("SN-1"), pki::key_type::ec_p256, 1);

    acc->set_crls(crls_of(customer_ca, {leaf.cert_pem, newcomer.cert_pem}));
    client c(*b, protocol_version::v5);
    const auto ack = connect_tls(c, "", {der(leaf.cert_pem)});
    EXPECT_EQ(ack.reason, mqtt::reason_code::not_authorized);
    EXPECT_EQ(ack.props.reason_string.value_or("").rfind(
                  "invalid device certificate: certificate revoked", 0),
              0u)
        << ack.props.reason_string.value_or("");
    // Nor is a revoked certificate auto-provisioned.
    client p(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(p, "", {der(newcomer.cert_pem)}).reason,
              mqtt::reason_code::not_authorized);
    EXPECT_FALSE(reg->find_device_by_name(h->id, "SN-1"));
    auto got = events(*w);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].msg, "invalid device certificate");
    EXPECT_EQ(got[1].msg, "invalid device certificate");
    // The same device through the intermediate: another certificate, not revoked.
    client via(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(via, "", {der(deep.cert_pem), der(inter.cert_pem)}).reason,
              mqtt::reason_code::success);
    EXPECT_EQ(via.c->identity()->device_id, sensor->id);

    // The intermediate revoked: everything under it is refused.
    acc->set_crls(crls_of(customer_ca, {inter.cert_pem}));
    client under(*b, protocol_version::v5);
    const auto ack2 = connect_tls(under, "", {der(deep.cert_pem), der(inter.cert_pem)});
    EXPECT_EQ(ack2.reason, mqtt::reason_code::not_authorized);
    EXPECT_NE(ack2.props.reason_string.value_or("").find("depth 1"), std::string::npos)
        << ack2.props.reason_string.value_or("");
    got = events(*w);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].msg, "invalid device certificate");
}

TEST_F(cert_fixture, new_crls_act_on_the_next_connect_only) {
    const auto h = custom_hub(customer_ca);
    const auto sensor = named_device(h->id, "sensor-1");
    const auto leaf = pki::issue_client(customer_ca, named("sensor-1"), pki::key_type::ec_p256, 1);
    const auto other = named_device(h->id, "sensor-2");
    const auto leaf2 = pki::issue_client(customer_ca, named("sensor-2"), pki::key_type::ec_p256, 1);

    acc->set_crls(crls_of(customer_ca, {leaf.cert_pem}));
    client first(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(first, "", {der(leaf.cert_pem)}).reason,
              mqtt::reason_code::not_authorized);
    client second(*b, protocol_version::v311);
    ASSERT_EQ(connect_tls(second, "", {der(leaf2.cert_pem)}).reason, mqtt::reason_code::success);

    // The second one revoked too: its open connection stays, a new one is refused.
    acc->set_crls(crls_of(customer_ca, {leaf.cert_pem, leaf2.cert_pem}));
    EXPECT_FALSE(second.t.closed);
    EXPECT_TRUE(has(client_ids(), other->id));
    client third(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(third, "", {der(leaf2.cert_pem)}).reason,
              mqtt::reason_code::not_authorized);

    // No lists any more: both connect.
    acc->set_crls(nullptr);
    client fourth(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(fourth, "", {der(leaf.cert_pem)}).reason, mqtt::reason_code::success);
    EXPECT_EQ(fourth.c->identity()->device_id, sensor->id);
    acc->set_crls(std::make_shared<const pki::crl_set>());  // empty: the same
    client fifth(*b, protocol_version::v311);
    EXPECT_EQ(connect_tls(fifth, "", {der(leaf2.cert_pem)}).reason, mqtt::reason_code::success);
}

}  // namespace
}  // namespace iothub::hub
