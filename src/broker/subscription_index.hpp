#pragma once
// The subscription index: every filter of every session, in a trie of topic levels, matched
// once per publish. Not thread-safe by itself; the broker keeps it in a `guarded`, and match()
// may run under a shared lock from several workers at once.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/topic_levels.hpp"

namespace iothub::broker {

using session_id = std::uint64_t;  // never 0

struct subscription_options {
    std::uint8_t qos = 0;
    bool no_local = false;
    bool retain_as_published = false;
    std::uint8_t retain_handling = 0;
    std::uint32_t identifier = 0;  // 0 = none
};

namespace detail {

struct subscriber {
    session_id sid;
    subscription_options options;
};

// Subscribers of one filter (or members of one shared group). Linear lookup while small; an
// index by session id once a filter has many subscribers, so SUBSCRIBE stays O(1).
class subscriber_set {
public:
    std::size_t size() const noexcept { return items_.size(); }
    bool empty() const noexcept { return items_.empty(); }
    const subscriber& operator[](std::size_t i) const noexcept { return items_[i]; }
    const subscriber* begin() const noexcept { return items_.data(); }
    const subscriber* end() const noexcept { return items_.data() + items_.size(); }

    // Returns true if `sid` was already there (its options are replaced).
    bool upsert(session_id sid, const subscription_options& options);
    // Returns true if `sid` was there.
    bool erase(session_id sid);

private:
    static constexpr std::size_t index_above = 32;
    static constexpr std::size_t index_below = 16;

    std::size_t position(session_id sid) const noexcept;

    std::vector<subscriber> items_;
    std::unique_ptr<std::unordered_map<session_id, std::uint32_t>> index_;
};

struct shared_group {
    std::string name;
    subscriber_set members;
    mutable std::atomic<std::uint32_t> cursor{0};
};

struct subscription_node {
    subscription_node* parent = nullptr;
    child_table<subscription_node> children;
    subscription_node* plus = nullptr;  // the '+' child
    subscription_node* hash = nullptr;  // the '#' child; it never has children
    subscriber_set subscribers;
    std::unique_ptr<std::vector<std::unique_ptr<shared_group>>> shared;
    std::uint32_t name_hash = 0;
    std::uint32_t name_size = 0;

    std::string_view name() const noexcept { return trailing_name(this); }
    bool unused() const noexcept {
        return children.empty() && plus == nullptr && hash == nullptr && subscribers.empty() &&
               shared == nullptr;
    }
};

}  // namespace detail

class subscription_index {
public:
    subscription_index();
    subscription_index(const subscription_index&) = delete;
    subscription_index& operator=(const subscription_index&) = delete;
    ~subscription_index();

    // Adds or replaces the subscription of `sid` to `filter` (a valid filter, without any
    // "$share/group/" prefix) in `share_group` (empty = not shared). Returns true if it
    // replaced one.
    bool subscribe(std::string_view filter, std::string_view share_group, session_id sid,
                   const subscription_options& o);

    // Returns true if it existed. Nodes left without subscribers or children are freed.
    bool unsubscribe(std::string_view filter, std::string_view share_group, session_id sid);

    // Calls fn(session_id, const subscription_options&) for every non-shared subscription whose
    // filter matches `topic` (a valid topic name), and once for every shared group with a
    // matching filter, with one member picked round-robin. A topic starting with '$' is not
    // matched by a filter whose first level is '+' or '#'. A session subscribed by several
    // matching filters is reported once per filter. Does not allocate unless the trie has more
    // than 32 pending '+' branches on one path.
    template <class F>
    void match(std::string_view topic, F&& fn) const;

    // Number of subscriptions; each member of a shared group counts.
    std::size_t size() const noexcept { return size_; }
    // Number of trie nodes besides the root; 0 when empty.
    std::size_t node_count() const noexcept { return nodes_; }

private:
    using node = detail::subscription_node;

    template <class F>
    static void report(const node* n, F& fn);

    node* find_node(std::string_view filter) const noexcept;
    node* make_path(std::string_view filter);
    void prune(node* n) noexcept;

    node* root_;
    std::size_t size_ = 0;
    std::size_t nodes_ = 0;
};

template <class F>
void subscription_index::report(const node* n, F& fn) {
    for (const detail::subscriber& s : n->subscribers) {
        fn(s.sid, s.options);
    }
    if (n->shared != nullptr) {
        for (const auto& group : *n->shared) {
            const std::size_t count = group->members.size();
            if (count != 0) {
                const std::uint32_t turn = group->cursor.fetch_add(1, std::memory_order_relaxed);
                const detail::subscriber& s = group->members[turn % count];
                fn(s.sid, s.options);
            }
        }
    }
}

template <class F>
void subscription_index::match(std::string_view topic, F&& fn) const {
    struct frame {
        const node* n;
        std::size_t pos;
    };
    const std::size_t done = detail::end_of(topic);
    const bool system_topic = !topic.empty() && topic.front() == '$';
    detail::small_stack<frame, 32> pending;
    pending.push({root_, 0});
    while (!pending.empty()) {
        auto [n, pos] = pending.pop();
        for (;;) {
            const bool wildcards = !(system_topic && pos == 0);
            if (n->hash != nullptr && wildcards) {
                report(n->hash, fn);
            }
            if (pos == done) {
                report(n, fn);
                break;
            }
            std::size_t next = 0;
            const std::string_view level = detail::level_at(topic, pos, next);
            if (n->plus != nullptr && wildcards) {
                pending.push({n->plus, next});
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
