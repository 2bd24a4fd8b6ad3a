#pragma once
// Persistence of what must survive a restart, behind an interface so that another database
// can replace SQLite.
//
// Writes never touch the database on the caller's thread: they are queued to one writer
// thread, which drains the queue and commits each drained batch in one transaction. Every
// write may carry a completion, run on the writer thread once the outcome is known:
// `completion(true)` after the transaction holding the write committed, `completion(false)`
// when it could not be written (the error is also reported through the store's error handler).
// Completions run in the order their writes were queued.
//
// The queue is bounded. A producer that finds it full waits until the writer has drained it;
// since the writer takes the whole queue at once, the wait lasts at most one transaction.
// A write queued from inside a completion never waits (the writer would be waiting for itself).

#include <cstdint>
#include <functional>
#include <string>

#include "store/records.hpp"

namespace iothub::store {

using completion = std::function<void(bool committed)>;

struct store_stats {
    std::uint64_t committed_transactions = 0;
    std::uint64_t committed_operations = 0;  // writes made durable, superseded ones included
    std::uint64_t failed_transactions = 0;    // batches given up after every attempt failed
    std::uint64_t failed_operations = 0;
    std::uint64_t producer_waits = 0;  // times a producer found the queue full and waited
};

class store {
public:
    virtual ~store() = default;

    // Reads, meant for start-up. Records come in key order. The callback may queue writes.
    // Throw std::runtime_error when the database cannot be read.
    virtual void load_retained(const std::function<void(retained_record&&)>& fn) = 0;
    virtual void load_sessions(const std::function<void(session_record&&)>& fn) = 0;

    // Writes. Several writes to one key in a batch apply in order: the last one wins.
    // After close() a write is refused: its completion runs at once, on the caller's
    // thread, with `false`.
    virtual void put_retained(retained_record r, completion done = {}) = 0;
    virtual void erase_retained(std::string hub, std::string topic, completion done = {}) = 0;
    virtual void put_session(session_record s, completion done = {}) = 0;  // replaces it whole
    virtual void erase_session(std::string hub, std::string client_id, completion done = {}) = 0;

    // Blocks until every write queued before the call has been committed or has failed.
    // Must not be called from a completion.
    virtual void flush() = 0;
    // Flushes, stops the writer and closes the database. A second call does nothing.
    // Must not be called from a completion.
    virtual void close() = 0;

    virtual store_stats stats() const = 0;
};

}  // namespace iothub::store
