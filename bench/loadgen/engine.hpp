#pragma once
// The generator's event loop: one worker per thread owns its connections, reads with one
// read() per readiness event, parses every whole packet, and writes each connection's queued
// packets with one write() per loop turn.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "histogram.hpp"
#include "options.hpp"
#include "stream_check.hpp"
#include "transport.hpp"
#include "wire.hpp"

namespace iothub::bench {

std::uint64_t now_ns() noexcept;

// Makes what every connection shares for o.link (the client TLS context). Call once before
// any worker starts; returns what failed, or "".
std::string prepare_transport(const options& o);

enum class role : std::uint8_t {
    publisher,
    subscriber,       // counts towards its publishers' windows
    slow_subscriber,  // reads at a fixed byte rate; not counted in windows
    idle,
    connector,        // connect, CONNACK, DISCONNECT, again
    control,          // driven step by step by scenario code (subscriptions, retained)
};

enum class phase : int { setup, run, drain, stop };

using check_map = std::unordered_map<std::uint32_t, stream_check>;

// State shared by every worker of one run.
struct run_state {
    const options* opt = nullptr;
    std::atomic<int> current{static_cast<int>(phase::setup)};
    std::atomic<bool> measuring{false};
    std::atomic<int> ready_workers{0};
    std::atomic<int> fatal{0};
    std::unique_ptr<std::atomic<std::uint64_t>[]> delivered;  // per publisher, counted subscribers
    std::uint32_t publisher_count = 0;
    std::uint32_t deliveries_per_message = 1;
    double rate_per_publisher = 0;
    std::uint64_t run_start_ns = 0;
    phase get() const noexcept { return static_cast<phase>(current.load(std::memory_order_acquire)); }
};

struct connection {
    int fd = -1;
    role kind = role::idle;
    // connecting: TCP; transport: TLS handshake and/or WebSocket upgrade; handshake: CONNECT sent.
    enum class state : std::uint8_t {
        idle,
        connecting,
        transport,
        handshake,
        ready,
        closing,
        closed
    } st = state::idle;
    std::string client_id;
    bytes in;
    std::size_t in_len = 0;
    bytes out;
    std::size_t out_head = 0;
    bool dirty = false;
    bool want_write = false;
    bool reading = true;
    std::uint64_t last_tx_ns = 0;
    std::uint32_t receive_max = 65535;
    std::uint16_t keep_alive = 60;
    std::unique_ptr<link> lk;  // tls, ws, wss; none for tcp

    // publisher
    std::uint32_t pub = 0;
    publish_template tmpl;
    std::uint64_t sent = 0;
    std::uint64_t written_off = 0;  // messages given up as lost to free the window
    std::uint64_t last_delivered = 0;
    std::uint64_t last_progress_ns = 0;
    std::uint32_t unacked = 0;
    std::uint16_t next_pid = 1;
    std::vector<std::uint64_t> pid_used;

    // subscriber
    std::vector<std::string> filters;
    check_map own_checks;
    check_map* checks = &own_checks;
    std::uint32_t last_pub = 0xffffffffu;
    stream_check* last_check = nullptr;
    std::uint64_t received = 0;
    std::uint64_t retained_received = 0;
    std::uint64_t last_receive_ns = 0;
    std::uint64_t read_budget = 0;

    // control
    std::uint32_t pending = 0;  // SUBACK/UNSUBACK/PUBACK/PUBCOMP/PINGRESP awaited
    std::uint16_t control_pid = 1;

    std::uint64_t connect_started_ns = 0;
};

// Written only by the worker thread that owns them; read by the reporter while the run goes.
struct worker_totals {
    std::atomic<std::uint64_t> sent{0};
    std::atomic<std::uint64_t> received{0};  // by counted subscribers
    std::atomic<std::uint64_t> received_all{0};
    std::atomic<std::uint64_t> connects{0};
    std::atomic<std::uint64_t> errors{0};
};

// Bytes queued on a connection and not yet sent: MQTT bytes plus framed/encrypted ones.
inline std::size_t unsent(const connection& c) noexcept {
    return c.out.size() - c.out_head + (c.lk ? c.lk->wire_pending() : 0);
}

// Packet identifiers in use on one connection.
std::uint16_t alloc_pid(connection& c);
bool free_pid(connection& c, std::uint16_t id);

class worker {
public:
    worker(run_state& rs, int index);
    ~worker();
    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;

    connection& add(role kind, std::string client_id);
    // Opens the socket and starts the handshake; the connection becomes ready on CONNACK
    // (and, for subscribers, on SUBACK).
    void start(connection& c);
    // One turn: wait up to timeout_ms for events, handle them, send due publishes, flush.
    void poll(int timeout_ms);
    // Runs a throughput scenario's loop until the run state says stop.
    void run();
    void disconnect_all();

    bool all_ready() const noexcept;
    void send(connection& c, const std::uint8_t* p, std::size_t n);
    void queue(connection& c) { mark_dirty(c); }
    void flush();

    std::vector<std::unique_ptr<connection>> conns;
    check_map shared_checks;  // shared subscriptions: one check per publisher across members
    worker_totals totals;
    histogram latency;
    std::uint64_t stalls = 0;  // windows freed after a second without progress
    std::vector<std::string> error_messages;
    std::uint64_t connector_started = 0;
    tls_summary tls_info;  // of the first TLS handshake completed here
    bool has_tls_info = false;

private:
    void on_readable(connection& c);
    void on_writable(connection& c);
    bool handle_packet(connection& c, const std::uint8_t* p, std::size_t header, std::uint32_t rem);
    void on_publish(connection& c, const std::uint8_t* p, std::size_t header, std::uint32_t rem);
    void on_ready(connection& c);
    void publish_due(std::uint64_t now);
    void tick(std::uint64_t now);
    void fail(connection& c, const std::string& why);
    void close(connection& c);
    void mark_dirty(connection& c);
    void set_events(connection& c);
    void restart_connector(connection& c);
    void begin_mqtt(connection& c);
    void flush_link(connection& c, std::uint64_t now);
    void on_eof(connection& c);

    run_state& rs_;
    int index_;
    int epfd_ = -1;
    std::vector<connection*> dirty_;
    std::vector<connection*> publishers_;
    std::vector<connection*> slow_;
    std::vector<connection*> restart_;
    std::uint64_t last_tick_ns_ = 0;
    std::uint64_t last_ping_scan_ns_ = 0;
    std::uint32_t handshakes_ = 0;
    std::size_t next_to_start_ = 0;
    std::uint32_t max_handshakes_ = 256;
    link::settings link_settings_;
    std::uint64_t link_seed_ = 0;
    bytes raw_;  // ciphertext read, before it is decrypted into a connection's buffer
    std::uint64_t read_ns_ = 0;  // when the last read returned: the receive time of its messages
};

}  // namespace iothub::bench
