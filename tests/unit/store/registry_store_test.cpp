#include "store/registry_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "store/sqlite_schema.hpp"
#include "store/sqlite_store.hpp"
#include "store/temp_dir.hpp"

namespace iothub::store {
namespace {

using testing::temp_dir;

struct loaded {
    std::vector<hub_row> hubs;
    std::vector<device_row> devices;
    std::vector<hub_ca_row> cas;
    std::vector<device_certificate_row> certificates;
};

loaded load_all(registry_store& s) {
    loaded out;
    s.load([&](hub_row&& h) { out.hubs.push_back(std::move(h)); },
           [&](device_row&& d) { out.devices.push_back(std::move(d)); },
           [&](hub_ca_row&& c) { out.cas.push_back(std::move(c)); },
           [&](device_certificate_row&& c) { out.certificates.push_back(std::move(c)); });
    return out;
}

hub_ca_row ca(const std::string& hub_id, bool custom = false) {
    return {hub_id, "-----BEGIN CERTIFICATE-----\nca of " + hub_id + "\n",
            custom ? "" : "key of " + hub_id, custom};
}

device_certificate_row cert(const std::string& device_id, const std::string& fingerprint,
                            const std::string& kind = "issued") {
    return {device_id, "pem of " + device_id + " " + fingerprint, fingerprint, kind};
}

hub_row hub(const std::string& id) {
    hub_row h;
    h.id = id;
    h.project_id = "project-" + id;
    h.organization_id = "org-" + id;
    h.name = "hub " + id;
    h.product_plan = "plan_dedicated";
    h.enabled = false;
    h.disable_events = true;
    h.events_topic_prefix = "custom/events";
    h.enable_device_auto_provisioning = true;
    h.has_custom_ca = true;
    h.presence_events = false;
    h.twins_graphite_push_uri = "tcp://graphite:2003";
    h.created_at_ms = 1'700'000'000'001;
    h.updated_at_ms = 1'700'000'000'002;
    return h;
}

device_row device(const std::string& id, const std::string& hub_id, const std::string& name) {
    device_row d;
    d.id = id;
    d.hub_id = hub_id;
    d.name = name;
    d.description = "a device\nwith two lines";
    d.enabled = false;
    d.allow_insecure = true;
    d.allow_multiple_connections = true;
    d.publish_policy = "accept";
    d.publish_topics = {"a/+/b", "", "{{ device.id }}/#", std::string(70000, 'x')};
    d.subscribe_policy = "reject";
    d.subscribe_topics = {"c/d"};
    d.has_custom_certificate = true;
    d.created_at_ms = 10;
    d.updated_at_ms = 20;
    d.last_activity_at_ms = 30;
    return d;
}

api_key_row key(const std::string& access, const std::string& hash, std::uint64_t created) {
    return {access, hash, "project-1", "key " + access, created};
}

// Every behaviour is checked against both implementations: they must not drift apart.
class registry_store_test : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override { reopen(); }

    void reopen() {
        if (GetParam() == "sqlite") {
            store_.reset();
            store_ = open_sqlite_registry(dir_.sub("data"));
        } else if (!store_) {
            store_ = make_memory_registry();
        }
    }

