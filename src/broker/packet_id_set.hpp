#pragma once
// A set of packet ids (the QoS 2 PUBLISHes a session answered with PUBREC and whose PUBREL
// has not come yet): a sorted array in one allocation made on first use, so a session that
// never receives QoS 2 holds a null pointer. Ids mostly arrive in increasing order and are
// released oldest first, so inserting appends and erasing shifts a short array; the array is
// kept once made (a QoS 2 publisher allocates nothing per message) unless a burst grew it.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <utility>

namespace iothub::broker {

class packet_id_set {
public:
    packet_id_set() noexcept = default;
    packet_id_set(packet_id_set&& o) noexcept : block_(std::exchange(o.block_, nullptr)) {}
    packet_id_set& operator=(packet_id_set&& o) noexcept {
        if (this != &o) {
            clear();
            block_ = std::exchange(o.block_, nullptr);
        }
        return *this;
    }
    packet_id_set(const packet_id_set&) = delete;
    packet_id_set& operator=(const packet_id_set&) = delete;
    ~packet_id_set() { clear(); }

    std::size_t size() const noexcept { return block_ != nullptr ? block_->size : 0; }
    bool empty() const noexcept { return size() == 0; }
    const std::uint16_t* begin() const noexcept {
        return block_ != nullptr ? block_->ids() : nullptr;
    }
    const std::uint16_t* end() const noexcept { return begin() + size(); }

    std::size_t count(std::uint16_t id) const noexcept {
        const auto* at = std::lower_bound(begin(), end(), id);
        return at != end() && *at == id ? 1 : 0;
    }
    // False when the id was there already.
    bool insert(std::uint16_t id) {
        const std::size_t at =
            static_cast<std::size_t>(std::lower_bound(begin(), end(), id) - begin());
        if (at < size() && block_->ids()[at] == id) return false;
        if (block_ == nullptr || block_->size == block_->capacity) grow();
        std::uint16_t* ids = block_->ids();
        std::memmove(ids + at + 1, ids + at, (block_->size - at) * sizeof(std::uint16_t));
        ids[at] = id;
        ++block_->size;
        return true;
    }
    std::size_t erase(std::uint16_t id) noexcept {
        auto* first = const_cast<std::uint16_t*>(begin());
        auto* last = first + size();
        auto* at = std::lower_bound(first, last, id);
        if (at == last || *at != id) return 0;
        std::memmove(at, at + 1, static_cast<std::size_t>(last - at - 1) * sizeof(std::uint16_t));
        if (--block_->size == 0 && block_->capacity > 64) clear();
        return 1;
    }
    void clear() noexcept {
        ::operator delete(block_);
        block_ = nullptr;
    }

private:
    struct block {
        std::uint32_t size;
        std::uint32_t capacity;
        std::uint16_t* ids() noexcept { return reinterpret_cast<std::uint16_t*>(this + 1); }
    };
    void grow() {
        const std::uint32_t capacity = block_ == nullptr ? 4 : block_->capacity * 2;
        auto* bigger = ::new (::operator new(sizeof(block) + capacity * sizeof(std::uint16_t)))
            block{0, capacity};
        if (block_ != nullptr) {
            std::memcpy(bigger->ids(), block_->ids(), block_->size * sizeof(std::uint16_t));
            bigger->size = block_->size;
            ::operator delete(block_);
        }
        block_ = bigger;
    }

    block* block_ = nullptr;
};

}  // namespace iothub::broker
