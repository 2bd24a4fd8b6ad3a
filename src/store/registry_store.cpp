#include "store/registry_store.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "store/sqlite_connection.hpp"
#include "store/sqlite_schema.hpp"
#include "store/sqlite_store.hpp"

namespace iothub::store {

namespace {

using sqlite::connection;
using sqlite::reset_guard;
using sqlite::statement;

std::int64_t as_int(std::uint64_t v) {
    return static_cast<std::int64_t>(v);
}
std::uint64_t as_uint(std::int64_t v) {
    return static_cast<std::uint64_t>(v);
}

// ---------------------------------------------------------------------------------------
// SQLite

constexpr const char* hub_columns =
    "id, project_id, organization_id, name, product_plan, enabled, disable_events, "
    "events_topic_prefix, enable_device_auto_provisioning, has_custom_ca, presence_events, "
    "twins_graphite_push_uri, created_at_ms, updated_at_ms";

constexpr const char* device_columns =
    "id, hub_id, name, description, enabled, allow_insecure, allow_multiple_connections, "
    "publish_policy, subscribe_policy, has_custom_certificate, created_at_ms, updated_at_ms, "
    "last_activity_at_ms";

constexpr const char* api_key_columns =
    "access_key, secret_hash, project_id, description, created_at_ms";

struct registry_statements {
    statement begin_write;
    statement begin_read;
    statement commit;
    statement rollback;
    statement put_hub;
    statement erase_hub;
    statement erase_hub_devices;
    statement erase_hub_topics;
    statement put_device;
    statement erase_device;
    statement erase_device_topics;
    statement insert_topic;
    statement select_hubs;
    statement select_devices;
    statement select_topics;
    statement put_api_key;
    statement erase_api_key;
    statement select_api_keys;
    statement find_api_key;
    statement put_hub_ca;
    statement erase_hub_ca;
    statement erase_hub_certificates;
    statement erase_hub_issued;
    statement put_certificate;
    statement erase_certificate;
    statement select_cas;
    statement select_certificates;
};

registry_statements prepare(connection& db) {
    const std::string hubs = hub_columns;
    const std::string devices = device_columns;
    const std::string keys = api_key_columns;
    registry_statements s;
    s.begin_write = db.prepare("BEGIN IMMEDIATE");
    s.begin_read = db.prepare("BEGIN");
    s.commit = db.prepare("COMMIT");
    s.rollback = db.prepare("ROLLBACK");
    // An upsert, not INSERT OR REPLACE: REPLACE would silently delete whatever row collides
    // on another unique key (a device of the same name), where we want the write to fail.
    s.put_hub = db.prepare(
        "INSERT INTO hubs (" + hubs +
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
        "project_id = excluded.project_id, organization_id = excluded.organization_id, "
        "name = excluded.name, product_plan = excluded.product_plan, "
        "enabled = excluded.enabled, disable_events = excluded.disable_events, "
        "events_topic_prefix = excluded.events_topic_prefix, "
        "enable_device_auto_provisioning = excluded.enable_device_auto_provisioning, "
        "has_custom_ca = excluded.has_custom_ca, presence_events = excluded.presence_events, "
        "twins_graphite_push_uri = excluded.twins_graphite_push_uri, "
        "created_at_ms = excluded.created_at_ms, updated_at_ms = excluded.updated_at_ms");
    s.erase_hub = db.prepare("DELETE FROM hubs WHERE id = ?");
    s.erase_hub_devices = db.prepare("DELETE FROM devices WHERE hub_id = ?");
    s.erase_hub_topics = db.prepare(
        "DELETE FROM device_filter_topics WHERE device_id IN "
        "(SELECT id FROM devices WHERE hub_id = ?)");
    s.put_device = db.prepare(
        "INSERT INTO devices (" + devices +
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
        "hub_id = excluded.hub_id, name = excluded.name, description = excluded.description, "
        "enabled = excluded.enabled, allow_insecure = excluded.allow_insecure, "
        "allow_multiple_connections = excluded.allow_multiple_connections, "
        "publish_policy = excluded.publish_policy, subscribe_policy = excluded.subscribe_policy, "
        "has_custom_certificate = excluded.has_custom_certificate, "
        "created_at_ms = excluded.created_at_ms, updated_at_ms = excluded.updated_at_ms, "
        "last_activity_at_ms = excluded.last_activity_at_ms");
    s.erase_device = db.prepare("DELETE FROM devices WHERE id = ?");
    s.erase_device_topics = db.prepare("DELETE FROM device_filter_topics WHERE device_id = ?");
    s.insert_topic = db.prepare(
        "INSERT INTO device_filter_topics (device_id, rule, seq, topic) VALUES (?, ?, ?, ?)");
    s.select_hubs = db.prepare("SELECT " + hubs + " FROM hubs ORDER BY id");
    s.select_devices = db.prepare("SELECT " + devices + " FROM devices ORDER BY id");
    s.select_topics = db.prepare(
        "SELECT rule, topic FROM device_filter_topics WHERE device_id = ? ORDER BY rule, seq");
    s.put_api_key =
        db.prepare("INSERT INTO api_keys (" + keys +
                   ") VALUES (?, ?, ?, ?, ?) ON CONFLICT (access_key) DO UPDATE SET "
                   "secret_hash = excluded.secret_hash, project_id = excluded.project_id, "
                   "description = excluded.description, created_at_ms = excluded.created_at_ms");
    s.erase_api_key = db.prepare("DELETE FROM api_keys WHERE access_key = ?");
    s.select_api_keys =
        db.prepare("SELECT " + keys + " FROM api_keys ORDER BY created_at_ms, access_key");
    s.find_api_key = db.prepare("SELECT " + keys + " FROM api_keys WHERE secret_hash = ?");
    s.put_hub_ca = db.prepare(
        "INSERT INTO hub_cas (hub_id, cert_pem, key_pem, custom) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (hub_id) DO UPDATE SET cert_pem = excluded.cert_pem, "
        "key_pem = excluded.key_pem, custom = excluded.custom");
    s.erase_hub_ca = db.prepare("DELETE FROM hub_cas WHERE hub_id = ?");
    s.erase_hub_certificates = db.prepare(
        "DELETE FROM device_certificates WHERE device_id IN "
        "(SELECT id FROM devices WHERE hub_id = ?)");
    s.erase_hub_issued = db.prepare(
        "DELETE FROM device_certificates WHERE kind = 'issued' AND device_id IN "
        "(SELECT id FROM devices WHERE hub_id = ?)");
    // A fingerprint held by another device violates the UNIQUE constraint: the write fails.
    s.put_certificate = db.prepare(
        "INSERT INTO device_certificates (device_id, cert_pem, fingerprint, kind) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET "
        "cert_pem = excluded.cert_pem, fingerprint = excluded.fingerprint, kind = excluded.kind");
    s.erase_certificate = db.prepare("DELETE FROM device_certificates WHERE device_id = ?");
    s.select_cas =
        db.prepare("SELECT hub_id, cert_pem, key_pem, custom FROM hub_cas ORDER BY hub_id");
    s.select_certificates = db.prepare(
        "SELECT device_id, cert_pem, fingerprint, kind FROM device_certificates "
        "ORDER BY device_id");
    return s;
}

hub_row read_hub(const statement& s) {
    hub_row h;
    h.id = s.column_string(0);
    h.project_id = s.column_string(1);
    h.organization_id = s.column_string(2);
    h.name = s.column_string(3);
    h.product_plan = s.column_string(4);
    h.enabled = s.column_int(5) != 0;
    h.disable_events = s.column_int(6) != 0;
    h.events_topic_prefix = s.column_string(7);
    h.enable_device_auto_provisioning = s.column_int(8) != 0;
    h.has_custom_ca = s.column_int(9) != 0;
    h.presence_events = s.column_int(10) != 0;
    h.twins_graphite_push_uri = s.column_string(11);
    h.created_at_ms = as_uint(s.column_int(12));
    h.updated_at_ms = as_uint(s.column_int(13));
    return h;
}

device_row read_device(const statement& s) {
    device_row d;
    d.id = s.column_string(0);
    d.hub_id = s.column_string(1);
    d.name = s.column_string(2);
    d.description = s.column_string(3);
    d.enabled = s.column_int(4) != 0;
    d.allow_insecure = s.column_int(5) != 0;
    d.allow_multiple_connections = s.column_int(6) != 0;
    d.publish_policy = s.column_string(7);
    d.subscribe_policy = s.column_string(8);
    d.has_custom_certificate = s.column_int(9) != 0;
    d.created_at_ms = as_uint(s.column_int(10));
    d.updated_at_ms = as_uint(s.column_int(11));
    d.last_activity_at_ms = as_uint(s.column_int(12));
    return d;
}

api_key_row read_api_key(const statement& s) {
    api_key_row k;
    k.access_key = s.column_string(0);
    k.secret_hash = s.column_string(1);
    k.project_id = s.column_string(2);
    k.description = s.column_string(3);
    k.created_at_ms = as_uint(s.column_int(4));
    return k;
}

class sqlite_registry final : public registry_store {
public:
    explicit sqlite_registry(const std::string& data_dir) {
        sqlite::make_data_dir(data_dir);
        const std::string path = (std::filesystem::path(data_dir) / sqlite_file_name).string();
        try {
            sqlite::open_options options;
            // Registry writes are rare and the API reports them as done: sync every commit.
            options.synchronous_pragma = "PRAGMA synchronous = FULL";
            db_ = sqlite::open_migrated(path, options);
            s_ = prepare(db_);
        } catch (const std::exception& e) {
            throw std::runtime_error(std::string("cannot open the iothub registry: ") + e.what());
        }
    }