    temp_dir dir_;
    std::unique_ptr<registry_store> store_;
};

TEST_P(registry_store_test, empty_store_loads_nothing) {
    const auto all = load_all(*store_);
    EXPECT_TRUE(all.hubs.empty());
    EXPECT_TRUE(all.devices.empty());
    EXPECT_TRUE(store_->list_api_keys().empty());
}

TEST_P(registry_store_test, round_trips_every_field_in_id_order) {
    store_->put_hub(hub("h2"));
    store_->put_hub(hub("h1"));
    store_->put_device(device("d2", "h1", "second"));
    store_->put_device(device("d1", "h2", "first"));
    reopen();
    const auto all = load_all(*store_);
    ASSERT_EQ(all.hubs.size(), 2u);
    EXPECT_EQ(all.hubs[0], hub("h1"));
    EXPECT_EQ(all.hubs[1], hub("h2"));
    ASSERT_EQ(all.devices.size(), 2u);
    EXPECT_EQ(all.devices[0], device("d1", "h2", "first"));
    EXPECT_EQ(all.devices[1], device("d2", "h1", "second"));
}

TEST_P(registry_store_test, put_replaces_a_row_and_its_topics) {
    store_->put_hub(hub("h1"));
    hub_row changed = hub("h1");
    changed.name = "renamed";
    changed.twins_graphite_push_uri.clear();
    store_->put_hub(changed);

    store_->put_device(device("d1", "h1", "n"));
    device_row d = device("d1", "h1", "n");
    d.publish_topics = {"only/one"};
    d.subscribe_topics.clear();
    store_->put_device(d);
    reopen();
    const auto all = load_all(*store_);
    ASSERT_EQ(all.hubs.size(), 1u);
    EXPECT_EQ(all.hubs[0], changed);
    ASSERT_EQ(all.devices.size(), 1u);
    EXPECT_EQ(all.devices[0], d);
}

TEST_P(registry_store_test, device_names_are_unique_per_hub_and_a_clash_changes_nothing) {
    store_->put_device(device("d1", "h1", "same"));
    store_->put_device(device("d2", "h2", "same"));  // another hub: fine
    EXPECT_THROW(store_->put_device(device("d3", "h1", "same")), std::runtime_error);
    device_row moved = device("d2", "h1", "same");
    moved.publish_topics = {"new"};
    EXPECT_THROW(store_->put_device(moved), std::runtime_error);
    reopen();
    const auto all = load_all(*store_);
    ASSERT_EQ(all.devices.size(), 2u);
    EXPECT_EQ(all.devices[0], device("d1", "h1", "same"));
    EXPECT_EQ(all.devices[1], device("d2", "h2", "same"));
}

TEST_P(registry_store_test, put_devices_is_all_or_nothing) {
    store_->put_device(device("d0", "h1", "taken"));
    const std::vector<device_row> batch = {device("d1", "h1", "a"), device("d2", "h1", "taken")};
    EXPECT_THROW(store_->put_devices(batch), std::runtime_error);
    EXPECT_EQ(load_all(*store_).devices.size(), 1u);

    store_->put_devices({device("d1", "h1", "a"), device("d2", "h1", "b")});
    reopen();
    EXPECT_EQ(load_all(*store_).devices.size(), 3u);
}

TEST_P(registry_store_test, a_device_may_take_a_name_freed_in_the_same_batch) {
    store_->put_device(device("d1", "h1", "a"));
    // d1 moves to another hub, and d2 takes its old name: valid once the batch is applied.
    store_->put_devices({device("d1", "h2", "a"), device("d2", "h1", "a")});
    EXPECT_EQ(load_all(*store_).devices.size(), 2u);
}

TEST_P(registry_store_test, erase_hub_takes_its_devices_only) {
    store_->put_hub(hub("h1"));
    store_->put_hub(hub("h2"));
    store_->put_device(device("d1", "h1", "a"));
    store_->put_device(device("d2", "h1", "b"));
    store_->put_device(device("d3", "h2", "a"));
    store_->erase_hub("h1");
    store_->erase_hub("absent");
    reopen();
    const auto all = load_all(*store_);
    ASSERT_EQ(all.hubs.size(), 1u);
    EXPECT_EQ(all.hubs[0].id, "h2");
    ASSERT_EQ(all.devices.size(), 1u);
    EXPECT_EQ(all.devices[0].id, "d3");
    // The erased names are free again.
    store_->put_device(device("d4", "h1", "a"));
}

TEST_P(registry_store_test, erase_device_frees_its_name) {
    store_->put_device(device("d1", "h1", "a"));
    store_->erase_device("d1");
    store_->erase_device("absent");
    EXPECT_TRUE(load_all(*store_).devices.empty());
    store_->put_device(device("d2", "h1", "a"));
    reopen();
    ASSERT_EQ(load_all(*store_).devices.size(), 1u);
}

TEST_P(registry_store_test, api_keys) {
    store_->put_api_key(key("SCWB", "hash-b", 5));
    store_->put_api_key(key("SCWA", "hash-a", 5));
    store_->put_api_key(key("SCWC", "hash-c", 1));
    reopen();
    const auto keys = store_->list_api_keys();
    ASSERT_EQ(keys.size(), 3u);
    EXPECT_EQ(keys[0], key("SCWC", "hash-c", 1));
    EXPECT_EQ(keys[1], key("SCWA", "hash-a", 5));
    EXPECT_EQ(keys[2], key("SCWB", "hash-b", 5));

    EXPECT_EQ(store_->find_api_key_by_hash("hash-a"), key("SCWA", "hash-a", 5));
    EXPECT_EQ(store_->find_api_key_by_hash("nope"), std::nullopt);
    EXPECT_THROW(store_->put_api_key(key("SCWD", "hash-a", 9)), std::runtime_error);

    EXPECT_TRUE(store_->erase_api_key("SCWA"));
    EXPECT_FALSE(store_->erase_api_key("SCWA"));
    reopen();
    EXPECT_EQ(store_->list_api_keys().size(), 2u);
    EXPECT_EQ(store_->find_api_key_by_hash("hash-a"), std::nullopt);
}

TEST_P(registry_store_test, hub_cas_round_trip_and_replace) {
    store_->put_hub_ca(hub("h2"), ca("h2"), false);
    store_->put_hub_ca(hub("h1"), ca("h1"), false);
    reopen();
    auto all = load_all(*store_);
    ASSERT_EQ(all.hubs.size(), 2u);
    EXPECT_EQ(all.hubs[0], hub("h1"));
    ASSERT_EQ(all.cas.size(), 2u);
    EXPECT_EQ(all.cas[0], ca("h1"));
    EXPECT_EQ(all.cas[1], ca("h2"));
    hub_row changed = hub("h1");
    changed.name = "custom now";
    store_->put_hub_ca(changed, ca("h1", true), false);
    reopen();
    all = load_all(*store_);
    EXPECT_EQ(all.hubs[0], changed);
    EXPECT_EQ(all.cas[0], ca("h1", true));
    EXPECT_EQ(all.cas.size(), 2u);
    // The two-callback load still reads hubs and devices.
    std::size_t hubs = 0;
    store_->load([&](hub_row&&) { ++hubs; }, [](device_row&&) {});
    EXPECT_EQ(hubs, 2u);
}

TEST_P(registry_store_test, device_certificates_are_unique_and_replaced) {
    store_->put_hub(hub("h1"));
    store_->put_device_certificate(device("d1", "h1", "a"), cert("d1", "f1"));
    store_->put_device_certificate(device("d2", "h1", "b"), cert("d2", "f2", "custom"));
    // Another device with a fingerprint in use: nothing is written, not even the device.
    EXPECT_THROW(store_->put_device_certificate(device("d3", "h1", "c"), cert("d3", "f1")),
                 std::runtime_error);
    device_row renamed = device("d2", "h1", "b");
    renamed.description = "changed";
    EXPECT_THROW(store_->put_device_certificate(renamed, cert("d2", "f1")), std::runtime_error);
    // The same device may take a new certificate, or keep its fingerprint.
    store_->put_device_certificate(device("d1", "h1", "a"), cert("d1", "f3"));
    store_->put_device_certificate(device("d1", "h1", "a"), cert("d1", "f3", "custom"));
    reopen();
    auto all = load_all(*store_);
    ASSERT_EQ(all.devices.size(), 2u);
    EXPECT_EQ(all.devices[1], device("d2", "h1", "b"));
    ASSERT_EQ(all.certificates.size(), 2u);
    EXPECT_EQ(all.certificates[0], cert("d1", "f3", "custom"));
    EXPECT_EQ(all.certificates[1], cert("d2", "f2", "custom"));
    // The old fingerprint is free again.
    store_->put_device_certificate(device("d3", "h1", "c"), cert("d3", "f1"));
    EXPECT_EQ(load_all(*store_).certificates.size(), 3u);
}

TEST_P(registry_store_test, a_custom_ca_drops_the_hubs_issued_certificates_only) {
    store_->put_hub_ca(hub("h1"), ca("h1"), false);
    store_->put_hub_ca(hub("h2"), ca("h2"), false);
    store_->put_device_certificate(device("d1", "h1", "a"), cert("d1", "f1"));
    store_->put_device_certificate(device("d2", "h1", "b"), cert("d2", "f2", "custom"));
    store_->put_device_certificate(device("d3", "h2", "a"), cert("d3", "f3"));
    store_->put_hub_ca(hub("h1"), ca("h1", true), true);
    reopen();
    const auto all = load_all(*store_);
    ASSERT_EQ(all.certificates.size(), 2u);
    EXPECT_EQ(all.certificates[0].device_id, "d2");
    EXPECT_EQ(all.certificates[1].device_id, "d3");
    EXPECT_EQ(all.devices.size(), 3u);
}

TEST_P(registry_store_test, erasing_takes_cas_and_certificates_along) {
    store_->put_hub_ca(hub("h1"), ca("h1"), false);
    store_->put_hub_ca(hub("h2"), ca("h2"), false);
    store_->put_device_certificate(device("d1", "h1", "a"), cert("d1", "f1"));
    store_->put_device_certificate(device("d2", "h2", "a"), cert("d2", "f2"));
    store_->put_device_certificate(device("d3", "h2", "b"), cert("d3", "f3"));
    store_->erase_hub("h1");
    store_->erase_device("d2");
    reopen();
    const auto all = load_all(*store_);
    ASSERT_EQ(all.cas.size(), 1u);
    EXPECT_EQ(all.cas[0].hub_id, "h2");
    ASSERT_EQ(all.certificates.size(), 1u);
    EXPECT_EQ(all.certificates[0].device_id, "d3");
    // Their fingerprints can be used again.
    store_->put_device_certificate(device("d4", "h2", "c"), cert("d4", "f1"));
    store_->put_device_certificate(device("d5", "h2", "d"), cert("d5", "f2"));
}

INSTANTIATE_TEST_SUITE_P(both, registry_store_test, ::testing::Values("sqlite", "memory"),
                         [](const auto& info) { return info.param; });

// --- SQLite only

void sqlite_exec(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    const std::string message = error != nullptr ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << message;
}

std::int64_t sqlite_int(const std::string& path, const std::string& sql) {
    sqlite::connection db(path, SQLITE_OPEN_READONLY);
    return db.query_int(sql);
}

TEST(sqlite_registry, creates_the_data_dir_private_and_migrates) {
    temp_dir dir;
    const std::string data = dir.sub("a/b");
    auto s = open_sqlite_registry(data);
    struct stat st {};
    ASSERT_EQ(::stat(data.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    const std::string db = data + "/" + sqlite_file_name;
    EXPECT_EQ(sqlite_int(db, "SELECT value FROM meta WHERE key = 'schema_version'"),
              sqlite::schema_version);
    sqlite::connection c(db, SQLITE_OPEN_READONLY);
    EXPECT_EQ(c.query_text("PRAGMA journal_mode"), "wal");
}

TEST(sqlite_registry, shares_the_file_with_the_message_store) {
    temp_dir dir;
    auto messages = open_sqlite_store(dir.str());
    auto registry = open_sqlite_registry(dir.str());
    registry->put_hub(hub("h1"));
    retained_record r;
    r.hub = "h1";
    r.topic = "t";
    r.payload = "p";
    messages->put_retained(r, {});
    messages->flush();
    EXPECT_EQ(load_all(*registry).hubs.size(), 1u);
    messages->close();
    registry.reset();
    auto again = open_sqlite_registry(dir.str());
    EXPECT_EQ(load_all(*again).hubs.size(), 1u);
}

TEST(sqlite_registry, upgrades_a_version_1_database) {
    temp_dir dir;
    {
        auto messages = open_sqlite_store(dir.str());
        retained_record r;
        r.hub = "h1";
        r.topic = "kept";
        r.payload = "p";
        messages->put_retained(r, {});
        messages->close();
    }
    // Make the file what a version-1 build left behind: no registry tables.
    const std::string db = dir.sub(sqlite_file_name);
    sqlite_exec(db,
                "DROP TABLE hubs; DROP TABLE devices; DROP TABLE device_filter_topics; "
                "DROP TABLE api_keys; DROP TABLE hub_cas; DROP TABLE device_certificates; "
                "UPDATE meta SET value = 1 WHERE key = 'schema_version'");
    auto registry = open_sqlite_registry(dir.str());
    registry->put_hub(hub("h1"));
    EXPECT_EQ(load_all(*registry).hubs.size(), 1u);
    EXPECT_EQ(sqlite_int(db, "SELECT value FROM meta WHERE key = 'schema_version'"),
              sqlite::schema_version);
    EXPECT_EQ(sqlite_int(db, "SELECT count(*) FROM retained"), 1);
}

TEST(sqlite_registry, upgrades_a_version_2_registry_keeping_it) {
    temp_dir dir;
    {
        auto registry = open_sqlite_registry(dir.str());
        registry->put_hub(hub("h1"));
        registry->put_device(device("d1", "h1", "a"));
    }
    const std::string db = dir.sub(sqlite_file_name);
    sqlite_exec(db,
                "DROP TABLE hub_cas; DROP TABLE device_certificates; "
                "UPDATE meta SET value = 2 WHERE key = 'schema_version'");
    auto registry = open_sqlite_registry(dir.str());
    const auto all = load_all(*registry);
    EXPECT_EQ(all.hubs.size(), 1u);
    EXPECT_EQ(all.devices.size(), 1u);
    EXPECT_TRUE(all.cas.empty());
    registry->put_hub_ca(hub("h1"), ca("h1"), false);
    EXPECT_EQ(sqlite_int(db, "SELECT count(*) FROM hub_cas"), 1);
    EXPECT_EQ(sqlite_int(db, "SELECT value FROM meta WHERE key = 'schema_version'"), 3);
}

TEST(sqlite_registry, refuses_a_file_that_is_not_a_directory) {
    temp_dir dir;
    sqlite_exec(dir.sub("file"), "CREATE TABLE t (x)");
    EXPECT_THROW(open_sqlite_registry(dir.sub("file")), std::runtime_error);
}

}  // namespace
}  // namespace iothub::store
