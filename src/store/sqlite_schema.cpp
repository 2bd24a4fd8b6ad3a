#include "store/sqlite_schema.hpp"

#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace iothub::store::sqlite {

namespace {

// migrations[n] takes a database from version n to version n + 1. To change the schema,
// append a step and raise `schema_version`; never edit a step that has shipped.
constexpr std::array<std::string_view, schema_version> migrations = {
    R"sql(
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE retained (
    hub TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    properties BLOB NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (hub, topic)
) STRICT;

CREATE TABLE sessions (
    hub TEXT NOT NULL,
    client_id TEXT NOT NULL,
    protocol_version INTEGER NOT NULL,
    expiry_interval INTEGER NOT NULL,
    disconnected_at_ms INTEGER NOT NULL,
    PRIMARY KEY (hub, client_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE session_subscriptions (
    hub TEXT NOT NULL,
    client_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    filter TEXT NOT NULL,
    qos INTEGER NOT NULL,
    no_local INTEGER NOT NULL,
    retain_as_published INTEGER NOT NULL,
    retain_handling INTEGER NOT NULL,
    identifier INTEGER NOT NULL,
    PRIMARY KEY (hub, client_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE session_messages (
    hub TEXT NOT NULL,
    client_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    properties BLOB NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    packet_id INTEGER NOT NULL,
    state INTEGER NOT NULL,
    dup INTEGER NOT NULL,
    PRIMARY KEY (hub, client_id, seq)
) STRICT;

CREATE TABLE session_incoming_qos2 (
    hub TEXT NOT NULL,
    client_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    packet_id INTEGER NOT NULL,
    PRIMARY KEY (hub, client_id, seq)
) STRICT, WITHOUT ROWID;
)sql",
    // 2: the device registry. Booleans are 0/1. A device's filter topics live in a child
    // table, one row per topic in list order, so no topic text needs escaping.
    R"sql(
CREATE TABLE hubs (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    name TEXT NOT NULL,
    product_plan TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    disable_events INTEGER NOT NULL,
    events_topic_prefix TEXT NOT NULL,
    enable_device_auto_provisioning INTEGER NOT NULL,
    has_custom_ca INTEGER NOT NULL,
    presence_events INTEGER NOT NULL,
    twins_graphite_push_uri TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    hub_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    allow_insecure INTEGER NOT NULL,
    allow_multiple_connections INTEGER NOT NULL,
    publish_policy TEXT NOT NULL,
    subscribe_policy TEXT NOT NULL,
    has_custom_certificate INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    last_activity_at_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX devices_hub_name ON devices (hub_id, name);

CREATE TABLE device_filter_topics (
    device_id TEXT NOT NULL,
    rule TEXT NOT NULL CHECK (rule IN ('publish', 'subscribe')),
    seq INTEGER NOT NULL,
    topic TEXT NOT NULL,
    PRIMARY KEY (device_id, rule, seq)
) STRICT;

CREATE TABLE api_keys (
    access_key TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
) STRICT;
)sql",
    // 3: the hubs' PKI. Each hub has one CA: made by iothub (its key kept here) or the
    // customer's own (custom = 1, no key). A device has at most one certificate, issued by
    // its hub's CA or set by the customer; a fingerprint (hex SHA-256 of the DER) names one
    // device across every hub. Private keys of devices are never stored.
    R"sql(
CREATE TABLE hub_cas (
    hub_id TEXT PRIMARY KEY,
    cert_pem TEXT NOT NULL,
    key_pem TEXT NOT NULL,
    custom INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE device_certificates (
    device_id TEXT PRIMARY KEY,
    cert_pem TEXT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('issued', 'custom'))
) STRICT, WITHOUT ROWID;
)sql",
};

std::int64_t read_version(connection& db) {
    const std::int64_t id = db.query_int("PRAGMA application_id");
    const std::int64_t tables =
        db.query_int("SELECT count(*) FROM sqlite_schema WHERE type = 'table'");
    if (id == 0 && tables == 0) return 0;
    if (id != application_id) {
        throw std::runtime_error(db.path() + " is not an iothub database (it holds other data)");
    }
    statement s = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'");
    if (!s.step()) throw std::runtime_error(db.path() + ": iothub database without a schema version");
    return s.column_int(0);
}

}  // namespace

void migrate(connection& db) {
    // Cheap check first, so a newer file is refused without taking the write lock.
    std::int64_t version = read_version(db);
    if (version == schema_version) return;
    if (version > schema_version) {
        throw std::runtime_error(db.path() + " was written by a newer iothub (schema version " +
                                 std::to_string(version) + ", this build reads up to " +
                                 std::to_string(schema_version) + "); upgrade iothub");
    }

    db.exec("BEGIN IMMEDIATE");
    try {
        version = read_version(db);  // another process may have migrated meanwhile
        if (version > schema_version) throw std::runtime_error(db.path() + ": schema changed while opening");
        for (std::int64_t v = version; v < schema_version; ++v) {
            db.exec(migrations[static_cast<std::size_t>(v)]);
        }
        if (version < schema_version) {
            db.exec("PRAGMA application_id = " + std::to_string(application_id));
            statement s = db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)");
            s.bind_int(1, schema_version);
            s.run();
        }
        db.exec("COMMIT");
    } catch (...) {
        if (sqlite3_get_autocommit(db.get()) == 0) sqlite3_exec(db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

void make_data_dir(const std::string& dir) {
    if (dir.empty()) throw std::runtime_error("store: the data directory is not set");
    std::filesystem::path partial;
    for (const auto& part : std::filesystem::path(dir)) {
        partial /= part;
        if (::mkdir(partial.c_str(), 0700) == 0 || errno == EEXIST) continue;
        throw std::runtime_error("cannot create data directory " + partial.string() + ": " +
                                 std::error_code(errno, std::generic_category()).message());
    }
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) {
        throw std::runtime_error("cannot use data directory " + dir + ": " +
                                 std::error_code(errno, std::generic_category()).message());
    }
    if (!S_ISDIR(st.st_mode)) {
        throw std::runtime_error("cannot use data directory " + dir + ": not a directory");
    }
}

connection open_migrated(const std::string& path, const open_options& options) {
    connection db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    // The timeout comes first: another connection may hold the lock while migrating.
    const int rc = sqlite3_busy_timeout(db.get(), static_cast<int>(options.busy_timeout.count()));
    if (rc != SQLITE_OK) throw std::runtime_error(describe_error(db.get(), "busy timeout", rc));
    db.exec(options.synchronous_pragma);
    if (const std::string mode = db.query_text("PRAGMA journal_mode = WAL"); mode != "wal") {
        throw std::runtime_error(path + ": cannot use WAL journal mode (got " + mode + ")");
    }
    migrate(db);
    return db;
}

}  // namespace iothub::store::sqlite
