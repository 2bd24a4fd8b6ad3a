// The registry's PKI: each hub's CA, device certificates (issued, renewed, custom), custom
// hub CAs, the lookups of the MQTT side, auto-provisioning, and persistence.

#include <gtest/gtest.h>

#include <chrono>

#include "hub/registry.hpp"
#include "hub/registry_fixture.hpp"
#include "hub/pki_helpers.hpp"
#include "pki/pki.hpp"
#include "store/registry_store.hpp"
#include "store/temp_dir.hpp"

namespace iothub::hub {
namespace {

using testing::error_of;
using testing::mine;
using testing::registry_test;
using testing::theirs;

using testing::named;
using testing::wall_ms;

// A customer's CA and a proof of possession for `hub_id`.
struct custom_ca {
    pki::cert_and_key ca = pki::make_ca(named("customer root"), pki::key_type::ec_p256, 5);
    pki::cert_and_key challenge(const std::string& cn) const {
        return pki::issue_client(ca, named(cn), pki::key_type::ec_p256, 1);
    }
};

std::string fingerprint_of(const std::string& pem) {
    return pki::parse_pem(pem)->fingerprint;
}

class pki_registry : public registry_test {
protected:
    // A disabled hub with the customer's CA.
    hub_ptr custom_hub(const custom_ca& c, const std::string& name = "custom") {
        const auto id = make_hub(name).hub->id;
        reg_.disable_hub(mine, id);
        return reg_.set_hub_ca(mine, id, c.ca.cert_pem, c.challenge(id).cert_pem).hub;
    }
};

TEST_F(pki_registry, each_hub_gets_its_own_ca) {
    const auto a = make_hub("a").hub->id;
    const auto b = make_hub("b").hub->id;
    const std::string pem = reg_.get_hub_ca(mine, a);
    const auto info = pki::parse_pem(pem);
    ASSERT_TRUE(info);
    EXPECT_TRUE(info->is_ca);
    EXPECT_EQ(info->common_name, "iothub hub CA " + a);
    EXPECT_NE(info->subject.find("O=iothub"), std::string::npos);
    EXPECT_GE(info->not_after_ms, wall_ms() + 29ull * 365 * 86400 * 1000);
    EXPECT_NE(reg_.get_hub_ca(mine, b), pem);
    const auto ca = reg_.find_hub_ca(a);
    ASSERT_TRUE(ca);
    EXPECT_EQ(ca->cert_pem, pem);
    EXPECT_FALSE(ca->custom);
    EXPECT_EQ(ca->hub_id, a);
    const auto found = reg_.cas_with_subject(info->subject_hash);
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0]->hub_id, a);
    EXPECT_EQ(pem.find("PRIVATE KEY"), std::string::npos);
    // Another project sees no CA of mine.
    EXPECT_EQ(error_of([&] { reg_.get_hub_ca(theirs, a); }).kind, error_kind::not_found);
}

TEST_F(pki_registry, create_device_issues_a_certificate_from_the_hub_ca) {
    const auto hub = make_hub().hub->id;
    device_create req;
    req.hub_id = hub;
    req.name = "thermo";
    const device_created created = reg_.create_device(mine, req);
    ASSERT_TRUE(created.certificate);
    const auto& crt = created.certificate->crt;
    const auto info = pki::parse_pem(crt);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->common_name, "thermo");
    EXPECT_NE(info->subject.find("O=iothub"), std::string::npos);
    EXPECT_FALSE(info->is_ca);
    EXPECT_TRUE(pki::signed_by(crt, reg_.get_hub_ca(mine, hub)));
    EXPECT_TRUE(pki::key_matches(crt, created.certificate->key));
    EXPECT_EQ(pki::verify_client_chain({info->der}, reg_.get_hub_ca(mine, hub), wall_ms()).result,
              pki::verdict::ok);
    EXPECT_GE(info->not_after_ms, wall_ms() + 9ull * 365 * 86400 * 1000);
    EXPECT_LE(info->not_after_ms, wall_ms() + 11ull * 365 * 86400 * 1000);

    EXPECT_EQ(created.device->certificate_fingerprint, info->fingerprint);
    EXPECT_FALSE(created.device->has_custom_certificate);
    EXPECT_EQ(reg_.find_device_by_certificate(info->fingerprint), created.device);
    EXPECT_FALSE(reg_.find_device_by_certificate(std::string(64, '0')));
    const auto got = reg_.get_device_certificate(mine, created.device->id);
    EXPECT_EQ(got.certificate_pem, crt);
    EXPECT_EQ(got.device.device, created.device);
    EXPECT_EQ(error_of([&] { reg_.get_device_certificate(theirs, created.device->id); }).kind,
              error_kind::not_found);
}

