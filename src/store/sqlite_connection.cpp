#include "store/sqlite_connection.hpp"

#include <limits>
#include <stdexcept>
#include <utility>

namespace iothub::store::sqlite {

namespace {

// SQLite treats a null pointer as SQL NULL; an empty value must stay an empty value.
const char* non_null(std::string_view v) { return v.data() != nullptr ? v.data() : ""; }

}  // namespace

std::string describe_error(sqlite3* db, std::string_view context, int rc) {
    std::string message;
    const char* file = db != nullptr ? sqlite3_db_filename(db, "main") : nullptr;
    if (file != nullptr && *file != '\0') {
        message += file;
        message += ": ";
    }
    message += context;
    message += ": ";
    const std::string_view detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    const std::string_view kind = sqlite3_errstr(rc);
    message += detail;
    if (detail != kind) {
        message += " (";
        message += kind;
        message += ")";
    }
    return message;
}

statement::statement(sqlite3* db, std::string_view sql) {
    if (sql.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        throw std::runtime_error("store: SQL text too long");
    }
    const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(stmt_);
        stmt_ = nullptr;
        throw std::runtime_error(describe_error(db, "prepare \"" + std::string(sql) + "\"", rc));
    }
}

statement::~statement() { sqlite3_finalize(stmt_); }

statement::statement(statement&& other) noexcept : stmt_(std::exchange(other.stmt_, nullptr)) {}

statement& statement::operator=(statement&& other) noexcept {
    if (this != &other) {
        sqlite3_finalize(stmt_);
        stmt_ = std::exchange(other.stmt_, nullptr);
    }
    return *this;
}

void statement::fail(const char* what, int rc) const {
    std::string context = what;
    if (const char* sql = sqlite3_sql(stmt_); sql != nullptr) {
        context += " \"";
        context += sql;
        context += '"';
    }
    throw std::runtime_error(describe_error(sqlite3_db_handle(stmt_), context, rc));
}

void statement::bind_int(int index, std::int64_t value) {
    const int rc = sqlite3_bind_int64(stmt_, index, value);
    if (rc != SQLITE_OK) fail("bind", rc);
}

void statement::bind_text(int index, std::string_view value) {
    const int rc =
        sqlite3_bind_text64(stmt_, index, non_null(value), value.size(), SQLITE_STATIC, SQLITE_UTF8);
    if (rc != SQLITE_OK) fail("bind", rc);
}

void statement::bind_blob(int index, std::string_view value) {
    const int rc = sqlite3_bind_blob64(stmt_, index, non_null(value), value.size(), SQLITE_STATIC);
    if (rc != SQLITE_OK) fail("bind", rc);
}

bool statement::step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail("step", rc);
}

void statement::run() {
    reset_guard guard(*this);
    while (step()) {
    }
}

void statement::reset() noexcept {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
}

std::int64_t statement::column_int(int index) const { return sqlite3_column_int64(stmt_, index); }

std::string statement::column_string(int index) const {
    const void* data = sqlite3_column_blob(stmt_, index);
    const int size = sqlite3_column_bytes(stmt_, index);
    if (data == nullptr || size <= 0) return {};
    return std::string(static_cast<const char*>(data), static_cast<std::size_t>(size));
}

connection::connection(const std::string& path, int flags) : path_(path) {
    const int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        std::string message = "cannot open database " + path + ": " +
                              (db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
        sqlite3_close_v2(db_);
        db_ = nullptr;
        throw std::runtime_error(message);
    }
    sqlite3_extended_result_codes(db_, 1);
}

connection::~connection() { close(); }

connection::connection(connection&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), path_(std::move(other.path_)) {}

connection& connection::operator=(connection&& other) noexcept {
    if (this != &other) {
        close();
        db_ = std::exchange(other.db_, nullptr);
        path_ = std::move(other.path_);
    }
    return *this;
}

void connection::close() noexcept {
    // close_v2 defers the close until statements still alive are finalised.
    if (db_ != nullptr) sqlite3_close_v2(std::exchange(db_, nullptr));
}

void connection::exec(std::string_view sql) {
    char* error = nullptr;
    const std::string text(sql);
    const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error);
    sqlite3_free(error);
    if (rc != SQLITE_OK) throw std::runtime_error(describe_error(db_, "exec \"" + text + "\"", rc));
}

std::int64_t connection::query_int(std::string_view sql) {
    statement s(db_, sql);
    if (!s.step()) throw std::runtime_error(path_ + ": no result from \"" + std::string(sql) + "\"");
    return s.column_int(0);
}

std::string connection::query_text(std::string_view sql) {
    statement s(db_, sql);
    if (!s.step()) throw std::runtime_error(path_ + ": no result from \"" + std::string(sql) + "\"");
    return s.column_string(0);
}

}  // namespace iothub::store::sqlite
