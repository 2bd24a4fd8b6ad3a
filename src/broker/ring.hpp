#pragma once
// A double-ended queue in one growable circular array. Unlike std::deque it allocates nothing
// until the first element arrives, which matters for the two queues every session carries
// while idle, and it gives memory back when emptied after a burst.

#include <cstddef>
#include <iterator>
#include <utility>
#include <vector>

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

    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }

    T& operator[](std::size_t i) noexcept { return slots_[(head_ + i) & (slots_.size() - 1)]; }
    const T& operator[](std::size_t i) const noexcept {
        return slots_[(head_ + i) & (slots_.size() - 1)];
    }
    T& front() noexcept { return (*this)[0]; }
    T& back() noexcept { return (*this)[size_ - 1]; }

    iterator begin() noexcept { return {this, 0}; }
    iterator end() noexcept { return {this, size_}; }
    const_iterator begin() const noexcept { return {this, 0}; }
    const_iterator end() const noexcept { return {this, size_}; }

    void push_back(T&& v) {
        grow_if_full();
        (*this)[size_] = std::move(v);
        ++size_;
    }
    void push_front(T&& v) {
        grow_if_full();
        head_ = (head_ + slots_.size() - 1) & (slots_.size() - 1);
        ++size_;
        front() = std::move(v);
    }
    void pop_front() {
        front() = T{};
        head_ = (head_ + 1) & (slots_.size() - 1);
        --size_;
        shrink_if_empty();
    }
    void pop_back() {
        back() = T{};
        --size_;
        shrink_if_empty();
    }
    // Removes one element, keeping the order of the others; returns the position after it.
    // Moves the shorter side, so removing near either end (an ack in order) is O(1).
    iterator erase(iterator it) {
        const std::size_t at = it.index();
        if (at < size_ / 2) {
            for (std::size_t i = at; i > 0; --i) (*this)[i] = std::move((*this)[i - 1]);
            pop_front();
            return {this, at};
        }
        for (std::size_t i = at; i + 1 < size_; ++i) (*this)[i] = std::move((*this)[i + 1]);
        pop_back();
        return {this, at};
    }
    // Removes every element for which pred is true, keeping the order of the others.
    template <class Pred>
    void erase_if(Pred pred) {
        std::size_t kept = 0;
        for (std::size_t i = 0; i < size_; ++i) {
            if (pred((*this)[i])) continue;
            if (kept != i) (*this)[kept] = std::move((*this)[i]);
            ++kept;
        }
        for (std::size_t i = kept; i < size_; ++i) (*this)[i] = T{};
        size_ = kept;
        shrink_if_empty();
    }
    void clear() {
        slots_ = {};
        head_ = size_ = 0;
    }

private:
    void grow_if_full() {
        if (size_ < slots_.size()) return;
        std::vector<T> bigger(slots_.empty() ? 4 : slots_.size() * 2);
        for (std::size_t i = 0; i < size_; ++i) bigger[i] = std::move((*this)[i]);
        slots_.swap(bigger);
        head_ = 0;
    }
    void shrink_if_empty() {
        if (size_ == 0 && slots_.size() > 64) clear();
        if (size_ == 0) head_ = 0;
    }

    std::vector<T> slots_;  // size is zero or a power of two
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

}  // namespace iothub::broker
