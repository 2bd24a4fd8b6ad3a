#include "broker/broker.hpp"

#include "broker/worker.hpp"

namespace iothub::broker {

broker::broker(limits l, unsigned workers, clock_fn clock)
    : limits_(std::make_shared<const limits>(l)), clock_(std::move(clock)) {
    if (workers == 0) workers = 1;
    workers_.reserve(workers);
    for (unsigned i = 0; i < workers; ++i) workers_.push_back(std::make_unique<worker>(*this, i));
}

broker::~broker() = default;

unsigned broker::owner_of(std::string_view hub, std::string_view client_id) const noexcept {
    // FNV-1a over hub, a separator and the client id: stable across runs and platforms.
    std::uint64_t h = 1469598103934665603ULL;
    auto mix = [&h](std::string_view s) {
        for (unsigned char c : s) {
            h ^= c;
            h *= 1099511628211ULL;
        }
    };
    mix(hub);
    h ^= 0xFF;
    h *= 1099511628211ULL;
    mix(client_id);
    return static_cast<unsigned>(h % workers_.size());
}

hub_space& broker::hub(std::string_view name) {
    std::lock_guard lock(hubs_mutex_);
    auto it = hubs_.find(std::string(name));
    if (it != hubs_.end()) return *it->second;
    auto h = std::make_unique<hub_space>();
    h->name = std::string(name);
    auto& ref = *h;
    hubs_.emplace(h->name, std::move(h));
    return ref;
}

std::shared_ptr<const limits> broker::config() const {
    std::lock_guard lock(limits_mutex_);
    return limits_;
}

void broker::set_limits(const limits& l) {
    auto next = std::make_shared<const limits>(l);
    std::lock_guard lock(limits_mutex_);
    limits_ = std::move(next);
}

bool broker::try_add_connection() noexcept {
    auto max = config()->max_connections;
    auto n = connections_.fetch_add(1) + 1;
    if (max != 0 && n > max) {
        connections_.fetch_sub(1);
        drops_.connections_refused.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    return true;
}

void broker::remove_connection() noexcept { connections_.fetch_sub(1); }

bool broker::set_retained(hub_space& h, const message_ptr& m) {
    const auto max = config()->max_retained;
    auto store = h.retained.write();
    if (m->payload.empty()) {
        store->erase(m->topic);
    } else {
        if (max != 0 && store->size() >= max && !store->find(m->topic)) {
            store->erase_expired(now());
            if (store->size() >= max) {
                drops_.retained_refused.fetch_add(1, std::memory_order_relaxed);
                return false;
            }
        }
        store->set(m);
    }
    // Queued while the lock is held, so the store sees changes to a topic in their order.
    if (persistence_ != nullptr) {
        if (m->payload.empty())
            persistence_->retained_erase(h.name, m->topic);
        else
            persistence_->retained_set(h.name, m);
    }
    return true;
}

void broker::clear_retained(hub_space& h) {
    std::vector<std::string> topics;
    auto store = h.retained.write();
    store->for_each([&topics](const message_ptr& m) { topics.push_back(m->topic); });
    for (const auto& t : topics) {
        store->erase(t);
        if (persistence_ != nullptr) persistence_->retained_erase(h.name, t);
    }
}

void broker::purge_expired_retained(std::uint64_t now_ms) {
    std::vector<hub_space*> hubs;
    {
        std::lock_guard lock(hubs_mutex_);
        for (auto& [name, h] : hubs_) hubs.push_back(h.get());
    }
    for (auto* h : hubs) {
        std::size_t n = h->retained.write()->erase_expired(now_ms);
        if (n != 0) drops_.expired.fetch_add(n, std::memory_order_relaxed);
    }
}

void broker::restore_retained(std::string_view hub_name, message_ptr m) {
    hub(hub_name).retained.write()->set(std::move(m));
}

bool broker::may_log_drop(std::uint64_t now_ms) {
    auto interval = config()->drop_log_interval_ms;
    auto last = last_drop_log_ms_.load(std::memory_order_relaxed);
    if (last != 0 && now_ms < last + interval) return false;
    return last_drop_log_ms_.compare_exchange_strong(last, now_ms);
}

}  // namespace iothub::broker
