#include "store/sqlite_schema.hpp"

#include <array>
#include <stdexcept>
#include <string>
#include <string_view>

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

}  // namespace iothub::store::sqlite