    ~sqlite_registry() override {
        s_ = {};  // statements first, so the connection closes at once
        db_.close();
    }

    void load(const std::function<void(hub_row&&)>& hub,
              const std::function<void(device_row&&)>& device,
              const std::function<void(hub_ca_row&&)>& ca,
              const std::function<void(device_certificate_row&&)>& certificate) override {
        std::lock_guard lock(mutex_);
        // One read transaction: everything comes from the same snapshot.
        s_.begin_read.run();
        try {
            if (hub) load_hubs(hub);
            if (device) load_devices(device);
            if (ca) load_cas(ca);
            if (certificate) load_certificates(certificate);
        } catch (...) {
            rollback();
            throw;
        }
        rollback();
    }

    void put_hub(const hub_row& h) override {
        write([&] { bind_and_run_hub(h); });
    }

    void erase_hub(const std::string& id) override {
        write([&] {
            for (statement* s : {&s_.erase_hub_certificates, &s_.erase_hub_topics,
                                 &s_.erase_hub_devices, &s_.erase_hub_ca, &s_.erase_hub}) {
                s->bind_text(1, id);
                s->run();
            }
        });
    }

    void put_device(const device_row& d) override {
        write([&] { store_device(d); });
    }

    void put_devices(const std::vector<device_row>& ds) override {
        write([&] {
            for (const auto& d : ds) store_device(d);
        });
    }

