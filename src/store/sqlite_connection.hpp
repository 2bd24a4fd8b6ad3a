#pragma once
// Thin RAII wrappers over the SQLite C API. Every failure throws std::runtime_error naming
// the database file and SQLite's own message.

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace iothub::store::sqlite {

class statement {
public:
    statement() = default;
    statement(sqlite3* db, std::string_view sql);
    ~statement();
    statement(statement&& other) noexcept;
    statement& operator=(statement&& other) noexcept;
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;

    void bind_int(int index, std::int64_t value);
    void bind_text(int index, std::string_view value);
    void bind_blob(int index, std::string_view value);

    // Steps once: true when a row is available, false when the statement is done.
    bool step();
    // Steps to completion, then resets.
    void run();
    // Resets the statement and clears its bindings, ready for reuse.
    void reset() noexcept;

    std::int64_t column_int(int index) const;
    std::string column_string(int index) const;  // TEXT or BLOB, NUL bytes kept

private:
    [[noreturn]] void fail(const char* what, int rc) const;

    sqlite3_stmt* stmt_ = nullptr;
};

// Resets a statement when leaving a scope, so a throwing row callback leaves it reusable.
class reset_guard {
public:
    explicit reset_guard(statement& s) noexcept : s_(s) {}
    ~reset_guard() { s_.reset(); }
    reset_guard(const reset_guard&) = delete;
    reset_guard& operator=(const reset_guard&) = delete;

private:
    statement& s_;
};

class connection {
public:
    connection() = default;
    // `flags` as for sqlite3_open_v2; SQLITE_OPEN_NOMUTEX is added (callers serialise use).
    connection(const std::string& path, int flags);
    ~connection();
    connection(connection&& other) noexcept;
    connection& operator=(connection&& other) noexcept;
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    sqlite3* get() const noexcept { return db_; }
    const std::string& path() const noexcept { return path_; }

    // Runs one or more statements that return no rows needed by the caller.
    void exec(std::string_view sql);
    statement prepare(std::string_view sql) { return statement(db_, sql); }
    // Runs a statement that yields one integer (e.g. a PRAGMA).
    std::int64_t query_int(std::string_view sql);
    std::string query_text(std::string_view sql);
    void close() noexcept;

private:
    sqlite3* db_ = nullptr;
    std::string path_;
};

// "<file>: <context>: <SQLite message> (<code name>)".
std::string describe_error(sqlite3* db, std::string_view context, int rc);

}  // namespace iothub::store::sqlite
