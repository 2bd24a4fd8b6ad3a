#include "broker/retained_store.hpp"

#include <cassert>
#include <utility>
#include <vector>

namespace iothub::broker {

retained_store::retained_store() : root_(detail::new_node<node>({}, nullptr)) {}

retained_store::~retained_store() {
    std::vector<node*> pending{root_};
    while (!pending.empty()) {
        node* n = pending.back();
        pending.pop_back();
        n->children.for_each([&](node* c) { pending.push_back(c); });
        detail::delete_node(n);
    }
}

retained_store::node* retained_store::find_node(std::string_view topic) const noexcept {
    node* n = root_;
    const std::size_t done = detail::end_of(topic);
    for (std::size_t pos = 0; pos != done && n != nullptr;) {
        std::size_t next = 0;
        n = n->children.find(detail::level_at(topic, pos, next));
        pos = next;
    }
    return n;
}

void retained_store::set(message_ptr m) {
    assert(m != nullptr);
    if (m->payload.empty()) {
        erase(m->topic);
        return;
    }
    const std::string_view topic = m->topic;
    node* n = root_;
    const std::size_t done = detail::end_of(topic);
    for (std::size_t pos = 0; pos != done;) {
        std::size_t next = 0;
        const std::string_view level = detail::level_at(topic, pos, next);
        node* child = n->children.find(level);
        if (child == nullptr) {
            try {
                child = detail::new_node<node>(level, n);
                n->children.insert(child);
            } catch (...) {
                if (child != nullptr) {
                    detail::delete_node(child);
                }
                prune(n);
                throw;
            }
            ++nodes_;
        }
        n = child;
        pos = next;
    }
    if (n->msg == nullptr) {
        ++size_;
    }
    n->msg = std::move(m);
}

bool retained_store::erase(std::string_view topic) {
    node* n = find_node(topic);
    if (n == nullptr || n->msg == nullptr) {
        return false;
    }
    clear(n);
    return true;
}

message_ptr retained_store::find(std::string_view topic) const {
    const node* n = find_node(topic);
    return n != nullptr ? n->msg : nullptr;
}

std::size_t retained_store::erase_expired(std::uint64_t now_ms) {
    std::vector<node*> expired;
    std::vector<node*> pending{root_};
    while (!pending.empty()) {
        node* n = pending.back();
        pending.pop_back();
        if (n->msg != nullptr && n->msg->expired(now_ms)) {
            expired.push_back(n);
        }
        n->children.for_each([&](node* c) { pending.push_back(c); });
    }
    // Pruning frees only nodes without a message, so nodes still listed stay alive.
    for (node* n : expired) {
        clear(n);
    }
    return expired.size();
}

void retained_store::clear(node* n) noexcept {
    n->msg.reset();
    --size_;
    prune(n);
}

void retained_store::prune(node* n) noexcept {
    while (n != root_ && n->msg == nullptr && n->children.empty()) {
        node* parent = n->parent;
        parent->children.erase(n);
        detail::delete_node(n);
        --nodes_;
        n = parent;
    }
}

}  // namespace iothub::broker