    void erase_device(const std::string& id) override {
        write([&] {
            for (statement* s :
                 {&s_.erase_certificate, &s_.erase_device_topics, &s_.erase_device}) {
                s->bind_text(1, id);
                s->run();
            }
        });
    }

    void put_hub_ca(const hub_row& h, const hub_ca_row& ca, bool drop_issued) override {
        write([&] {
            bind_and_run_hub(h);
            statement& s = s_.put_hub_ca;
            s.bind_text(1, ca.hub_id);
            s.bind_text(2, ca.cert_pem);
            s.bind_text(3, ca.key_pem);
            s.bind_int(4, ca.custom ? 1 : 0);
            s.run();
            if (drop_issued) {
                s_.erase_hub_issued.bind_text(1, h.id);
                s_.erase_hub_issued.run();
            }
        });
    }

    void put_device_certificate(const device_row& d, const device_certificate_row& c) override {
        write([&] {
            store_device(d);
            statement& s = s_.put_certificate;
            s.bind_text(1, c.device_id);
            s.bind_text(2, c.cert_pem);
            s.bind_text(3, c.fingerprint);
            s.bind_text(4, c.kind);
            s.run();
        });
    }

    void put_api_key(const api_key_row& k) override {
        write([&] {
            statement& s = s_.put_api_key;
            s.bind_text(1, k.access_key);
            s.bind_text(2, k.secret_hash);
            s.bind_text(3, k.project_id);
            s.bind_text(4, k.description);
            s.bind_int(5, as_int(k.created_at_ms));
            s.run();
        });
    }

