#include "store/sqlite_store.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <span>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>

#include "store/batch_writer.hpp"
#include "store/operation.hpp"
#include "store/sqlite_connection.hpp"
#include "store/sqlite_schema.hpp"

namespace iothub::store {

namespace {

using sqlite::connection;
using sqlite::reset_guard;
using sqlite::statement;

const char* synchronous_pragma(synchronous_mode mode) {
    switch (mode) {
        case synchronous_mode::off: return "PRAGMA synchronous = OFF";
        case synchronous_mode::normal: return "PRAGMA synchronous = NORMAL";
        case synchronous_mode::full: return "PRAGMA synchronous = FULL";
        case synchronous_mode::extra: return "PRAGMA synchronous = EXTRA";
    }
    return "PRAGMA synchronous = NORMAL";
}

void configure(connection& db, const sqlite_options& options) {
    const int rc = sqlite3_busy_timeout(db.get(), static_cast<int>(options.busy_timeout.count()));
    if (rc != SQLITE_OK) throw std::runtime_error(sqlite::describe_error(db.get(), "busy timeout", rc));
    db.exec(synchronous_pragma(options.synchronous));
}

struct writer_statements {
    statement begin;
    statement commit;
    statement rollback;
    statement put_retained;
    statement erase_retained;
    statement delete_session;
    statement delete_subscriptions;
    statement delete_messages;
    statement delete_incoming;
    statement insert_session;
    statement insert_subscription;
    statement insert_message;
    statement insert_incoming;
};

struct reader_statements {
    statement begin;
    statement rollback;
    statement select_retained;
    statement select_sessions;
    statement select_subscriptions;
    statement select_messages;
    statement select_incoming;
};

writer_statements prepare_writer(connection& db) {
    writer_statements w;
    w.begin = db.prepare("BEGIN IMMEDIATE");
    w.commit = db.prepare("COMMIT");
    w.rollback = db.prepare("ROLLBACK");
    w.put_retained = db.prepare(
        "INSERT OR REPLACE INTO retained (hub, topic, payload, qos, properties, expires_at_ms) "
        "VALUES (?, ?, ?, ?, ?, ?)");
    w.erase_retained = db.prepare("DELETE FROM retained WHERE hub = ? AND topic = ?");
    w.delete_session = db.prepare("DELETE FROM sessions WHERE hub = ? AND client_id = ?");
    w.delete_subscriptions =
        db.prepare("DELETE FROM session_subscriptions WHERE hub = ? AND client_id = ?");
    w.delete_messages = db.prepare("DELETE FROM session_messages WHERE hub = ? AND client_id = ?");
    w.delete_incoming =
        db.prepare("DELETE FROM session_incoming_qos2 WHERE hub = ? AND client_id = ?");
    w.insert_session = db.prepare(
        "INSERT INTO sessions (hub, client_id, protocol_version, expiry_interval, "
        "disconnected_at_ms) VALUES (?, ?, ?, ?, ?)");
    w.insert_subscription = db.prepare(
        "INSERT INTO session_subscriptions (hub, client_id, seq, filter, qos, no_local, "
        "retain_as_published, retain_handling, identifier) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    w.insert_message = db.prepare(
        "INSERT INTO session_messages (hub, client_id, seq, topic, payload, qos, retain, "
        "properties, expires_at_ms, packet_id, state, dup) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    w.insert_incoming = db.prepare(
        "INSERT INTO session_incoming_qos2 (hub, client_id, seq, packet_id) VALUES (?, ?, ?, ?)");
    return w;
}

reader_statements prepare_reader(connection& db) {
    reader_statements r;
    r.begin = db.prepare("BEGIN");
    r.rollback = db.prepare("ROLLBACK");
    r.select_retained = db.prepare(
        "SELECT hub, topic, payload, qos, properties, expires_at_ms FROM retained "
        "ORDER BY hub, topic");
    r.select_sessions = db.prepare(
        "SELECT hub, client_id, protocol_version, expiry_interval, disconnected_at_ms "
        "FROM sessions ORDER BY hub, client_id");
    r.select_subscriptions = db.prepare(
        "SELECT filter, qos, no_local, retain_as_published, retain_handling, identifier "
        "FROM session_subscriptions WHERE hub = ? AND client_id = ? ORDER BY seq");
    r.select_messages = db.prepare(
        "SELECT topic, payload, qos, retain, properties, expires_at_ms, packet_id, state, dup "
        "FROM session_messages WHERE hub = ? AND client_id = ? ORDER BY seq");
    r.select_incoming = db.prepare(
        "SELECT packet_id FROM session_incoming_qos2 WHERE hub = ? AND client_id = ? ORDER BY seq");
    return r;
}

// A read snapshot spanning every query of one load.
class read_transaction {
public:
    explicit read_transaction(reader_statements& r) : r_(r) { r_.begin.run(); }
    ~read_transaction() {
        try {
            r_.rollback.run();
        } catch (const std::exception&) {
            // Ending a read-only transaction cannot lose data; the next BEGIN reports trouble.
        }
    }
    read_transaction(const read_transaction&) = delete;
    read_transaction& operator=(const read_transaction&) = delete;

private:
    reader_statements& r_;
};

std::int64_t as_int(std::uint64_t v) { return static_cast<std::int64_t>(v); }

class sqlite_store final : public store {
public:
    sqlite_store(const std::string& data_dir, const sqlite_options& options) {
        sqlite::make_data_dir(data_dir);
        const std::string path = (std::filesystem::path(data_dir) / sqlite_file_name).string();
        try {
            writer_db_ = connection(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
            configure(writer_db_, options);
            if (const std::string mode = writer_db_.query_text("PRAGMA journal_mode = WAL");
                mode != "wal") {
                throw std::runtime_error(path + ": cannot use WAL journal mode (got " + mode + ")");
            }
            sqlite::migrate(writer_db_);
            w_ = prepare_writer(writer_db_);

            reader_db_ = connection(path, SQLITE_OPEN_READWRITE);
            configure(reader_db_, options);
            reader_db_.exec("PRAGMA query_only = ON");
            r_ = prepare_reader(reader_db_);
        } catch (const std::exception& e) {
            throw std::runtime_error(std::string("cannot open the iothub store: ") + e.what());
        }

        auto on_error = options.on_error;
        if (!on_error) {
            on_error = [](const std::string& message) { std::cerr << message << '\n'; };
        }
        batch_limits limits;
        limits.max_operations = options.max_queued_operations;
        limits.max_bytes = options.max_queued_bytes;
        limits.commit_attempts = options.commit_attempts;
        writer_ = std::make_unique<batch_writer>(
            limits,
            [this](std::span<const operation> batch, const std::vector<bool>& live) {
                commit(batch, live);
            },
            std::move(on_error));
    }

    ~sqlite_store() override { close(); }

    void load_retained(const std::function<void(retained_record&&)>& fn) override {
        std::lock_guard lock(read_mutex_);
        check_open();
        read_transaction txn(r_);
        statement& s = r_.select_retained;
        reset_guard guard(s);
        while (s.step()) {
            retained_record r;
            r.hub = s.column_string(0);
            r.topic = s.column_string(1);
            r.payload = s.column_string(2);
            r.qos = static_cast<std::uint8_t>(s.column_int(3));
            r.properties = s.column_string(4);
            r.expires_at_ms = static_cast<std::uint64_t>(s.column_int(5));
            fn(std::move(r));
        }
    }

    void load_sessions(const std::function<void(session_record&&)>& fn) override {
        std::lock_guard lock(read_mutex_);
        check_open();
        read_transaction txn(r_);
        statement& s = r_.select_sessions;
        reset_guard guard(s);
        while (s.step()) {
            session_record r;
            r.hub = s.column_string(0);
            r.client_id = s.column_string(1);
            r.protocol_version = static_cast<std::uint8_t>(s.column_int(2));
            r.expiry_interval = static_cast<std::uint32_t>(s.column_int(3));
            r.disconnected_at_ms = static_cast<std::uint64_t>(s.column_int(4));
            load_session_children(r);
            fn(std::move(r));
        }
    }

    void put_retained(retained_record r, completion done) override {
        writer_->push(operation{std::move(r), std::move(done)});
    }

    void erase_retained(std::string hub, std::string topic, completion done) override {
        writer_->push(operation{retained_key{std::move(hub), std::move(topic)}, std::move(done)});
    }

    void put_session(session_record s, completion done) override {
        writer_->push(operation{std::move(s), std::move(done)});
    }

    void erase_session(std::string hub, std::string client_id, completion done) override {
        writer_->push(
            operation{session_key{std::move(hub), std::move(client_id)}, std::move(done)});
    }

    void flush() override { writer_->flush(); }

    void close() override {
        writer_->stop();
        std::lock_guard lock(read_mutex_);
        if (closed_) return;
        closed_ = true;
        w_ = {};
        r_ = {};
        reader_db_.close();
        writer_db_.close();  // the last connection to close checkpoints and removes the WAL
    }

    store_stats stats() const override { return writer_->stats(); }

private:
    void check_open() const {
        if (closed_) throw std::logic_error("store: read after close()");
    }

    void load_session_children(session_record& r) {
        {
            statement& s = r_.select_subscriptions;
            reset_guard guard(s);
            s.bind_text(1, r.hub);
            s.bind_text(2, r.client_id);
            while (s.step()) {
                subscription_record sub;
                sub.filter = s.column_string(0);
                sub.qos = static_cast<std::uint8_t>(s.column_int(1));
                sub.no_local = s.column_int(2) != 0;
                sub.retain_as_published = s.column_int(3) != 0;
                sub.retain_handling = static_cast<std::uint8_t>(s.column_int(4));
                sub.identifier = static_cast<std::uint32_t>(s.column_int(5));
                r.subscriptions.push_back(std::move(sub));
            }
        }
        {
            statement& s = r_.select_messages;
            reset_guard guard(s);
            s.bind_text(1, r.hub);
            s.bind_text(2, r.client_id);
            while (s.step()) {
                message_record m;
                m.topic = s.column_string(0);
                m.payload = s.column_string(1);
                m.qos = static_cast<std::uint8_t>(s.column_int(2));
                m.retain = s.column_int(3) != 0;
                m.properties = s.column_string(4);
                m.expires_at_ms = static_cast<std::uint64_t>(s.column_int(5));
                m.packet_id = static_cast<std::uint16_t>(s.column_int(6));
                m.state = static_cast<message_state>(s.column_int(7));
                m.dup = s.column_int(8) != 0;
                r.messages.push_back(std::move(m));
            }
        }
        {
            statement& s = r_.select_incoming;
            reset_guard guard(s);
            s.bind_text(1, r.hub);
            s.bind_text(2, r.client_id);
            while (s.step()) r.incoming_qos2.push_back(static_cast<std::uint16_t>(s.column_int(0)));
        }
    }

    // Runs on the writer thread only.
    void commit(std::span<const operation> batch, const std::vector<bool>& live) {
        try {
            w_.begin.run();
            for (std::size_t i = 0; i < batch.size(); ++i) {
                if (live[i]) std::visit([this](const auto& w) { apply(w); }, batch[i].what);
            }
            w_.commit.run();
        } catch (...) {
            if (sqlite3_get_autocommit(writer_db_.get()) == 0) {
                try {
                    w_.rollback.run();
                } catch (const std::exception&) {
                    // The original error is the one worth reporting.
                }
            }
            throw;
        }
    }

    void apply(const barrier&) {}

    void apply(const retained_record& r) {
        statement& s = w_.put_retained;
        s.bind_text(1, r.hub);
        s.bind_text(2, r.topic);
        s.bind_blob(3, r.payload);
        s.bind_int(4, r.qos);
        s.bind_blob(5, r.properties);
        s.bind_int(6, as_int(r.expires_at_ms));
        s.run();
    }

    void apply(const retained_key& k) {
        statement& s = w_.erase_retained;
        s.bind_text(1, k.hub);
        s.bind_text(2, k.topic);
        s.run();
    }

    void apply(const session_key& k) {
        for (statement* s : {&w_.delete_session, &w_.delete_subscriptions, &w_.delete_messages,
                             &w_.delete_incoming}) {
            s->bind_text(1, k.hub);
            s->bind_text(2, k.client_id);
            s->run();
        }
    }

    void apply(const session_record& r) {
        apply(session_key{r.hub, r.client_id});
        {
            statement& s = w_.insert_session;
            s.bind_text(1, r.hub);
            s.bind_text(2, r.client_id);
            s.bind_int(3, r.protocol_version);
            s.bind_int(4, r.expiry_interval);
            s.bind_int(5, as_int(r.disconnected_at_ms));
            s.run();
        }
        std::int64_t seq = 0;
        for (const auto& sub : r.subscriptions) {
            statement& s = w_.insert_subscription;
            s.bind_text(1, r.hub);
            s.bind_text(2, r.client_id);
            s.bind_int(3, seq++);
            s.bind_text(4, sub.filter);
            s.bind_int(5, sub.qos);
            s.bind_int(6, sub.no_local ? 1 : 0);
            s.bind_int(7, sub.retain_as_published ? 1 : 0);
            s.bind_int(8, sub.retain_handling);
            s.bind_int(9, sub.identifier);
            s.run();
        }
        seq = 0;
        for (const auto& m : r.messages) {
            statement& s = w_.insert_message;
            s.bind_text(1, r.hub);
            s.bind_text(2, r.client_id);
            s.bind_int(3, seq++);
            s.bind_text(4, m.topic);
            s.bind_blob(5, m.payload);
            s.bind_int(6, m.qos);
            s.bind_int(7, m.retain ? 1 : 0);
            s.bind_blob(8, m.properties);
            s.bind_int(9, as_int(m.expires_at_ms));
            s.bind_int(10, m.packet_id);
            s.bind_int(11, static_cast<std::int64_t>(m.state));
            s.bind_int(12, m.dup ? 1 : 0);
            s.run();
        }
        seq = 0;
        for (const std::uint16_t id : r.incoming_qos2) {
            statement& s = w_.insert_incoming;
            s.bind_text(1, r.hub);
            s.bind_text(2, r.client_id);
            s.bind_int(3, seq++);
            s.bind_int(4, id);
            s.run();
        }
    }

    connection writer_db_;
    writer_statements w_;  // used by the writer thread only
    std::mutex read_mutex_;
    connection reader_db_;
    reader_statements r_;  // guarded by read_mutex_
    bool closed_ = false;  // guarded by read_mutex_
    std::unique_ptr<batch_writer> writer_;
};

}  // namespace

std::unique_ptr<store> open_sqlite_store(const std::string& data_dir, const sqlite_options& options) {
    return std::make_unique<sqlite_store>(data_dir, options);
}

}  // namespace iothub::store
