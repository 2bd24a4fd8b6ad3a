#pragma once
// Retained messages by topic, in a trie of topic levels so that a wildcard subscription walks
// only the matching part of the tree. Not thread-safe by itself; the broker keeps it in a
// `guarded`. Expiry is the caller's decision: it passes the clock in.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "broker/message.hpp"
#include "broker/topic_levels.hpp"

namespace iothub::broker {

namespace detail {

struct retained_node {
    retained_node* parent = nullptr;
    child_table<retained_node> children;
    message_ptr msg;
    std::uint32_t name_hash = 0;
    std::uint32_t name_size = 0;

    std::string_view name() const noexcept { return trailing_name(this); }
};

}  // namespace detail

class retained_store {
public:
    retained_store();
    retained_store(const retained_store&) = delete;
    retained_store& operator=(const retained_store&) = delete;
    ~retained_store();

    // Stores `m` under m->topic, replacing what was there; an empty payload erases instead.
    void set(message_ptr m);
    // Returns true if a message was retained under `topic`.
    bool erase(std::string_view topic);
    message_ptr find(std::string_view topic) const;

    // Calls fn(const message_ptr&) for each retained message whose topic matches `filter`
    // (a valid filter without "$share/" prefix). Topics starting with '$' are not matched by
    // a filter whose first level is '+' or '#'.
    template <class F>
    void match(std::string_view filter, F&& fn) const;

    // Calls fn(const message_ptr&) for every retained message.
    template <class F>
    void for_each(F&& fn) const {
        walk(root_, false, fn);
    }

    // Erases every message with message::expired(now_ms); returns how many.
    std::size_t erase_expired(std::uint64_t now_ms);

    std::size_t size() const noexcept { return size_; }
    // Number of trie nodes besides the root; 0 when empty.
    std::size_t node_count() const noexcept { return nodes_; }

private:
    using node = detail::retained_node;

    static bool system_level(const node* n) noexcept { return n->name_size != 0 && n->name()[0] == '$'; }

    // Reports the message of `top` and of every node below it; skips top-level '$' children
    // when `skip_system` (only meaningful when `top` is the root).
    template <class F>
    static void walk(const node* top, bool skip_system, F& fn);

    node* find_node(std::string_view topic) const noexcept;
    void clear(node* n) noexcept;
    void prune(node* n) noexcept;

    node* root_;
    std::size_t size_ = 0;
    std::size_t nodes_ = 0;
};

template <class F>
void retained_store::walk(const node* top, bool skip_system, F& fn) {
    detail::small_stack<const node*, 32> pending;
    pending.push(top);
    while (!pending.empty()) {
        const node* n = pending.pop();
        if (n->msg != nullptr) {
            fn(n->msg);
        }
        const bool skip = skip_system && n == top;
        n->children.for_each([&](const node* c) {
            if (!(skip && system_level(c))) {
                pending.push(c);
            }
        });
    }
}

template <class F>
void retained_store::match(std::string_view filter, F&& fn) const {
    struct frame {
        const node* n;
        std::size_t pos;
    };
    const std::size_t done = detail::end_of(filter);
    detail::small_stack<frame, 32> pending;
    pending.push({root_, 0});
    while (!pending.empty()) {
        auto [n, pos] = pending.pop();
        for (;;) {
            if (pos == done) {
                if (n->msg != nullptr) {
                    fn(n->msg);
                }
                break;
            }
            std::size_t next = 0;
            const std::string_view level = detail::level_at(filter, pos, next);
            const bool at_root = pos == 0;
            if (level == "#") {
                walk(n, at_root, fn);
                break;
            }
            if (level == "+") {
                n->children.for_each([&](const node* c) {
                    if (!(at_root && system_level(c))) {
                        pending.push({c, next});
                    }
                });
                break;
            }
            const node* child = n->children.find(level);
            if (child == nullptr) {
                break;
            }
            n = child;
            pos = next;
        }
    }
}

}  // namespace iothub::broker