    bool erase_api_key(const std::string& access_key) override {
        bool erased = false;
        write([&] {
            statement& s = s_.erase_api_key;
            s.bind_text(1, access_key);
            s.run();
            erased = sqlite3_changes(db_.get()) > 0;
        });
        return erased;
    }

    std::vector<api_key_row> list_api_keys() override {
        std::lock_guard lock(mutex_);
        std::vector<api_key_row> out;
        statement& s = s_.select_api_keys;
        reset_guard guard(s);
        while (s.step()) out.push_back(read_api_key(s));
        return out;
    }

    std::optional<api_key_row> find_api_key_by_hash(const std::string& secret_hash) override {
        std::lock_guard lock(mutex_);
        statement& s = s_.find_api_key;
        reset_guard guard(s);
        s.bind_text(1, secret_hash);
        if (!s.step()) return std::nullopt;
        return read_api_key(s);
    }

private:
    // Runs `body` in one write transaction; on any failure rolls back and rethrows.
    template <typename F>
    void write(F&& body) {
        std::lock_guard lock(mutex_);
        s_.begin_write.run();
        try {
            body();
            s_.commit.run();
        } catch (...) {
            rollback();
            throw;
        }
    }

    void rollback() noexcept {
        if (sqlite3_get_autocommit(db_.get()) != 0)
            return;  // nothing open (COMMIT may have ended it)
        try {
            s_.rollback.run();
        } catch (const std::exception&) {
            // The error that made us roll back is the one worth reporting.
        }
    }

    void load_hubs(const std::function<void(hub_row&&)>& fn) {
        statement& s = s_.select_hubs;
        reset_guard guard(s);
        while (s.step()) fn(read_hub(s));
    }

    void load_devices(const std::function<void(device_row&&)>& fn) {
        statement& s = s_.select_devices;
        reset_guard guard(s);
        while (s.step()) {
            device_row d = read_device(s);
            load_topics(d);
            fn(std::move(d));
        }
    }

    void load_cas(const std::function<void(hub_ca_row&&)>& fn) {
        statement& s = s_.select_cas;
        reset_guard guard(s);
        while (s.step()) {
            hub_ca_row r;
            r.hub_id = s.column_string(0);
            r.cert_pem = s.column_string(1);
            r.key_pem = s.column_string(2);
            r.custom = s.column_int(3) != 0;
            fn(std::move(r));
        }
    }

    void load_certificates(const std::function<void(device_certificate_row&&)>& fn) {
        statement& s = s_.select_certificates;
        reset_guard guard(s);
        while (s.step()) {
            device_certificate_row r;
            r.device_id = s.column_string(0);
            r.cert_pem = s.column_string(1);
            r.fingerprint = s.column_string(2);
            r.kind = s.column_string(3);
            fn(std::move(r));
        }
    }

    void load_topics(device_row& d) {
        statement& s = s_.select_topics;
        reset_guard guard(s);
        s.bind_text(1, d.id);
        while (s.step()) {
            auto& list = s.column_string(0) == "publish" ? d.publish_topics : d.subscribe_topics;
            list.push_back(s.column_string(1));
        }
    }

