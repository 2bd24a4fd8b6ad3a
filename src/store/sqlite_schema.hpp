#pragma once
// The SQLite schema and its migrations.

#include "store/sqlite_connection.hpp"

namespace iothub::store::sqlite {

// 'i','o','t','h': marks a file as an iothub database in its header.
inline constexpr std::int64_t application_id = 0x696f7468;
inline constexpr std::int64_t schema_version = 1;

// Brings the database to `schema_version`, creating it when empty, in one transaction.
// Throws std::runtime_error for a file that is not an iothub database or was written by a
// newer version.
void migrate(connection& db);

}  // namespace iothub::store::sqlite
