#pragma once
// Building blocks shared by the level tries of the subscription index and the retained store:
// splitting a topic into levels without allocating, nodes that keep their level name in the
// same allocation, a compact child table and a small stack for iterative tree walks.

#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <new>
#include <string_view>
#include <utility>
#include <vector>

namespace iothub::broker::detail {

// Position of a level inside a topic or filter. A text of n bytes has levels starting at
// offsets <= n; `end_of(text)` (n + 1) means every level has been consumed.
constexpr std::size_t end_of(std::string_view text) noexcept { return text.size() + 1; }

// The level starting at `pos`; sets `next` to the start of the following level.
inline std::string_view level_at(std::string_view text, std::size_t pos, std::size_t& next) noexcept {
    assert(pos <= text.size());
    const void* slash = text.size() > pos ? std::memchr(text.data() + pos, '/', text.size() - pos) : nullptr;
    const std::size_t end =
        slash != nullptr ? static_cast<std::size_t>(static_cast<const char*>(slash) - text.data()) : text.size();
    next = end + 1;
    return text.substr(pos, end - pos);
}

inline std::uint32_t level_hash(std::string_view level) noexcept {
    const std::size_t h = std::hash<std::string_view>{}(level);
    return static_cast<std::uint32_t>(h ^ (h >> 32));
}

// Nodes are allocated with their level name stored right after the object. A node type
// provides `name_hash` and `name_size` members and reads its name with `trailing_name`.
template <class Node>
std::string_view trailing_name(const Node* n) noexcept {
    return {reinterpret_cast<const char*>(n + 1), n->name_size};
}

template <class Node>
Node* new_node(std::string_view name, Node* parent) {
    void* mem = ::operator new(sizeof(Node) + name.size());
    Node* n = ::new (mem) Node();
    if (!name.empty()) {
        std::memcpy(reinterpret_cast<char*>(n + 1), name.data(), name.size());
    }
    n->name_size = static_cast<std::uint32_t>(name.size());
    n->name_hash = level_hash(name);
    n->parent = parent;
    return n;
}

template <class Node>
void delete_node(Node* n) noexcept {
    n->~Node();
    ::operator delete(static_cast<void*>(n));
}

// Children of a node, keyed by level name. One child is kept inline, up to `small_capacity`
// in a packed array searched linearly, more in an open-addressing table with linear probing.
// The table holds pointers only: name and hash live in the child. It shrinks as children leave.
template <class Node>
class child_table {
public:
    child_table() noexcept : one_(nullptr) {}
    child_table(const child_table&) = delete;
    child_table& operator=(const child_table&) = delete;
    ~child_table() {
        if (capacity_ != 0) {
            delete[] slots_;
        }
    }

    std::uint32_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }

    Node* find(std::string_view name) const noexcept {
        if (capacity_ == 0) {
            return size_ == 1 && same(one_, name) ? one_ : nullptr;
        }
        if (capacity_ <= small_capacity) {
            for (std::uint32_t i = 0; i < size_; ++i) {
                if (same(slots_[i], name)) {
                    return slots_[i];
                }
            }
            return nullptr;
        }
        const std::uint32_t hash = level_hash(name);
        const std::uint32_t mask = capacity_ - 1;
        for (std::uint32_t i = hash & mask;; i = (i + 1) & mask) {
            Node* n = slots_[i];
            if (n == nullptr) {
                return nullptr;
            }
            if (n->name_hash == hash && trailing_name(n) == name) {
                return n;
            }
        }
    }

    // `n` must not be present yet.
    void insert(Node* n) {
        if (capacity_ == 0) {
            if (size_ == 0) {
                one_ = n;
                size_ = 1;
                return;
            }
            Node* first = one_;
            Node** slots = new Node*[4]();
            slots[0] = first;
            slots[1] = n;
            slots_ = slots;
            capacity_ = 4;
            size_ = 2;
            return;
        }
        if (capacity_ <= small_capacity) {
            if (size_ < capacity_) {
                slots_[size_++] = n;
                return;
            }
            rehash(capacity_ < small_capacity ? capacity_ * 2 : small_capacity * 2);
            if (capacity_ <= small_capacity) {
                slots_[size_++] = n;
                return;
            }
        } else if ((size_ + 1) * 4 > capacity_ * 3) {
            rehash(capacity_ * 2);
        }
        place(slots_, capacity_, n);
        ++size_;
    }

