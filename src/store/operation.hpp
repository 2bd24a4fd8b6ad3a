#pragma once
// One queued write, as the writer thread sees it.

#include <cstddef>
#include <string>
#include <variant>

#include "store/records.hpp"
#include "store/store.hpp"

namespace iothub::store {

struct retained_key {
    std::string hub;
    std::string topic;
};

struct session_key {
    std::string hub;
    std::string client_id;
};

// Writes nothing; completes once everything queued before it is done (used by flush).
struct barrier {};

struct operation {
    // retained_record: put retained; retained_key: erase retained;
    // session_record: put session; session_key: erase session.
    std::variant<barrier, retained_record, retained_key, session_record, session_key> what;
    completion done;
};

// Approximate memory held by a queued operation, for the queue's byte limit.
std::size_t queued_bytes(const operation& op);

// The key an operation writes, unique across kinds; empty for a barrier.
std::string write_key(const operation& op);

}  // namespace iothub::store