TEST(registry_pki_defaults, device_keys_are_rsa_2048_by_default) {
    auto db = store::make_memory_registry();
    registry reg(*db, [] { return std::uint64_t{1'700'000'000'000}; });
    hub_create h;
    h.plan = product_plan::plan_dedicated;
    const auto hub = reg.create_hub(mine, h).hub->id;
    device_create d;
    d.hub_id = hub;
    const auto created = reg.create_device(mine, d);
    ASSERT_TRUE(created.certificate);
    EXPECT_EQ(created.certificate->key.rfind("-----BEGIN RSA PRIVATE KEY-----", 0), 0u);
    EXPECT_TRUE(pki::key_matches(created.certificate->crt, created.certificate->key));
}

TEST_F(pki_registry, renewal_replaces_the_certificate) {
    const auto hub = make_hub().hub->id;
    device_create req;
    req.hub_id = hub;
    const auto created = reg_.create_device(mine, req);
    const std::string old_fp = created.device->certificate_fingerprint;
    now_ += 1000;
    listener_.calls.clear();
    const auto renewed = reg_.renew_device_certificate(mine, created.device->id);
    ASSERT_TRUE(renewed.certificate);
    EXPECT_NE(renewed.certificate->crt, created.certificate->crt);
    EXPECT_TRUE(pki::key_matches(renewed.certificate->crt, renewed.certificate->key));
    const std::string new_fp = fingerprint_of(renewed.certificate->crt);
    EXPECT_EQ(renewed.device->certificate_fingerprint, new_fp);
    EXPECT_EQ(renewed.device->updated_at_ms, now_);
    EXPECT_FALSE(reg_.find_device_by_certificate(old_fp));
    EXPECT_EQ(reg_.find_device_by_certificate(new_fp)->id, created.device->id);
    EXPECT_EQ(reg_.get_device_certificate(mine, created.device->id).certificate_pem,
              renewed.certificate->crt);
    ASSERT_EQ(listener_.calls.size(), 1u);  // the access layer disconnects the device
    EXPECT_EQ(listener_.calls[0].what, "device");
    EXPECT_EQ(error_of([&] { reg_.renew_device_certificate(theirs, created.device->id); }).kind,
              error_kind::not_found);
}

