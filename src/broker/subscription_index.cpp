#include "broker/subscription_index.hpp"

#include <algorithm>
#include <cassert>

namespace iothub::broker {

namespace detail {

std::size_t subscriber_set::position(session_id sid) const noexcept {
    if (index_ != nullptr) {
        const auto it = index_->find(sid);
        return it == index_->end() ? items_.size() : it->second;
    }
    for (std::size_t i = 0; i < items_.size(); ++i) {
        if (items_[i].sid == sid) {
            return i;
        }
    }
    return items_.size();
}

bool subscriber_set::upsert(session_id sid, const subscription_options& options) {
    assert(sid != 0);
    const std::size_t at = position(sid);
    if (at != items_.size()) {
        items_[at].options = options;
        return true;
    }
    items_.push_back({sid, options});
    if (index_ != nullptr) {
        index_->emplace(sid, static_cast<std::uint32_t>(at));
    } else if (items_.size() > index_above) {
        index_ = std::make_unique<std::unordered_map<session_id, std::uint32_t>>();
        index_->reserve(items_.size() * 2);
        for (std::size_t i = 0; i < items_.size(); ++i) {
            index_->emplace(items_[i].sid, static_cast<std::uint32_t>(i));
        }
    }
    return false;
}

bool subscriber_set::erase(session_id sid) {
    const std::size_t at = position(sid);
    if (at == items_.size()) {
        return false;
    }
    const std::size_t last = items_.size() - 1;
    if (index_ != nullptr) {
        index_->erase(sid);
        if (at != last) {
            (*index_)[items_[last].sid] = static_cast<std::uint32_t>(at);
        }
    }
    items_[at] = items_[last];
    items_.pop_back();
    if (index_ != nullptr && items_.size() < index_below) {
        index_.reset();
    }
    if (items_.empty()) {
        std::vector<subscriber>().swap(items_);
    } else if (items_.capacity() > 4 && items_.size() * 4 <= items_.capacity()) {
        items_.shrink_to_fit();
    }
    return true;
}

}  // namespace detail

subscription_index::subscription_index() : root_(detail::new_node<node>({}, nullptr)) {}

subscription_index::~subscription_index() {
    // Iterative, so a filter with thousands of levels cannot exhaust the stack.
    std::vector<node*> pending{root_};
    while (!pending.empty()) {
        node* n = pending.back();
        pending.pop_back();
        n->children.for_each([&](node* c) { pending.push_back(c); });
        if (n->plus != nullptr) {
            pending.push_back(n->plus);
        }
        if (n->hash != nullptr) {
            pending.push_back(n->hash);
        }
        detail::delete_node(n);
    }
}

subscription_index::node* subscription_index::find_node(std::string_view filter) const noexcept {
    node* n = root_;
    const std::size_t done = detail::end_of(filter);
    for (std::size_t pos = 0; pos != done && n != nullptr;) {
        std::size_t next = 0;
        const std::string_view level = detail::level_at(filter, pos, next);
        if (level == "+") {
            n = n->plus;
        } else if (level == "#") {
            n = n->hash;
        } else {
            n = n->children.find(level);
        }
        pos = next;
    }
    return n;
}

subscription_index::node* subscription_index::make_path(std::string_view filter) {
    node* n = root_;
    const std::size_t done = detail::end_of(filter);
    for (std::size_t pos = 0; pos != done;) {
        std::size_t next = 0;
        const std::string_view level = detail::level_at(filter, pos, next);
        node** slot = nullptr;
        if (level == "+") {
            slot = &n->plus;
        } else if (level == "#") {
            assert(next == done);
            slot = &n->hash;
        }
        node* child = slot != nullptr ? *slot : n->children.find(level);
        if (child == nullptr) {
            try {
                child = detail::new_node<node>(level, n);
                if (slot != nullptr) {
                    *slot = child;
                } else {
                    n->children.insert(child);
                }
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
    return n;
}

void subscription_index::prune(node* n) noexcept {
    while (n != root_ && n->unused()) {
        node* parent = n->parent;
        if (parent->plus == n) {
            parent->plus = nullptr;
        } else if (parent->hash == n) {
            parent->hash = nullptr;
        } else {
            parent->children.erase(n);
        }
        detail::delete_node(n);
        --nodes_;
        n = parent;
    }
}

bool subscription_index::subscribe(std::string_view filter, std::string_view share_group, session_id sid,
                                   const subscription_options& o) {
    node* n = make_path(filter);
    bool replaced = false;
    try {
        if (share_group.empty()) {
            replaced = n->subscribers.upsert(sid, o);
        } else {
            if (n->shared == nullptr) {
                n->shared = std::make_unique<std::vector<std::unique_ptr<detail::shared_group>>>();
            }
            auto& groups = *n->shared;
            auto it = std::find_if(groups.begin(), groups.end(),
                                   [&](const auto& g) { return g->name == share_group; });
            if (it == groups.end()) {
                auto group = std::make_unique<detail::shared_group>();
                group->name.assign(share_group);
                groups.push_back(std::move(group));
                it = groups.end() - 1;
            }
            replaced = (*it)->members.upsert(sid, o);
        }
    } catch (...) {
        if (n->shared != nullptr) {
            std::erase_if(*n->shared, [](const auto& g) { return g->members.empty(); });
            if (n->shared->empty()) {
                n->shared.reset();
            }
        }
        prune(n);
        throw;
    }
    if (!replaced) {
        ++size_;
    }
    return replaced;
}

bool subscription_index::unsubscribe(std::string_view filter, std::string_view share_group, session_id sid) {
    node* n = find_node(filter);
    if (n == nullptr) {
        return false;
    }
    bool removed = false;
    if (share_group.empty()) {
        removed = n->subscribers.erase(sid);
    } else if (n->shared != nullptr) {
        auto& groups = *n->shared;
        const auto it = std::find_if(groups.begin(), groups.end(),
                                     [&](const auto& g) { return g->name == share_group; });
        if (it != groups.end()) {
            removed = (*it)->members.erase(sid);
            if ((*it)->members.empty()) {
                groups.erase(it);
                if (groups.empty()) {
                    n->shared.reset();
                }
            }
        }
    }
    if (!removed) {
        return false;
    }
    --size_;
    prune(n);
    return true;
}

}  // namespace iothub::broker
