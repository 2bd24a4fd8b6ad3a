#pragma once
// The broker's shared state and the seams to the layers around it.
//
// Threads: one `worker` per event-loop thread. A session lives on the worker chosen by the
// hash of its key (hub + client id) for its whole life, so session state needs no lock;
// the transport moves a new connection to that worker right after its CONNECT is read.
// The subscription index and the retained store are shared, behind `guarded`.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/gatekeeper.hpp"
#include "broker/guarded.hpp"
#include "broker/limits.hpp"
#include "broker/message.hpp"
#include "broker/retained_store.hpp"
#include "broker/subscription_index.hpp"

namespace iothub::broker {

class session;
class worker;

// One topic space. Nothing published in one hub reaches another.
struct hub_space {
    std::string name;
    guarded<subscription_index> subscriptions;
    guarded<retained_store> retained;
};

// A message on its way to one session, possibly on another worker.
struct delivery {
    session_id target = 0;
    message_ptr msg;
    std::uint8_t qos = 0;      // granted QoS for this subscriber (min of publish and subscription)
    bool retain = false;       // retain flag as sent to this subscriber
    std::vector<std::uint32_t> subscription_ids;
};

// Hands batches of work to other workers; implemented by the event-loop layer.
class dispatcher {
public:
    virtual ~dispatcher() = default;
    virtual void post_deliveries(unsigned worker, std::vector<delivery>&& batch) = 0;
    // Runs `task` on that worker's thread, soon (changes from the API: disconnect a device,
    // new rules). Unbounded: meant for rare control work, not for messages.
    virtual void post_task(unsigned worker, std::function<void(class worker&)> task) = 0;
};

// Where retained messages and persistent sessions go; implemented outside broker/.
class persistence {
public:
    virtual ~persistence() = default;
    virtual void retained_set(const std::string& hub, const message_ptr& m) = 0;
    virtual void retained_erase(const std::string& hub, const std::string& topic) = 0;
    virtual void session_save(const session& s) = 0;
    virtual void session_erase(const std::string& hub, const std::string& client_id) = 0;
};

// Counters of what was dropped or refused, summed over workers when read.
struct drop_counters {
    std::atomic<std::uint64_t> queue_full{0};          // QoS 1/2 messages not queued: limit
    std::atomic<std::uint64_t> qos0_dropped{0};        // QoS 0 not sent: queue full / offline
    std::atomic<std::uint64_t> too_large{0};           // not sent: over the client's max size
    std::atomic<std::uint64_t> expired{0};             // message expiry passed before sending
    std::atomic<std::uint64_t> retained_refused{0};    // retained limit reached
    std::atomic<std::uint64_t> connections_refused{0};  // max connections
    std::atomic<std::uint64_t> protocol_errors{0};     // connections closed for bad input
    std::atomic<std::uint64_t> tls_handshake_failures{0};  // failed, timed out or garbage
    std::atomic<std::uint64_t> ws_handshake_failures{0};   // WebSocket upgrades refused
};

using clock_fn = std::function<std::uint64_t()>;  // wall-clock milliseconds

class broker {
public:
    broker(limits l, unsigned workers, clock_fn clock);
    ~broker();
    broker(const broker&) = delete;
    broker& operator=(const broker&) = delete;

    unsigned worker_count() const noexcept { return static_cast<unsigned>(workers_.size()); }
    worker& worker_at(unsigned i) { return *workers_[i]; }
    // Which worker owns the session of (hub, client id).
    unsigned owner_of(std::string_view hub, std::string_view client_id) const noexcept;

    hub_space& hub(std::string_view name);  // created on first use
    // The limits in force; a connection takes a snapshot when it connects.
    std::shared_ptr<const limits> config() const;
    // Replaces the limits applied to connections made from now on (SIGHUP reload).
    void set_limits(const limits& l);
    std::uint64_t now() const { return clock_(); }

    void set_dispatcher(dispatcher* d) noexcept { dispatcher_ = d; }
    dispatcher* get_dispatcher() const noexcept { return dispatcher_; }
    void set_persistence(persistence* p) noexcept { persistence_ = p; }
    // Authentication and rules of clients; without one, only the development hub admits.
    void set_gatekeeper(gatekeeper* g) noexcept { gatekeeper_ = g; }
    gatekeeper* get_gatekeeper() const noexcept { return gatekeeper_; }
    persistence* get_persistence() const noexcept { return persistence_; }

    // Connection accounting (max_connections).
    bool try_add_connection() noexcept;
    void remove_connection() noexcept;
    std::size_t connection_count() const noexcept { return connections_.load(); }

    drop_counters& drops() noexcept { return drops_; }

    // Stores (or erases, on an empty payload) a retained message. False when refused
    // because the hub holds max_retained messages already.
    bool set_retained(hub_space& h, const message_ptr& m);
    // Erases every retained message of a hub (the hub was deleted), in the store too.
    void clear_retained(hub_space& h);
    // Drops retained messages whose expiry passed (the store forgets them at the next start).
    void purge_expired_retained(std::uint64_t now_ms);
    // Restores a retained message at start-up (no persistence write).
    void restore_retained(std::string_view hub, message_ptr m);

    // Rate-limited logging of drops: returns true when the caller may log now.
    bool may_log_drop(std::uint64_t now_ms);

    // Log hook (level 0 trace .. 5 critical); set by the composition root.
    std::function<void(int level, const std::string& text)> log;

private:
    mutable std::mutex limits_mutex_;
    std::shared_ptr<const limits> limits_;
    clock_fn clock_;
    std::vector<std::unique_ptr<worker>> workers_;
    std::mutex hubs_mutex_;
    std::unordered_map<std::string, std::unique_ptr<hub_space>> hubs_;
    dispatcher* dispatcher_ = nullptr;
    persistence* persistence_ = nullptr;
    gatekeeper* gatekeeper_ = nullptr;
    std::atomic<std::size_t> connections_{0};
    drop_counters drops_;
    std::atomic<std::uint64_t> last_drop_log_ms_{0};
};

}  // namespace iothub::broker