TEST_F(pki_registry, custom_device_certificates_are_unique_across_hubs) {
    const auto h1 = make_hub("h1").hub->id;
    const auto h2 = make_hub("h2").hub->id;
    const auto a = make_device(h1, "a").device;
    const auto b = make_device(h2, "b").device;
    const auto mine_ca = pki::make_ca(named("mine"), pki::key_type::ec_p256, 1);
    const auto own = pki::issue_client(mine_ca, named("whatever"), pki::key_type::ec_p256, 1);
    const std::string issued_fp = a->certificate_fingerprint;

    const auto set = reg_.set_device_certificate(mine, a->id, own.cert_pem);
    EXPECT_EQ(set.certificate_pem, own.cert_pem);
    EXPECT_TRUE(set.device.device->has_custom_certificate);
    EXPECT_EQ(set.device.device->certificate_fingerprint, fingerprint_of(own.cert_pem));
    EXPECT_EQ(reg_.find_device_by_certificate(fingerprint_of(own.cert_pem))->id, a->id);
    EXPECT_FALSE(reg_.find_device_by_certificate(issued_fp));  // the issued one is gone

    // The same certificate on another device (of another hub): refused.
    const auto e = error_of([&] { reg_.set_device_certificate(mine, b->id, own.cert_pem); });
    EXPECT_EQ(e.kind, error_kind::already_exists);
    EXPECT_EQ(e.resource, "certificate");
    EXPECT_FALSE(reg_.find_device(b->id)->has_custom_certificate);
    // Again on the same device: fine.
    EXPECT_NO_THROW(reg_.set_device_certificate(mine, a->id, own.cert_pem));
    // Renewal goes back to an issued certificate.
    const auto renewed = reg_.renew_device_certificate(mine, a->id);
    EXPECT_FALSE(renewed.device->has_custom_certificate);
    // Its old custom certificate is free for b now.
    EXPECT_NO_THROW(reg_.set_device_certificate(mine, b->id, own.cert_pem));

    // Not certificates.
    for (const std::string& bad : std::vector<std::string>{"", "hello", own.key_pem}) {
        const auto err = error_of([&] { reg_.set_device_certificate(mine, a->id, bad); });
        EXPECT_EQ(err.kind, error_kind::invalid_arguments) << bad;
        ASSERT_EQ(err.details.size(), 1u);
        EXPECT_EQ(err.details[0].argument_name, "certificate_pem");
    }
    EXPECT_EQ(error_of([&] {
                  reg_.set_device_certificate(mine, a->id, own.cert_pem + mine_ca.cert_pem);
              }).kind,
              error_kind::invalid_arguments);
    EXPECT_EQ(error_of([&] { reg_.set_device_certificate(theirs, a->id, own.cert_pem); }).kind,
              error_kind::not_found);
}

TEST_F(pki_registry, set_hub_ca_checks_the_proof_and_the_hub_state) {
    const custom_ca c;
    const auto id = make_hub().hub->id;
    const auto proof = c.challenge(id).cert_pem;
    // Enabled: refused.
    auto e = error_of([&] { reg_.set_hub_ca(mine, id, c.ca.cert_pem, proof); });
    EXPECT_EQ(e.kind, error_kind::precondition_failed);
    EXPECT_EQ(e.precondition, "resource_not_usable");
    reg_.disable_hub(mine, id);
    // Unknown hub or another project's.
    EXPECT_EQ(error_of([&] { reg_.set_hub_ca(mine, make_uuid(), c.ca.cert_pem, proof); }).kind,
              error_kind::not_found);
    EXPECT_EQ(error_of([&] { reg_.set_hub_ca(theirs, id, c.ca.cert_pem, proof); }).kind,
              error_kind::not_found);
    auto names_of = [](const registry_error& err) {
        std::vector<std::string> out;
        for (const auto& d : err.details) out.push_back(d.argument_name + ":" + d.reason);
        return out;
    };
    // Missing / not certificates.
    e = error_of([&] { reg_.set_hub_ca(mine, id, "", ""); });
    EXPECT_EQ(names_of(e), testing::names("ca_cert_pem:required", "challenge_cert_pem:required"));
    e = error_of([&] { reg_.set_hub_ca(mine, id, "x", "y"); });
    EXPECT_EQ(names_of(e), testing::names("ca_cert_pem:format", "challenge_cert_pem:format"));
    // Not a CA.
    const auto leaf = c.challenge("leaf").cert_pem;
    e = error_of([&] { reg_.set_hub_ca(mine, id, leaf, proof); });
    EXPECT_EQ(names_of(e), testing::names("ca_cert_pem:constraint"));
    // A challenge signed by another CA.
    const custom_ca other;
    e = error_of([&] { reg_.set_hub_ca(mine, id, c.ca.cert_pem, other.challenge(id).cert_pem); });
    EXPECT_EQ(names_of(e), testing::names("challenge_cert_pem:constraint"));
    // A challenge naming something else than the hub.
    e = error_of([&] { reg_.set_hub_ca(mine, id, c.ca.cert_pem, c.challenge("nope").cert_pem); });
    EXPECT_EQ(names_of(e), testing::names("challenge_cert_pem:constraint"));
    EXPECT_NE(e.details[0].help_message.find(id), std::string::npos);
    EXPECT_FALSE(reg_.find_hub(id)->has_custom_ca);
    EXPECT_FALSE(reg_.find_hub_ca(id)->custom);

    // The upper-case hub id is the same id.
    std::string upper = id;
    for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    const auto v = reg_.set_hub_ca(mine, id, c.ca.cert_pem, c.challenge(upper).cert_pem);
    EXPECT_TRUE(v.hub->has_custom_ca);
    EXPECT_EQ(v.status, hub_status::disabled);
    EXPECT_EQ(reg_.get_hub_ca(mine, id), c.ca.cert_pem);
    EXPECT_TRUE(reg_.find_hub_ca(id)->custom);
}

