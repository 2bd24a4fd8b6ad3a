#pragma once
// A double-ended queue in one growable circular array. Unlike std::deque it allocates nothing
// until the first element arrives, and an empty one is a single null pointer (every session
// carries two of them, idle or not); it gives memory back when emptied after a burst.
// The array's bookkeeping (capacity, head, size) sits in front of the elements, in the same
// allocation.

#include <cstddef>
#include <iterator>
#include <memory>
#include <new>
#include <utility>

namespace iothub::broker {

template <class T>
class ring {
public:
    template <class R, class V>
    class basic_iterator {
    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = T;
        using difference_type = std::ptrdiff_t;
        using pointer = V*;
        using reference = V&;

        basic_iterator() = default;
        basic_iterator(R* r, std::size_t i) : ring_(r), index_(i) {}
        reference operator*() const { return (*ring_)[index_]; }
        pointer operator->() const { return &(*ring_)[index_]; }
        basic_iterator& operator++() {
            ++index_;
            return *this;
        }
        basic_iterator operator++(int) {
            auto old = *this;
            ++index_;
            return old;
        }
        bool operator==(const basic_iterator& o) const { return index_ == o.index_; }
        std::size_t index() const noexcept { return index_; }

    private:
        R* ring_ = nullptr;
        std::size_t index_ = 0;
    };
    using iterator = basic_iterator<ring, T>;
    using const_iterator = basic_iterator<const ring, const T>;

    ring() noexcept = default;
    ring(ring&& o) noexcept : block_(std::exchange(o.block_, nullptr)) {}
    ring& operator=(ring&& o) noexcept {
        if (this != &o) {
            clear();
            block_ = std::exchange(o.block_, nullptr);
        }
        return *this;
    }
    ring(const ring&) = delete;
    ring& operator=(const ring&) = delete;
    ~ring() { clear(); }

    bool empty() const noexcept { return size() == 0; }
    std::size_t size() const noexcept { return block_ != nullptr ? block_->size : 0; }

    T& operator[](std::size_t i) noexcept { return slot(i); }
    const T& operator[](std::size_t i) const noexcept { return slot(i); }
    T& front() noexcept { return slot(0); }
    T& back() noexcept { return slot(block_->size - 1); }

    iterator begin() noexcept { return {this, 0}; }
    iterator end() noexcept { return {this, size()}; }
    const_iterator begin() const noexcept { return {this, 0}; }
    const_iterator end() const noexcept { return {this, size()}; }

    void push_back(T&& v) {
        grow_if_full();
        ::new (static_cast<void*>(&slot(block_->size))) T(std::move(v));
        ++block_->size;
    }
    void push_front(T&& v) {
        grow_if_full();
        const std::size_t head = (block_->head + block_->capacity - 1) & (block_->capacity - 1);
        ::new (static_cast<void*>(&block_->slots()[head])) T(std::move(v));
        block_->head = head;
        ++block_->size;
    }
    void pop_front() {
        std::destroy_at(&front());
        block_->head = (block_->head + 1) & (block_->capacity - 1);
        --block_->size;
        shrink_if_empty();
    }
    void pop_back() {
        std::destroy_at(&back());
        --block_->size;
        shrink_if_empty();
    }
    // Removes one element, keeping the order of the others; returns the position after it.
    // Moves the shorter side, so removing near either end (an ack in order) is O(1).
    iterator erase(iterator it) {
        const std::size_t at = it.index();
        if (at < size() / 2) {
            for (std::size_t i = at; i > 0; --i) slot(i) = std::move(slot(i - 1));
            pop_front();
            return {this, at};
        }
        for (std::size_t i = at; i + 1 < size(); ++i) slot(i) = std::move(slot(i + 1));
        pop_back();
        return {this, at};
    }
    // Removes every element for which pred is true, keeping the order of the others.
    template <class Pred>
    void erase_if(Pred pred) {
        const std::size_t n = size();
        std::size_t kept = 0;
        for (std::size_t i = 0; i < n; ++i) {
            if (pred(slot(i))) continue;
            if (kept != i) slot(kept) = std::move(slot(i));
            ++kept;
        }
        for (std::size_t i = kept; i < n; ++i) std::destroy_at(&slot(i));
        if (block_ != nullptr) block_->size = kept;
        shrink_if_empty();
    }
    void clear() noexcept {
        if (block_ == nullptr) return;
        for (std::size_t i = 0; i < block_->size; ++i) std::destroy_at(&slot(i));
        block::release(block_);
        block_ = nullptr;
    }

private:
    struct block {
        std::size_t capacity;  // a power of two
        std::size_t head;
        std::size_t size;

        static constexpr std::size_t slots_offset =
            (sizeof(std::size_t) * 3 + alignof(T) - 1) / alignof(T) * alignof(T);
        T* slots() noexcept {
            return std::launder(
                reinterpret_cast<T*>(reinterpret_cast<std::byte*>(this) + slots_offset));
        }
        static block* make(std::size_t capacity) {
            static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
            return ::new (::operator new(slots_offset + capacity * sizeof(T)))
                block{capacity, 0, 0};
        }
        static void release(block* b) noexcept { ::operator delete(b); }
    };

    T& slot(std::size_t i) const noexcept {
        return block_->slots()[(block_->head + i) & (block_->capacity - 1)];
    }
    void grow_if_full() {
        if (block_ != nullptr && block_->size < block_->capacity) return;
        block* bigger = block::make(block_ == nullptr ? 4 : block_->capacity * 2);
        if (block_ != nullptr) {
            T* to = bigger->slots();
            for (std::size_t i = 0; i < block_->size; ++i) {
                ::new (static_cast<void*>(to + i)) T(std::move(slot(i)));
                std::destroy_at(&slot(i));
            }
            bigger->size = block_->size;
            block::release(block_);
        }
        block_ = bigger;
    }
    void shrink_if_empty() noexcept {
        if (block_ == nullptr || block_->size != 0) return;
        if (block_->capacity > 64) {
            clear();
            return;
        }
        block_->head = 0;
    }

    block* block_ = nullptr;
};

}  // namespace iothub::broker
