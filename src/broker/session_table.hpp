#pragma once
// The sessions of one worker, and its two ways of finding them: by session id (every delivery
// does) and by hub and client id (every CONNECT does). Both are flat arrays of pointers, so a
// session costs the table about two pointers, not two hash nodes and a key string:
// - by id: the id names the session's slot in `slots_` (see make_id), so a delivery finds its
//   session with one index and one compare, and a delivery for a session that ended meanwhile
//   finds a free slot or a newer session with another id;
// - by key: an open-addressing table (linear probing) of the sessions themselves, hashed and
//   compared through the session's own hub name and client id.
// A session is one allocation with its client id stored right after it.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "broker/session.hpp"

namespace iothub::broker {

struct hub_space;

class session_table {
public:
    // `worker`: the index encoded in the ids' low bits (see worker_of).
    explicit session_table(unsigned worker);
    ~session_table();
    session_table(const session_table&) = delete;
    session_table& operator=(const session_table&) = delete;

    // The session with this id, or null once it ended.
    session* find(session_id id) const noexcept {
        const std::size_t at = static_cast<std::size_t>((id >> worker_bits) & slot_mask);
        if (at >= slots_.size()) return nullptr;
        session* s = live(slots_[at]);
        return s != nullptr && s->id == id ? s : nullptr;
    }
    session* find(std::string_view hub, std::string_view client_id) const noexcept;
    // A new session; none may exist for (hub.name, client_id).
    session& create(hub_space& hub, std::string_view client_id);
    // Ends `s` (its memory is freed: `s` dangles after the call).
    void destroy(session& s) noexcept;
    std::size_t size() const noexcept { return size_; }

    // Calls f(session&) for each session. f may end sessions (the one given or others) and
    // create some; a session created meanwhile may or may not be visited.
    template <class F>
    void for_each(F&& f) {
        for (std::size_t i = 0; i < slots_.size(); ++i) {
            if (session* s = live(slots_[i])) f(*s);
        }
    }

    static constexpr unsigned worker_bits = 10;  // up to 1024 workers
    static constexpr unsigned slot_bits = 32;
    static constexpr std::uint64_t slot_mask = (std::uint64_t{1} << slot_bits) - 1;

private:
    // A slot holds a session pointer, or (free) the index of the next free slot shifted left
    // once with the low bit set.
    static constexpr std::uintptr_t free_bit = 1;
    static session* live(std::uintptr_t v) noexcept {
        return (v & free_bit) != 0 ? nullptr : reinterpret_cast<session*>(v);
    }
    // Ids are unique over the worker's life but for a generation that wraps after 2^22 - 1
    // sessions made in the same slot: only a delivery older than that could be misdirected.
    session_id make_id(std::size_t slot) noexcept;
    std::size_t take_slot() noexcept;  // room was reserved

    static std::size_t key_hash(std::string_view hub, std::string_view client_id) noexcept;
    std::size_t home(std::size_t hash) const noexcept { return hash >> key_shift_; }
    void grow_keys();
    void insert_key(session* s) noexcept;

    unsigned worker_;
    std::uint32_t generation_ = 0;
    std::vector<std::uintptr_t> slots_;
    std::size_t free_head_ = npos;
    std::vector<session*> keys_;  // size: zero or a power of two; null = empty
    unsigned key_shift_ = 64;     // 64 - log2(keys_.size())
    std::size_t size_ = 0;

    static constexpr std::size_t npos = ~std::size_t{0} >> 1;
};

}  // namespace iothub::broker