TEST_F(pki_registry, a_custom_ca_ends_the_hubs_own_pki) {
    const custom_ca c;
    const auto id = make_hub().hub->id;
    const auto other_hub = make_hub("other").hub->id;
    const std::uint32_t own_subject = pki::parse_pem(reg_.get_hub_ca(mine, id))->subject_hash;
    const auto issued = reg_.create_device(mine, device_create{id, "issued", "", false, false, {}});
    const auto custom = make_device(id, "custom").device;
    const auto own = pki::issue_client(c.ca, named("own"), pki::key_type::ec_p256, 1);
    reg_.set_device_certificate(mine, custom->id, own.cert_pem);
    const auto elsewhere = make_device(other_hub, "elsewhere").device;

    reg_.disable_hub(mine, id);
    listener_.calls.clear();
    reg_.set_hub_ca(mine, id, c.ca.cert_pem, c.challenge(id).cert_pem);
    // The hub changed, and the device whose issued certificate was deleted.
    ASSERT_EQ(listener_.calls.size(), 2u);
    EXPECT_EQ(listener_.calls[0].what, "hub");
    EXPECT_EQ(listener_.calls[1].after_id, issued.device->id);

    // Issued certificates are gone; custom ones stay; other hubs keep theirs.
    EXPECT_EQ(error_of([&] { reg_.get_device_certificate(mine, issued.device->id); }).kind,
              error_kind::not_found);
    EXPECT_FALSE(reg_.find_device_by_certificate(issued.device->certificate_fingerprint));
    EXPECT_TRUE(reg_.find_device(issued.device->id)->certificate_fingerprint.empty());
    EXPECT_EQ(reg_.get_device_certificate(mine, custom->id).certificate_pem, own.cert_pem);
    EXPECT_EQ(reg_.find_device_by_certificate(fingerprint_of(own.cert_pem))->id, custom->id);
    EXPECT_TRUE(reg_.find_device_by_certificate(elsewhere->certificate_fingerprint));
    // The CA index follows.
    EXPECT_TRUE(reg_.cas_with_subject(own_subject).empty());
    const auto found = reg_.cas_with_subject(pki::parse_pem(c.ca.cert_pem)->subject_hash);
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0]->hub_id, id);

    // No more renewals, no more certificates at creation.
    const auto e = error_of([&] { reg_.renew_device_certificate(mine, custom->id); });
    EXPECT_EQ(e.kind, error_kind::precondition_failed);
    EXPECT_FALSE(
        reg_.create_device(mine, device_create{id, "new", "", false, false, {}}).certificate);
    // Custom device certificates still can be set.
    const auto own2 = pki::issue_client(c.ca, named("own2"), pki::key_type::ec_p256, 1);
    EXPECT_NO_THROW(reg_.set_device_certificate(mine, issued.device->id, own2.cert_pem));
    // Auto-provisioning may be turned on now.
    hub_update on;
    on.enable_device_auto_provisioning = true;
    EXPECT_TRUE(reg_.update_hub(mine, id, on).hub->enable_device_auto_provisioning);
    // Another custom CA may replace this one (still disabled).
    const custom_ca next;
    EXPECT_NO_THROW(reg_.set_hub_ca(mine, id, next.ca.cert_pem, next.challenge(id).cert_pem));
    EXPECT_EQ(reg_.get_hub_ca(mine, id), next.ca.cert_pem);
}