    void bind_and_run_hub(const hub_row& h) {
        statement& s = s_.put_hub;
        s.bind_text(1, h.id);
        s.bind_text(2, h.project_id);
        s.bind_text(3, h.organization_id);
        s.bind_text(4, h.name);
        s.bind_text(5, h.product_plan);
        s.bind_int(6, h.enabled ? 1 : 0);
        s.bind_int(7, h.disable_events ? 1 : 0);
        s.bind_text(8, h.events_topic_prefix);
        s.bind_int(9, h.enable_device_auto_provisioning ? 1 : 0);
        s.bind_int(10, h.has_custom_ca ? 1 : 0);
        s.bind_int(11, h.presence_events ? 1 : 0);
        s.bind_text(12, h.twins_graphite_push_uri);
        s.bind_int(13, as_int(h.created_at_ms));
        s.bind_int(14, as_int(h.updated_at_ms));
        s.run();
    }

    void store_device(const device_row& d) {
        statement& s = s_.put_device;
        s.bind_text(1, d.id);
        s.bind_text(2, d.hub_id);
        s.bind_text(3, d.name);
        s.bind_text(4, d.description);
        s.bind_int(5, d.enabled ? 1 : 0);
        s.bind_int(6, d.allow_insecure ? 1 : 0);
        s.bind_int(7, d.allow_multiple_connections ? 1 : 0);
        s.bind_text(8, d.publish_policy);
        s.bind_text(9, d.subscribe_policy);
        s.bind_int(10, d.has_custom_certificate ? 1 : 0);
        s.bind_int(11, as_int(d.created_at_ms));
        s.bind_int(12, as_int(d.updated_at_ms));
        s.bind_int(13, as_int(d.last_activity_at_ms));
        s.run();
        s_.erase_device_topics.bind_text(1, d.id);
        s_.erase_device_topics.run();
        store_topics(d.id, "publish", d.publish_topics);
        store_topics(d.id, "subscribe", d.subscribe_topics);
    }

    void store_topics(const std::string& device_id, std::string_view rule,
                      const std::vector<std::string>& topics) {
        std::int64_t seq = 0;
        for (const auto& topic : topics) {
            statement& s = s_.insert_topic;
            s.bind_text(1, device_id);
            s.bind_text(2, rule);
            s.bind_int(3, seq++);
            s.bind_text(4, topic);
            s.run();
        }
    }

    std::mutex mutex_;
    connection db_;
    registry_statements s_;  // guarded by mutex_
};

// ---------------------------------------------------------------------------------------
// Memory

class memory_registry final : public registry_store {
public:
    void load(const std::function<void(hub_row&&)>& hub,
              const std::function<void(device_row&&)>& device,
              const std::function<void(hub_ca_row&&)>& ca,
              const std::function<void(device_certificate_row&&)>& certificate) override {
        std::lock_guard lock(mutex_);
        if (hub)
            for (const auto& [id, h] : data_.hubs) hub(hub_row(h));
        if (device)
            for (const auto& [id, d] : data_.devices) device(device_row(d));
        if (ca)
            for (const auto& [id, c] : data_.cas) ca(hub_ca_row(c));
        if (certificate)
            for (const auto& [id, c] : data_.certificates) certificate(device_certificate_row(c));
    }

    void put_hub(const hub_row& h) override {
        std::lock_guard lock(mutex_);
        data_.hubs[h.id] = h;
    }

    void erase_hub(const std::string& id) override {
        std::lock_guard lock(mutex_);
        std::erase_if(data_.certificates, [&](const auto& entry) {
            const auto d = data_.devices.find(entry.first);
            return d != data_.devices.end() && d->second.hub_id == id;
        });
        data_.cas.erase(id);
        std::erase_if(data_.devices, [&](const auto& entry) { return entry.second.hub_id == id; });
        std::erase_if(data_.names, [&](const auto& entry) { return entry.first.first == id; });
        data_.hubs.erase(id);
    }

    void put_device(const device_row& d) override {
        std::lock_guard lock(mutex_);
        data_.put(d);
    }

