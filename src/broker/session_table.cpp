#include "broker/session_table.hpp"

#include <bit>
#include <cassert>
#include <cstring>
#include <functional>
#include <new>

#include "broker/broker.hpp"

namespace iothub::broker {

session_table::session_table(unsigned worker) : worker_(worker) {
    assert(worker < (1u << worker_bits));
}

session_table::~session_table() {
    for (const auto v : slots_) {
        if (session* s = live(v)) {
            s->~session();
            ::operator delete(s);
        }
    }
}

std::size_t session_table::key_hash(std::string_view hub, std::string_view client_id) noexcept {
    const std::size_t h = std::hash<std::string_view>{}(client_id);
    const std::size_t mixed =
        h ^ (std::hash<std::string_view>{}(hub) + 0x9e3779b97f4a7c15u + (h << 6) + (h >> 2));
    return mixed * 0x9e3779b97f4a7c15u;  // the high bits pick the home position
}

session* session_table::find(std::string_view hub, std::string_view client_id) const noexcept {
    if (size_ == 0) return nullptr;
    const std::size_t mask = keys_.size() - 1;
    for (std::size_t i = home(key_hash(hub, client_id));; i = (i + 1) & mask) {
        session* s = keys_[i];
        if (s == nullptr) return nullptr;
        if (s->client_id == client_id && s->hub->name == hub) return s;
    }
}

session_id session_table::make_id(std::size_t slot) noexcept {
    // The generation is never 0, so no id is 0 (0 is the server as a message's origin).
    generation_ = generation_ % ((1u << (64 - slot_bits - worker_bits)) - 1) + 1;
    return (session_id{generation_} << (slot_bits + worker_bits)) |
           (session_id{slot} << worker_bits) | worker_;
}

std::size_t session_table::take_slot() noexcept {
    if (free_head_ != npos) {
        const std::size_t at = free_head_;
        free_head_ = static_cast<std::size_t>(slots_[at] >> 1);
        return at;
    }
    assert(slots_.size() <= slot_mask);
    slots_.push_back(0);
    return slots_.size() - 1;
}

session& session_table::create(hub_space& hub, std::string_view client_id) {
    assert(find(hub.name, client_id) == nullptr);
    // What may throw comes first, before anything changes.
    if ((size_ + 1) * 4 > keys_.size() * 3) grow_keys();
    if (free_head_ == npos && slots_.size() == slots_.capacity())
        slots_.reserve(slots_.empty() ? 16 : slots_.size() * 2);
    auto* s = ::new (::operator new(sizeof(session) + client_id.size())) session();
    char* chars = reinterpret_cast<char*>(s + 1);
    if (!client_id.empty()) std::memcpy(chars, client_id.data(), client_id.size());
    s->client_id = std::string_view(chars, client_id.size());
    s->hub = &hub;
    const std::size_t at = take_slot();
    s->id = make_id(at);
    slots_[at] = reinterpret_cast<std::uintptr_t>(s);
    insert_key(s);
    ++size_;
    return *s;
}

void session_table::insert_key(session* s) noexcept {
    const std::size_t mask = keys_.size() - 1;
    std::size_t i = home(key_hash(s->hub->name, s->client_id));
    while (keys_[i] != nullptr) i = (i + 1) & mask;
    keys_[i] = s;
}

void session_table::grow_keys() {
    std::vector<session*> old(keys_.empty() ? 8 : keys_.size() * 2, nullptr);
    old.swap(keys_);
    key_shift_ = 64 - static_cast<unsigned>(std::countr_zero(keys_.size()));
    for (session* s : old) {
        if (s != nullptr) insert_key(s);
    }
}

void session_table::destroy(session& s) noexcept {
    // By key: backward-shift deletion, so no tombstones are needed: each entry after the
    // hole that may move back to it (its home is not within the hole's part of the run)
    // moves back, and the hole moves on.
    const std::size_t mask = keys_.size() - 1;
    std::size_t hole = home(key_hash(s.hub->name, s.client_id));
    while (keys_[hole] != &s) hole = (hole + 1) & mask;
    for (std::size_t j = (hole + 1) & mask; keys_[j] != nullptr; j = (j + 1) & mask) {
        const std::size_t k = home(key_hash(keys_[j]->hub->name, keys_[j]->client_id));
        // Stays when k lies cyclically in (hole, j].
        const bool stays = hole <= j ? (hole < k && k <= j) : (hole < k || k <= j);
        if (stays) continue;
        keys_[hole] = keys_[j];
        hole = j;
    }
    keys_[hole] = nullptr;

    const std::size_t at = static_cast<std::size_t>((s.id >> worker_bits) & slot_mask);
    assert(live(slots_[at]) == &s);
    slots_[at] = (static_cast<std::uintptr_t>(free_head_) << 1) | free_bit;
    free_head_ = at;
    --size_;

    s.~session();
    ::operator delete(&s);
}

}  // namespace iothub::broker
