#pragma once
// The embedded store: one SQLite database in WAL mode under the data directory.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "store/store.hpp"

namespace iothub::store {

enum class synchronous_mode { off, normal, full, extra };

struct sqlite_options {
    // Queue bounds; a producer finding either reached waits (see store.hpp).
    std::size_t max_queued_operations = 10000;
    std::size_t max_queued_bytes = 64 * 1024 * 1024;
    // NORMAL with WAL: a commit survives a process crash; the last commits may be lost on
    // power loss. FULL also syncs the WAL on every commit.
    synchronous_mode synchronous = synchronous_mode::normal;
    std::chrono::milliseconds busy_timeout{5000};
    int commit_attempts = 3;  // per batch before its writes are failed
    // Errors met on the writer thread (failed batches, throwing completions). Called on the
    // writer thread. When empty, they are written to stderr.
    std::function<void(const std::string& message)> on_error;
};

// The database file inside `data_dir`.
inline constexpr const char* sqlite_file_name = "iothub.db";

// Opens `<data_dir>/iothub.db`, creating it, and `data_dir` (mode 0700) when missing, and
// migrating its schema. Throws std::runtime_error naming the path and the cause on failure:
// something other than a directory in the way, a file that is not an iothub database or is
// corrupt, a schema newer than this build.
std::unique_ptr<store> open_sqlite_store(const std::string& data_dir,
                                         const sqlite_options& options = {});

}  // namespace iothub::store