TEST_F(pki_registry, two_hubs_may_share_a_custom_ca) {
    const custom_ca c;
    const auto a = custom_hub(c, "a");
    const auto b = custom_hub(c, "b");
    const auto found = reg_.cas_with_subject(pki::parse_pem(c.ca.cert_pem)->subject_hash);
    ASSERT_EQ(found.size(), 2u);
    EXPECT_LT(found[0]->hub_id, found[1]->hub_id);
}

TEST_F(pki_registry, deleting_frees_certificates_and_cas) {
    const auto hub = make_hub().hub->id;
    const auto subject = pki::parse_pem(reg_.get_hub_ca(mine, hub))->subject_hash;
    const auto d = make_device(hub).device;
    const auto fp = d->certificate_fingerprint;
    const custom_ca c;
    const auto own = c.challenge("own").cert_pem;
    const auto e = make_device(hub).device;
    reg_.set_device_certificate(mine, e->id, own);
    reg_.delete_device(mine, d->id);
    EXPECT_FALSE(reg_.find_device_by_certificate(fp));
    reg_.delete_device(mine, e->id);
    // Its certificate may be given to another device.
    const auto f = make_device(hub).device;
    EXPECT_NO_THROW(reg_.set_device_certificate(mine, f->id, own));
    reg_.delete_hub(mine, hub, true);
    EXPECT_FALSE(reg_.find_hub_ca(hub));
    EXPECT_TRUE(reg_.cas_with_subject(subject).empty());
    EXPECT_FALSE(reg_.find_device_by_certificate(fingerprint_of(own)));
}

TEST_F(pki_registry, failed_writes_leave_no_certificate_behind) {
    const auto hub = make_hub().hub->id;
    const auto d = make_device(hub).device;
    db_.fail = true;
    EXPECT_THROW(reg_.create_device(mine, device_create{hub, "x", "", false, false, {}}),
                 std::runtime_error);
    EXPECT_FALSE(reg_.find_device_by_name(hub, "x"));
    EXPECT_THROW(reg_.renew_device_certificate(mine, d->id), std::runtime_error);
    EXPECT_EQ(reg_.find_device(d->id), d);
    EXPECT_EQ(reg_.find_device_by_certificate(d->certificate_fingerprint), d);
    const custom_ca c;
    EXPECT_THROW(reg_.set_device_certificate(mine, d->id, c.challenge("y").cert_pem),
                 std::runtime_error);
    EXPECT_EQ(reg_.find_device(d->id), d);
    db_.fail = false;
    reg_.disable_hub(mine, hub);
    db_.fail = true;
    EXPECT_THROW(reg_.set_hub_ca(mine, hub, c.ca.cert_pem, c.challenge(hub).cert_pem),
                 std::runtime_error);
    EXPECT_FALSE(reg_.find_hub_ca(hub)->custom);
    EXPECT_EQ(reg_.find_device_by_certificate(d->certificate_fingerprint), d);
    db_.fail = false;
}

TEST_F(pki_registry, provisioning_creates_once) {
    const custom_ca c;
    const auto hub = custom_hub(c)->id;
    listener_.calls.clear();
    const auto first = reg_.provision_device(hub, "sensor-7", "auto-provisioned from 10.0.0.1:5");
    ASSERT_TRUE(first.device);
    EXPECT_TRUE(first.created);
    EXPECT_EQ(first.device->name, "sensor-7");
    EXPECT_EQ(first.device->hub_id, hub);
    EXPECT_EQ(first.device->description, "auto-provisioned from 10.0.0.1:5");
    EXPECT_FALSE(first.device->allow_insecure);
    EXPECT_FALSE(first.device->allow_multiple_connections);
    EXPECT_TRUE(first.device->filters.publish.topics.empty());
    EXPECT_TRUE(first.device->certificate_fingerprint.empty());
    EXPECT_EQ(listener_.calls.size(), 1u);
    const auto again = reg_.provision_device(hub, "sensor-7", "other");
    EXPECT_FALSE(again.created);
    EXPECT_EQ(again.device, first.device);
    EXPECT_EQ(listener_.calls.size(), 1u);
    EXPECT_EQ(error_of([&] { reg_.provision_device(hub, "a/b", ""); }).kind,
              error_kind::invalid_arguments);
    EXPECT_EQ(error_of([&] { reg_.provision_device(hub, "", ""); }).kind,
              error_kind::invalid_arguments);
    EXPECT_EQ(error_of([&] { reg_.provision_device(make_uuid(), "x", ""); }).kind,
              error_kind::not_found);
}