    // `n` must be present.
    void erase(Node* n) noexcept {
        if (capacity_ == 0) {
            assert(size_ == 1 && one_ == n);
            one_ = nullptr;
            size_ = 0;
            return;
        }
        if (capacity_ <= small_capacity) {
            std::uint32_t i = 0;
            while (slots_[i] != n) {
                ++i;
                assert(i < size_);
            }
            slots_[i] = slots_[size_ - 1];
            slots_[--size_] = nullptr;
            if (size_ == 1) {
                Node* last = slots_[0];
                delete[] slots_;
                one_ = last;
                capacity_ = 0;
            } else if (capacity_ > 4 && size_ * 4 <= capacity_) {
                shrink(capacity_ / 2);
            }
            return;
        }
        const std::uint32_t mask = capacity_ - 1;
        std::uint32_t hole = n->name_hash & mask;
        while (slots_[hole] != n) {
            hole = (hole + 1) & mask;
        }
        // Backward-shift deletion keeps every probe chain unbroken without tombstones.
        for (std::uint32_t j = (hole + 1) & mask; slots_[j] != nullptr; j = (j + 1) & mask) {
            const std::uint32_t home = slots_[j]->name_hash & mask;
            const bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
            if (!stays) {
                slots_[hole] = slots_[j];
                hole = j;
            }
        }
        slots_[hole] = nullptr;
        --size_;
        if (size_ <= small_capacity / 2) {
            shrink(small_capacity);
        } else if (capacity_ > 2 * small_capacity && size_ * 8 < capacity_) {
            shrink(capacity_ / 2);
        }
    }

    template <class F>
    void for_each(F&& f) const {
        if (capacity_ == 0) {
            if (size_ == 1) {
                f(one_);
            }
            return;
        }
        const std::uint32_t used = capacity_ <= small_capacity ? size_ : capacity_;
        for (std::uint32_t i = 0; i < used; ++i) {
            if (slots_[i] != nullptr) {
                f(slots_[i]);
            }
        }
    }

private:
    static constexpr std::uint32_t small_capacity = 8;

    static bool same(const Node* n, std::string_view name) noexcept {
        return n->name_size == name.size() &&
               (name.empty() || std::memcmp(trailing_name(n).data(), name.data(), name.size()) == 0);
    }

    static void place(Node** slots, std::uint32_t capacity, Node* n) noexcept {
        const std::uint32_t mask = capacity - 1;
        std::uint32_t i = n->name_hash & mask;
        while (slots[i] != nullptr) {
            i = (i + 1) & mask;
        }
        slots[i] = n;
    }

    // Shrinking only returns memory; when that memory cannot be had, the table stays larger.
    void shrink(std::uint32_t capacity) noexcept {
        try {
            rehash(capacity);
        } catch (const std::bad_alloc&) {
        }
    }

    // Moves the children into a fresh array of `capacity` slots (packed when small).
    void rehash(std::uint32_t capacity) {
        assert(capacity_ != 0 && capacity >= size_);
        Node** fresh = new Node*[capacity]();
        std::uint32_t packed = 0;
        for_each([&](Node* n) {
            if (capacity <= small_capacity) {
                fresh[packed++] = n;
            } else {
                place(fresh, capacity, n);
            }
        });
        delete[] slots_;
        slots_ = fresh;
        capacity_ = capacity;
    }

    union {
        Node* one_;      // capacity_ == 0
        Node** slots_;   // capacity_ > 0
    };
    std::uint32_t size_ = 0;
    std::uint32_t capacity_ = 0;
};

// A stack that lives on the caller's stack while shallow and spills to the heap when deep.
template <class T, std::size_t N>
class small_stack {
public:
    small_stack() = default;
    // Not copyable: the inline part is only partly written.
    small_stack(const small_stack&) = delete;
    small_stack& operator=(const small_stack&) = delete;

    bool empty() const noexcept { return size_ == 0; }

    void push(const T& v) {
        if (size_ < N) {
            inline_[size_] = v;
        } else {
            spill_.push_back(v);
        }
        ++size_;
    }

    T pop() noexcept {
        assert(size_ > 0);
        --size_;
        if (size_ < N) {
            return inline_[size_];
        }
        T v = spill_.back();
        spill_.pop_back();
        return v;
    }

private:
    std::array<T, N> inline_;  // written before read: push() fills what pop() returns
    std::vector<T> spill_;
    std::size_t size_ = 0;
};

}  // namespace iothub::broker::detail
