#pragma once
// The SQLite schema and its migrations, and opening a database file with them applied.

#include <chrono>
#include <string>

#include "store/sqlite_connection.hpp"

namespace iothub::store::sqlite {

// 'i','o','t','h': marks a file as an iothub database in its header.
inline constexpr std::int64_t application_id = 0x696f7468;
inline constexpr std::int64_t schema_version = 3;

// Brings the database to `schema_version`, creating it when empty, in one transaction.
// Throws std::runtime_error for a file that is not an iothub database or was written by a
// newer version.
void migrate(connection& db);

// Creates each missing component of `dir` with mode 0700 (the database holds device
// credentials); throws std::runtime_error when it cannot, or when `dir` is not a directory.
void make_data_dir(const std::string& dir);

struct open_options {
    std::chrono::milliseconds busy_timeout{5000};
    const char* synchronous_pragma = "PRAGMA synchronous = NORMAL";
};

// Opens (creating) the database at `path` read-write in WAL mode with the options applied,
// and migrates it. Throws std::runtime_error as `migrate` does, or when WAL is refused.
connection open_migrated(const std::string& path, const open_options& options);

}  // namespace iothub::store::sqlite