TEST(registry_pki_persistence, round_trip_through_sqlite) {
    store::testing::temp_dir dir;
    const custom_ca c;
    std::string hub_id;
    std::string custom_hub_id;
    std::string ca_pem;
    device_created issued;
    device_ptr with_custom;
    const auto own = c.challenge("own").cert_pem;
    {
        auto db = store::open_sqlite_registry(dir.str());
        registry reg(*db, [] { return std::uint64_t{1'700'000'000'000}; });
        reg.set_device_key_type(pki::key_type::ec_p256);
        hub_create h;
        h.plan = product_plan::plan_dedicated;
        hub_id = reg.create_hub(mine, h).hub->id;
        ca_pem = reg.get_hub_ca(mine, hub_id);
        issued = reg.create_device(mine, device_create{hub_id, "issued", "", false, false, {}});
        with_custom =
            reg.create_device(mine, device_create{hub_id, "custom", "", false, false, {}}).device;
        with_custom = reg.set_device_certificate(mine, with_custom->id, own).device.device;
        custom_hub_id = reg.create_hub(mine, h).hub->id;
        reg.disable_hub(mine, custom_hub_id);
        reg.set_hub_ca(mine, custom_hub_id, c.ca.cert_pem, c.challenge(custom_hub_id).cert_pem);
    }
    auto db = store::open_sqlite_registry(dir.str());
    registry reg(*db, [] { return std::uint64_t{1'700'000'000'000}; });
    reg.load();
    EXPECT_EQ(reg.get_hub_ca(mine, hub_id), ca_pem);
    EXPECT_FALSE(reg.find_hub_ca(hub_id)->custom);
    EXPECT_TRUE(reg.find_hub_ca(custom_hub_id)->custom);
    EXPECT_EQ(reg.get_hub_ca(mine, custom_hub_id), c.ca.cert_pem);
    EXPECT_EQ(reg.cas_with_subject(pki::parse_pem(c.ca.cert_pem)->subject_hash).size(), 1u);
    EXPECT_EQ(reg.get_device_certificate(mine, issued.device->id).certificate_pem,
              issued.certificate->crt);
    const auto back = reg.find_device_by_certificate(issued.device->certificate_fingerprint);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->certificate_fingerprint, issued.device->certificate_fingerprint);
    const auto custom_back = reg.find_device_by_certificate(fingerprint_of(own));
    ASSERT_TRUE(custom_back);
    EXPECT_TRUE(custom_back->has_custom_certificate);
    // Renewal still works after a restart: the CA key was kept.
    EXPECT_TRUE(reg.renew_device_certificate(mine, issued.device->id).certificate);
}

TEST(registry_pki_persistence, hubs_older_than_the_pki_get_a_ca_at_load) {
    auto db = store::make_memory_registry();
    store::hub_row row;
    row.id = make_uuid();
    row.project_id = mine.project_id;
    row.organization_id = mine.project_id;
    row.name = "old";
    row.product_plan = "plan_shared";
    row.events_topic_prefix = "$SCW/events";
    db->put_hub(row);
    registry reg(*db, [] { return std::uint64_t{1}; });
    reg.load();
    ASSERT_TRUE(reg.find_hub_ca(row.id));
    const std::string pem = reg.get_hub_ca(mine, row.id);
    // Written through: a second start finds the same CA.
    registry again(*db, [] { return std::uint64_t{1}; });
    again.load();
    EXPECT_EQ(again.get_hub_ca(mine, row.id), pem);
}

}  // namespace
}  // namespace iothub::hub