    void put_devices(const std::vector<device_row>& ds) override {
        std::lock_guard lock(mutex_);
        // All or nothing, as one SQLite transaction: apply to a copy, then swap it in.
        tables next = data_;
        for (const auto& d : ds) next.put(d);
        data_ = std::move(next);
    }

    void erase_device(const std::string& id) override {
        std::lock_guard lock(mutex_);
        data_.erase_device(id);
        data_.certificates.erase(id);
    }

    void put_hub_ca(const hub_row& h, const hub_ca_row& ca, bool drop_issued) override {
        std::lock_guard lock(mutex_);
        data_.hubs[h.id] = h;
        data_.cas[ca.hub_id] = ca;
        if (!drop_issued) return;
        std::erase_if(data_.certificates, [&](const auto& entry) {
            const auto d = data_.devices.find(entry.first);
            return entry.second.kind == "issued" && d != data_.devices.end() &&
                   d->second.hub_id == h.id;
        });
    }

    void put_device_certificate(const device_row& d, const device_certificate_row& c) override {
        std::lock_guard lock(mutex_);
        for (const auto& [device_id, other] : data_.certificates) {
            if (device_id != c.device_id && other.fingerprint == c.fingerprint) {
                throw std::runtime_error(
                    "registry: another device has a certificate of "
                    "fingerprint " +
                    c.fingerprint);
            }
        }
        data_.put(d);  // checks before it changes anything
        data_.certificates[c.device_id] = c;
    }

    void put_api_key(const api_key_row& k) override {
        std::lock_guard lock(mutex_);
        for (const auto& [access_key, other] : data_.keys) {
            if (access_key != k.access_key && other.secret_hash == k.secret_hash) {
                throw std::runtime_error("registry: an API key with that secret already exists");
            }
        }
        data_.keys[k.access_key] = k;
    }

    bool erase_api_key(const std::string& access_key) override {
        std::lock_guard lock(mutex_);
        return data_.keys.erase(access_key) > 0;
    }

    std::vector<api_key_row> list_api_keys() override {
        std::lock_guard lock(mutex_);
        std::vector<api_key_row> out;
        for (const auto& [access_key, k] : data_.keys) out.push_back(k);
        // Stable on a map in access-key order: the SQLite order (created_at_ms, access_key).
        std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
            return a.created_at_ms < b.created_at_ms;
        });
        return out;
    }

    std::optional<api_key_row> find_api_key_by_hash(const std::string& secret_hash) override {
        std::lock_guard lock(mutex_);
        for (const auto& [access_key, k] : data_.keys) {
            if (k.secret_hash == secret_hash) return k;
        }
        return std::nullopt;
    }

private:
    struct tables {
        std::map<std::string, hub_row> hubs;  // ordered: load() gives id order, as SQLite does
        std::map<std::string, device_row> devices;
        // The unique (hub_id, name) index of the SQLite table, to the device id.
        std::map<std::pair<std::string, std::string>, std::string> names;
        std::map<std::string, api_key_row> keys;
        std::map<std::string, hub_ca_row> cas;                       // by hub id
        std::map<std::string, device_certificate_row> certificates;  // by device id

        void put(const device_row& d) {
            auto key = std::make_pair(d.hub_id, d.name);
            if (auto it = names.find(key); it != names.end() && it->second != d.id) {
                throw std::runtime_error("registry: hub " + d.hub_id +
                                         " already has a device named " + d.name);
            }
            erase_device(d.id);
            names.emplace(std::move(key), d.id);
            devices[d.id] = d;
        }

        void erase_device(const std::string& id) {
            const auto it = devices.find(id);
            if (it == devices.end()) return;
            names.erase({it->second.hub_id, it->second.name});
            devices.erase(it);
        }
    };

    std::mutex mutex_;
    tables data_;
};

}  // namespace

std::unique_ptr<registry_store> open_sqlite_registry(const std::string& data_dir) {
    return std::make_unique<sqlite_registry>(data_dir);
}

std::unique_ptr<registry_store> make_memory_registry() {
    return std::make_unique<memory_registry>();
}

}  // namespace iothub::store
