#include "net/server.hpp"

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "broker/broker.hpp"
#include "broker/connection.hpp"
#include "broker/guarded.hpp"
#include "broker/output_queue.hpp"
#include "broker/worker.hpp"
#include "net/tls.hpp"
#include "net/websocket.hpp"

// Defined only when the process runs on jemalloc (weak: null under glibc's malloc).
extern "C" int mallctl(const char*, void*, std::size_t*, void*, std::size_t) __attribute__((weak));

// The event loops are plain epoll, one per worker thread. Each connection's descriptor is
// registered once, edge-triggered, with a pointer to the connection: an idle connection costs
// the loop nothing but that registration (no per-socket reactor state, no pending operation
// object), and a readiness event goes straight to its connection. Work that must wait for the
// end of the loop's turn (batched writes, reads cut short for fairness) sits in per-loop lists
// of connections; work from other threads arrives through a locked queue and an eventfd.

namespace iothub::net {

namespace {

using steady = std::chrono::steady_clock;

struct worker_loop;

enum class listener_kind : std::uint8_t { mqtt, mqtts, ws, wss };

// A WebSocket connection's state beside the byte stream (net/websocket.hpp): the opening
// handshake, then the frame decoder, and the frames the server owes the client.
struct ws_state {
    explicit ws_state(std::shared_ptr<const ws::upgrade_policy> p, std::uint64_t max_frame)
        : policy(std::move(p)), decoder(max_frame) {}
    std::shared_ptr<const ws::upgrade_policy> policy;  // until the handshake is decided
    std::string head;                                  // the request head so far
    bool open = false;                                 // 101 sent: frames both ways
    ws::frame_decoder decoder;
    std::string control_out;  // the handshake's answer and pongs, ahead of the next data
    std::string final_frame;  // the close frame, sent after the last data
    std::vector<ws::frame_decoder::control> controls;  // scratch
};

// What a loop's epoll set points at.
class watched {
public:
    virtual void on_events(std::uint32_t events) = 0;

protected:
    ~watched() = default;
};

// One TCP connection, plain or TLS, MQTT straight on the stream or inside WebSocket frames:
// owns the descriptor and the protocol handler, moves bytes between them.
//
// TLS (see net/tls.hpp): the SSL object does its own read(2)/write(2) on the descriptor; the
// loop only reports readiness, as for plain TCP, and the plaintext goes through the worker's
// read buffer into the same broker::connection, with the same batching. The handshake runs
// first, on the accepting worker, one step per readiness event, under a deadline. A
// connection whose session lives on another worker moves there after its CONNECT (the
// descriptor leaves this loop's epoll set and joins the target's), and the SSL object and the
// WebSocket decoder move with it: they refer to the descriptor by number and to no loop.
//
// Lifetime: the loop owns its connections (an intrusive list). A finished connection is
// deleted two turns of the loop later, so readiness events already collected for it, and the
// loop's lists, never point at freed memory.
class tcp_connection final : public broker::transport, public watched {
public:
    tcp_connection(worker_loop& loop, int fd, tls_session tls = {},
                   std::unique_ptr<ws_state> ws = nullptr);
    ~tcp_connection() override;
    tcp_connection(const tcp_connection&) = delete;
    tcp_connection& operator=(const tcp_connection&) = delete;

    // Joins the loop. `pending`: plaintext read on another worker and not handled yet.
    void start(std::vector<std::uint8_t> pending = {});
    // TLS: handshake first (cut after `timeout_s`), then start(). `peer` for the log.
    void start_tls(unsigned timeout_s, std::string peer);

    void on_events(std::uint32_t events) override;
    // From the loop's lists, at the end of a turn.
    void run_read();
    void run_write() { do_write(); }
    // Past its deadline (handshake or closing grace).
    void on_deadline();
    // Idle since the last tick: frees the write buffers kept for the next burst; false while
    // they are still in use.
    bool release_write_buffers();
    // The server stops: ends a handshake under way, or drops a connection still open.
    void abandon() { finish(); }

    void wake_write() override;
    void close() override;
    void migrate(unsigned worker) override { migrate_to_ = static_cast<int>(worker); }
    std::string peer() const override;
    bool tls() const override { return static_cast<bool>(tls_); }
    std::vector<std::string> peer_certificates() const override { return tls_.peer_chain(); }
    void read_pending() override;

    bool finished() const noexcept { return finished_; }
    bool handshaking() const noexcept { return handshake_ != nullptr; }
    steady::time_point deadline() const noexcept { return deadline_; }

    // The loop's bookkeeping.
    tcp_connection* prev = nullptr;  // live list
    tcp_connection* next = nullptr;
    bool in_read_list = false;
    bool in_write_list = false;
    bool has_deadline = false;
    bool keeps_write_buffers = false;

private:
    enum class wait_for : std::uint8_t { nothing, readable, writable };

    void request_read();
    void on_readable();
    void read_available(std::vector<std::uint8_t>& buffer);
    // TLS: fills `buffer` with plaintext; false when the connection ended meanwhile.
    bool read_tls(std::vector<std::uint8_t>& buffer, std::size_t& n);
    // WebSocket: takes [data, data + n) read from the stream; on true, [data + from,
    // data + from + len) is MQTT for the handler (maybe empty); false when the connection ends.
    bool ws_input(std::uint8_t* data, std::size_t n, std::size_t& from, std::size_t& len);
    void ws_fail(std::uint16_t code, const std::string& why);
    void do_write();
    void write_plain();
    void write_tls();
    void on_written(bool ok);
    void continue_handshake();
    void handshake_failed(const std::string& why);
    void set_deadline(steady::time_point when);
    // Joins the loop's epoll set, once; false (and finished) when that fails.
    bool attach();
    void finish();
    void hand_over();

    worker_loop& loop_;
    int fd_;
    tls_session tls_;                            // empty for plain TCP
    std::unique_ptr<ws_state> ws_;               // empty for MQTT straight on the stream
    std::optional<broker::connection> handler_;  // in the same allocation as the connection
    // The write in progress: what it sends and its pieces, for one gathering write. Allocated
    // while writes are under way, freed when the connection has nothing left to send, so an
    // idle connection carries none of it.
    struct write_state {
        broker::output_queue data;
        std::vector<iovec> pieces;
        std::size_t piece = 0;  // the first piece not completely sent
        // TLS: how much of pieces[piece] is sent, and small pieces gathered into one record.
        std::size_t offset = 0;
        std::string gathered;
        std::size_t gathered_sent = 0;
        // WebSocket: control frames ahead, the data frame's header, the close frame last.
        std::string ws_control;
        std::uint8_t ws_header[14] = {};
        std::string ws_final;
    };
    std::unique_ptr<write_state> writing_;
    // TLS, during the handshake only: the client's address for the log (a client that gave
    // up may no longer have one on the socket).
    struct handshake_state {
        std::string peer;
        unsigned timeout_s = 0;
    };
    std::unique_ptr<handshake_state> handshake_;
    steady::time_point deadline_{};
    int migrate_to_ = -1;
    bool registered_ = false;
    bool readable_ = false;  // edge-triggered: the socket may hold bytes not read yet
    bool write_active_ = false;
    wait_for write_waits_ = wait_for::nothing;  // a write stopped until the socket is ready
    bool read_waits_writable_ = false;          // TLS: a read needs to send first
    bool close_requested_ = false;
    bool finished_ = false;
    bool read_paused_ = false;
};

// The largest TLS record's plaintext: small pieces are gathered up to this, so a burst of
// small packets goes out as few records and system calls.
constexpr std::size_t tls_record = 16384;

// Output waiting for a client that does not read: past this, the connection stops reading
// (so it stops producing replies) until the writes drain below half of it.
constexpr std::size_t output_high_water = 4 * 1024 * 1024;

// The largest WebSocket frame accepted. Frames need not line up with MQTT packets (a client
// may batch many packets in one), and the decoder streams them, so this only stops lengths no
// client sends; the packets inside still meet max_packet_size.
std::uint64_t ws_max_frame(const broker::broker& b) {
    return std::max<std::uint64_t>(b.config()->max_packet_size, 64ull * 1024 * 1024);
}

// A closing connection whose peer does not take the last bytes is cut after this.
constexpr auto close_grace = std::chrono::seconds(5);
// The loop's clock for keep alive, deadlines and trimming memory.
constexpr auto tick_interval = std::chrono::milliseconds(250);
// Reads of the worker's buffer per connection per turn: one busy client cannot starve others.
constexpr int reads_per_turn = 4;

class listener final : public watched {
public:
    listener(worker_loop& loop, int fd, listener_kind kind) : loop_(loop), fd_(fd), kind_(kind) {}
    ~listener() { close(); }
    listener(const listener&) = delete;
    listener& operator=(const listener&) = delete;

    void on_events(std::uint32_t events) override;
    // Watches the socket (again).
    void arm();
    void close();
    bool resume_due(steady::time_point now) const noexcept {
        return fd_ >= 0 && paused_ && now >= resume_at_;
    }

private:
    worker_loop& loop_;
    int fd_;
    listener_kind kind_;
    bool paused_ = false;
    steady::time_point resume_at_{};
};

// The loop's eventfd: other threads write it when they queue work.
class waker final : public watched {
public:
    explicit waker(int fd) : fd_(fd) {}
    void on_events(std::uint32_t) override {
        std::uint64_t count = 0;
        while (::read(fd_, &count, sizeof count) > 0) {
        }
    }

private:
    int fd_;
};

struct worker_loop {
    worker_loop() {
        epfd = ::epoll_create1(EPOLL_CLOEXEC);
        wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (epfd < 0 || wake_fd < 0) throw std::runtime_error("cannot create an event loop");
        wake = std::make_unique<waker>(wake_fd);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = static_cast<watched*>(wake.get());
        ::epoll_ctl(epfd, EPOLL_CTL_ADD, wake_fd, &ev);
    }
    ~worker_loop() {
        listeners.clear();
        if (wake_fd >= 0) ::close(wake_fd);
        if (epfd >= 0) ::close(epfd);
    }
    worker_loop(const worker_loop&) = delete;
    worker_loop& operator=(const worker_loop&) = delete;

    // From any thread: runs `fn` on this loop's thread, soon.
    void post(std::function<void()> fn) {
        bool wake_up = false;
        {
            std::lock_guard lock(post_mutex);
            wake_up = posted.empty();
            posted.push_back(std::move(fn));
        }
        if (wake_up) {
            const std::uint64_t one = 1;
            [[maybe_unused]] const auto n = ::write(wake_fd, &one, sizeof one);
        }
    }

    void adopt(tcp_connection* c) {
        c->next = live;
        if (live != nullptr) live->prev = c;
        live = c;
        ++live_count;
    }
    void forget_deadline(tcp_connection* c) {
        if (!c->has_deadline) return;
        c->has_deadline = false;
        deadlines.erase(std::find(deadlines.begin(), deadlines.end(), c));
    }
    // The connection ended (or left for another loop): freed two turns from now.
    void bury(tcp_connection* c) {
        if (c->prev != nullptr) c->prev->next = c->next;
        if (c->next != nullptr) c->next->prev = c->prev;
        if (live == c) live = c->next;
        c->prev = c->next = nullptr;
        --live_count;
        forget_deadline(c);
        if (c->keeps_write_buffers) {
            c->keeps_write_buffers = false;
            write_kept.erase(std::find(write_kept.begin(), write_kept.end(), c));
        }
        dying_now.push_back(c);
    }

    server::impl* owner = nullptr;
    unsigned index = 0;
    int epfd = -1;
    int wake_fd = -1;
    std::unique_ptr<waker> wake;
    std::vector<std::unique_ptr<listener>> listeners;
    // What new TLS connections of this worker use (mqtts, wss); replaced (on this thread) by
    // reload_tls.
    std::shared_ptr<const tls_context> tls;
    std::shared_ptr<const tls_context> wss_tls;
    // What the WebSocket listeners accept; replaced (on this thread) by set_websocket.
    std::shared_ptr<const ws::upgrade_policy> ws_policy;
    broker::worker* state = nullptr;
    std::vector<std::uint8_t> read_buffer = std::vector<std::uint8_t>(64 * 1024);
    std::vector<std::uint8_t> pending_buffer = std::vector<std::uint8_t>(16 * 1024);
    std::thread thread;
    std::uint64_t ticks = 0;
    steady::time_point next_tick{};

    tcp_connection* live = nullptr;  // every connection of this loop not yet finished
    std::size_t live_count = 0;
    std::vector<tcp_connection*> read_list;   // reads to continue at the end of the turn
    std::vector<tcp_connection*> write_list;  // writes to start at the end of the turn
    std::vector<tcp_connection*> deadlines;   // handshakes and closing connections
    std::vector<tcp_connection*> write_kept;  // connections keeping write buffers until a tick
    std::vector<tcp_connection*> dying_now;
    std::vector<tcp_connection*> dying_prev;

    std::mutex post_mutex;
    std::vector<std::function<void()>> posted;

    bool quitting = false;
    steady::time_point quit_at{};

    struct inbox_state {
        std::vector<broker::delivery> items;  // deliveries from other workers
        bool scheduled = false;               // a drain is posted and has not started yet
    };
    broker::guarded<inbox_state, std::mutex> inbox;
};

std::string format_address(const sockaddr* sa) {
    char text[INET6_ADDRSTRLEN] = {};
    if (sa->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
        return std::string(text) + ":" + std::to_string(ntohs(in->sin_port));
    }
    if (sa->sa_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
        return "[" + std::string(text) + "]:" + std::to_string(ntohs(in6->sin6_port));
    }
    return "unknown";
}

}  // namespace

struct server::impl final : broker::dispatcher {
    explicit impl(broker::broker& b) : broker_(b) {
        for (unsigned i = 0; i < b.worker_count(); ++i) {
            auto w = std::make_unique<worker_loop>();
            w->owner = this;
            w->index = i;
            w->state = &b.worker_at(i);
            loops_.push_back(std::move(w));
        }
        b.set_dispatcher(this);
    }

    // Cross-worker hand-off: batches are appended to the target's inbox, and the target is
    // woken only when its inbox goes from empty to non-empty; one wake-up drains everything
    // that arrived meanwhile. The inbox is bounded: a worker that falls this far behind has
    // further deliveries dropped and counted, as a full session queue would.
    void post_deliveries(unsigned target, std::vector<broker::delivery>&& batch) override {
        auto& loop = *loops_[target];
        bool wake = false;
        std::size_t dropped_qos0 = 0;
        std::size_t dropped = 0;
        {
            auto in = loop.inbox.write();
            auto& items = in->items;
            if (items.size() + batch.size() > inbox_limit) {
                for (auto& d : batch) {
                    if (items.size() >= inbox_limit) {
                        ++(d.qos == 0 ? dropped_qos0 : dropped);
                        continue;
                    }
                    items.push_back(std::move(d));
                }
            } else if (items.empty()) {
                items.swap(batch);
            } else {
                items.insert(items.end(), std::make_move_iterator(batch.begin()),
                             std::make_move_iterator(batch.end()));
            }
            if (!in->scheduled && !items.empty()) {
                in->scheduled = true;
                wake = true;
            }
        }
        if (dropped_qos0 + dropped != 0) {
            auto& drops = broker_.drops();
            drops.qos0_dropped.fetch_add(dropped_qos0, std::memory_order_relaxed);
            drops.queue_full.fetch_add(dropped, std::memory_order_relaxed);
            if (broker_.log && broker_.may_log_drop(broker_.now()))
                broker_.log(3, "worker " + std::to_string(target) + " is " +
                                   std::to_string(inbox_limit) +
                                   " deliveries behind: dropping new deliveries to it");
        }
        if (wake) loop.post([&loop] { drain_inbox(loop); });
    }

    void post_task(unsigned target, std::function<void(broker::worker&)> task) override {
        auto& loop = *loops_[target];
        loop.post([&loop, task = std::move(task)] {
            loop.state->refresh_clock();
            task(*loop.state);
            loop.state->flush();
        });
    }

    static void drain_inbox(worker_loop& loop) {
        std::vector<broker::delivery> batch;
        {
            auto in = loop.inbox.write();
            batch.swap(in->items);
            in->scheduled = false;
        }
        loop.state->on_deliveries(batch);
        loop.state->flush();
        // Hand the emptied vector back so its capacity is reused.
        batch.clear();
        auto in = loop.inbox.write();
        if (in->items.empty() && in->items.capacity() < batch.capacity()) in->items.swap(batch);
    }

    static constexpr std::size_t inbox_limit = 1'000'000;

    void accept_connection(worker_loop& loop, int fd, listener_kind kind, const sockaddr* from) {
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        std::unique_ptr<ws_state> ws;
        if (kind == listener_kind::ws || kind == listener_kind::wss)
            ws = std::make_unique<ws_state>(loop.ws_policy, ws_max_frame(broker_));
        if (kind == listener_kind::mqtt || kind == listener_kind::ws) {
            (new tcp_connection(loop, fd, tls_session{}, std::move(ws)))->start();
            return;
        }
        const auto ctx = kind == listener_kind::wss ? loop.wss_tls : loop.tls;
        tls_session session = ctx ? tls_session(*ctx, fd) : tls_session{};
        if (!session) {
            ::close(fd);
            if (broker_.log && broker_.may_log_drop(broker_.now()))
                broker_.log(4, "TLS: cannot make a session (out of memory?): connection closed");
            return;
        }
        (new tcp_connection(loop, fd, std::move(session), std::move(ws)))
            ->start_tls(ctx->handshake_timeout_s(), format_address(from));
    }

    void tick(worker_loop& loop, steady::time_point now) {
        loop.state->tick(broker_.now());
        // Handshakes and closing connections past their deadline.
        for (std::size_t i = 0; i < loop.deadlines.size();) {
            auto* c = loop.deadlines[i];
            if (now >= c->deadline()) {
                c->on_deadline();  // may remove it from the list
                if (i < loop.deadlines.size() && loop.deadlines[i] == c) ++i;
            } else {
                ++i;
            }
        }
        for (auto& l : loop.listeners)
            if (l->resume_due(now)) l->arm();
        // Write buffers kept through a burst go back once a tick passed without a write.
        std::erase_if(loop.write_kept, [](tcp_connection* c) { return c->release_write_buffers(); });
        // Give freed memory back to the system after a spike (idle most of the time).
        if (loop.index == 0 && ++loop.ticks % 40 == 0) release_free_memory();
    }

    // Under glibc: malloc_trim. Under jemalloc (which defines mallctl) its background thread
    // does this by itself (src/main.cpp turns it on); if MALLOC_CONF turned it off, every
    // arena's unused pages are purged here instead.
    static void release_free_memory() {
        if (mallctl == nullptr) {
            ::malloc_trim(0);
            return;
        }
        static const bool background = [] {
            bool on = false;
            std::size_t size = sizeof on;
            return mallctl("background_thread", &on, &size, nullptr, 0) == 0 && on;
        }();
        if (!background) mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);  // 4096: all
    }

    static constexpr int gather_rounds = 4;

    void run(worker_loop& loop) {
        std::array<epoll_event, 256> events;
        std::vector<std::function<void()>> tasks;
        std::vector<tcp_connection*> batch;
        loop.next_tick = steady::now() + tick_interval;
        for (;;) {
            int timeout = 0;
            if (loop.read_list.empty() && loop.write_list.empty()) {
                const auto now = steady::now();
                timeout = now >= loop.next_tick
                              ? 0
                              : static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(
                                                     loop.next_tick - now)
                                                     .count());
            }
            // While input keeps arriving, a few more rounds go into this turn's output before
            // it is written: under load one write then carries many more messages. An idle
            // moment (a round that finds nothing) ends the turn at once.
            for (int round = 0; round < gather_rounds; ++round) {
                const int n = ::epoll_wait(loop.epfd, events.data(),
                                           static_cast<int>(events.size()), round == 0 ? timeout : 0);
                for (int i = 0; i < n; ++i)
                    static_cast<watched*>(events[i].data.ptr)->on_events(events[i].events);
                if (n <= 0 || loop.write_list.empty()) break;
            }

            {
                std::lock_guard lock(loop.post_mutex);
                tasks.swap(loop.posted);
            }
            for (auto& t : tasks) t();
            tasks.clear();

            // Reads cut short last turn, then every write this turn asked for: whatever the
            // events and tasks produced goes out in one write per connection.
            batch.swap(loop.read_list);
            for (auto* c : batch) {
                c->in_read_list = false;
                if (!c->finished()) c->run_read();
            }
            batch.clear();
            for (int pass = 0; pass < 4 && !loop.write_list.empty(); ++pass) {
                batch.swap(loop.write_list);
                for (auto* c : batch) {
                    c->in_write_list = false;
                    if (!c->finished()) c->run_write();
                }
                batch.clear();
            }

            const auto now = steady::now();
            if (now >= loop.next_tick) {
                tick(loop, now);
                loop.next_tick = now + tick_interval;
            }

            for (auto* c : loop.dying_prev) delete c;
            loop.dying_prev.clear();
            loop.dying_prev.swap(loop.dying_now);

            if (loop.quitting && (loop.live_count == 0 || now >= loop.quit_at)) break;
        }
        // Whatever is left (clients that did not take their last bytes in time) is dropped.
        while (loop.live != nullptr) loop.live->abandon();
        for (auto* c : loop.dying_prev) delete c;
        for (auto* c : loop.dying_now) delete c;
        loop.dying_prev.clear();
        loop.dying_now.clear();
        loop.read_list.clear();
        loop.write_list.clear();
    }

    ~impl() override { broker_.set_dispatcher(nullptr); }

    broker::broker& broker_;
    std::vector<std::unique_ptr<worker_loop>> loops_;
    bool started_ = false;
    bool wss_listening_ = false;
    std::atomic<bool> stopping_{false};
};

namespace {

void listener::arm() {
    paused_ = false;
    epoll_event ev{};
    ev.events = EPOLLIN;  // level-triggered: a backlog left for the next turn is reported again
    ev.data.ptr = static_cast<watched*>(this);
    ::epoll_ctl(loop_.epfd, EPOLL_CTL_ADD, fd_, &ev);
}

void listener::close() {
    if (fd_ < 0) return;
    if (!paused_) ::epoll_ctl(loop_.epfd, EPOLL_CTL_DEL, fd_, nullptr);
    ::close(fd_);
    fd_ = -1;
}

void listener::on_events(std::uint32_t) {
    auto& impl = *loop_.owner;
    for (int i = 0; i < 64 && fd_ >= 0; ++i) {
        sockaddr_storage from{};
        socklen_t len = sizeof from;
        const int fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&from), &len,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
            // Out of descriptors or memory: stop watching for a moment instead of spinning.
            auto& b = impl.broker_;
            if (b.log && b.may_log_drop(b.now()))
                b.log(4, std::string("accept failed: ") + std::strerror(errno));
            ::epoll_ctl(loop_.epfd, EPOLL_CTL_DEL, fd_, nullptr);
            paused_ = true;
            resume_at_ = steady::now() + std::chrono::milliseconds(100);
            return;
        }
        if (impl.stopping_) {
            ::close(fd);
            continue;
        }
        impl.accept_connection(loop_, fd, kind_, reinterpret_cast<const sockaddr*>(&from));
    }
}

tcp_connection::tcp_connection(worker_loop& loop, int fd, tls_session tls,
                               std::unique_ptr<ws_state> ws)
    : loop_(loop), fd_(fd), tls_(std::move(tls)), ws_(std::move(ws)) {
    loop_.adopt(this);
}

tcp_connection::~tcp_connection() {
    handler_.reset();
    if (fd_ >= 0) ::close(fd_);
}

// Formatted when a log line needs it rather than kept per connection.
std::string tcp_connection::peer() const {
    if (handshake_ && !handshake_->peer.empty()) return handshake_->peer;
    if (fd_ < 0) return "unknown";
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "unknown";
    return format_address(reinterpret_cast<const sockaddr*>(&ss));
}

bool tcp_connection::attach() {
    if (registered_) return true;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = static_cast<watched*>(this);
    if (::epoll_ctl(loop_.epfd, EPOLL_CTL_ADD, fd_, &ev) != 0) {
        finish();
        return false;
    }
    registered_ = true;
    return true;
}

void tcp_connection::start(std::vector<std::uint8_t> pending) {
    if (!attach()) return;
    handler_.emplace(*loop_.state, *this);
    // A connection that moved here may owe its client a pong.
    if (ws_ && !ws_->control_out.empty()) wake_write();
    if (!pending.empty()) {
        handler_->on_data(pending);
        if (migrate_to_ >= 0) {
            hand_over();
            return;
        }
    }
    // What a TLS session read ahead during the handshake, or bytes that came with its end.
    if (tls_) {
        readable_ = true;
        request_read();
    }
}

void tcp_connection::start_tls(unsigned timeout_s, std::string peer) {
    if (!attach()) return;
    handshake_ = std::make_unique<handshake_state>(handshake_state{std::move(peer), timeout_s});
    set_deadline(steady::now() + std::chrono::seconds(timeout_s));
    continue_handshake();
}

void tcp_connection::set_deadline(steady::time_point when) {
    deadline_ = when;
    if (!has_deadline) {
        has_deadline = true;
        loop_.deadlines.push_back(this);
    }
}

void tcp_connection::on_deadline() {
    if (finished_) return;
    if (handshake_) {
        handshake_failed("not finished after " + std::to_string(handshake_->timeout_s) +
                         " s (tls_handshake_timeout)");
        return;
    }
    if (close_requested_) finish();
}

void tcp_connection::on_events(std::uint32_t events) {
    if (finished_) return;
    const bool in = (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    const bool out = (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0;
    if (in) readable_ = true;
    if (handshake_) {
        continue_handshake();
        return;
    }
    if (write_active_ && ((out && write_waits_ == wait_for::writable) ||
                          (in && write_waits_ == wait_for::readable))) {
        write_waits_ = wait_for::nothing;
        if (tls_)
            write_tls();
        else
            write_plain();
        if (finished_) return;
    }
    if (out && read_waits_writable_) {
        read_waits_writable_ = false;
        readable_ = true;
    }
    if (readable_) on_readable();
}

// One step per readiness event: a slow or silent client costs the worker nothing while it
// waits, and the deadline ends it.
void tcp_connection::continue_handshake() {
    std::string why;
    const auto r = tls_.handshake(why);
    if (r == tls_session::result::ok) {
        handshake_.reset();
        loop_.forget_deadline(this);
        start();
        return;
    }
    if (r == tls_session::result::want_read || r == tls_session::result::want_write) return;
    handshake_failed(why);
}

void tcp_connection::handshake_failed(const std::string& why) {
    if (finished_) return;
    auto& b = loop_.owner->broker_;
    b.drops().tls_handshake_failures.fetch_add(1, std::memory_order_relaxed);
    if (b.log && b.may_log_drop(b.now()))
        b.log(3, "TLS handshake with " + peer() + " failed: " + why + "; connection closed");
    finish();
}

bool tcp_connection::ws_input(std::uint8_t* data, std::size_t n, std::size_t& from,
                              std::size_t& len) {
    auto& w = *ws_;
    from = 0;
    len = 0;
    if (!w.open) {
        const std::size_t before = w.head.size();
        w.head.append(reinterpret_cast<const char*>(data), n);
        auto outcome = ws::parse_upgrade(w.head, *w.policy);
        if (outcome.result == ws::upgrade_outcome::kind::incomplete) return true;
        std::string().swap(w.head);
        w.policy.reset();
        w.control_out = std::move(outcome.response);
        if (outcome.result == ws::upgrade_outcome::kind::refused) {
            auto& b = loop_.owner->broker_;
            b.drops().ws_handshake_failures.fetch_add(1, std::memory_order_relaxed);
            if (b.log && b.may_log_drop(b.now()))
                b.log(3, "WebSocket upgrade from " + peer() + " refused (" +
                             std::to_string(outcome.status) + "): " + outcome.why +
                             "; connection closed");
            close();
            return false;
        }
        w.open = true;
        wake_write();
        from = outcome.consumed - before;
        if (from >= n) return true;
    }
    std::size_t out = 0;
    const bool ok = w.decoder.feed(data + from, n - from, out, w.controls);
    len = out;
    std::optional<std::uint16_t> peer_close;
    for (auto& c : w.controls) {
        if (c.op == ws::opcode::ping) {
            w.control_out += ws::control_frame(ws::opcode::pong, c.payload);
            wake_write();
        } else if (c.op == ws::opcode::close) {
            peer_close = ws::close_code_of(c.payload);
        }
    }
    w.controls.clear();
    if (ok && !peer_close) return true;
    // What the frames carried before the close or the error still counts.
    if (len != 0) handler_->on_data({data + from, len});
    len = 0;
    if (finished_) return false;
    if (!ok) {
        ws_fail(w.decoder.error_code(), std::string(w.decoder.error()));
        return false;
    }
    // The client's closing handshake: answer with its code, then end as a lost connection
    // would (the will goes out unless DISCONNECT came first).
    w.final_frame = ws::close_frame(*peer_close == 1005 ? ws::close_normal : *peer_close);
    handler_->on_transport_closed();
    close();
    return false;
}

void tcp_connection::ws_fail(std::uint16_t code, const std::string& why) {
    auto& b = loop_.owner->broker_;
    b.drops().protocol_errors.fetch_add(1, std::memory_order_relaxed);
    if (b.log && b.may_log_drop(b.now()))
        b.log(3, "WebSocket: closing connection from " + peer() + ": " + why + " (close code " +
                     std::to_string(code) + ")");
    ws_->final_frame = ws::close_frame(code, why);
    handler_->on_transport_closed();
    close();
}

// Another read at the end of this turn: for a read cut short, records a TLS session already
// took from the socket (they do not make it readable again), or input resumed after a pause.
void tcp_connection::request_read() {
    if (finished_ || in_read_list) return;
    in_read_list = true;
    loop_.read_list.push_back(this);
}

void tcp_connection::run_read() {
    if (readable_ || (tls_ && tls_.has_pending())) on_readable();
}

void tcp_connection::on_readable() {
    if (finished_ || close_requested_ || read_paused_ || migrate_to_ >= 0 || !handler_) return;
    read_available(loop_.read_buffer);
}

bool tcp_connection::read_tls(std::vector<std::uint8_t>& buffer, std::size_t& n) {
    // Record after record until the buffer is full or the socket has nothing more, so the
    // handler parses many packets at once.
    n = 0;
    while (n < buffer.size()) {
        std::size_t got = 0;
        const auto r = tls_.read(buffer.data() + n, buffer.size() - n, got);
        if (r == tls_session::result::ok) {
            n += got;
            continue;
        }
        if (r == tls_session::result::want_read) {
            readable_ = false;
            break;
        }
        if (r == tls_session::result::want_write) {
            // The session must send something first (renegotiation is off, so rarely):
            // retry the read once the socket takes it.
            readable_ = false;
            read_waits_writable_ = true;
            break;
        }
        // Closed or failed: what came before still counts.
        std::size_t from = 0;
        std::size_t len = n;
        if (n > 0 && ws_ && !ws_input(buffer.data(), n, from, len)) return false;
        if (len > 0) handler_->on_data({buffer.data() + from, len});
        if (!finished_) {
            handler_->on_transport_closed();
            finish();
        }
        return false;
    }
    return true;
}

void tcp_connection::read_available(std::vector<std::uint8_t>& buffer) {
    for (int i = 0; i < reads_per_turn; ++i) {
        std::size_t n = 0;
        if (tls_) {
            if (!read_tls(buffer, n)) return;
            if (n == 0) return;
        } else {
            const auto got = ::read(fd_, buffer.data(), buffer.size());
            if (got < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    readable_ = false;
                    return;
                }
            }
            if (got <= 0) {
                handler_->on_transport_closed();
                finish();
                return;
            }
            n = static_cast<std::size_t>(got);
            // Edge-triggered: a short read emptied the socket; new bytes bring a new event.
            if (n < buffer.size()) readable_ = false;
        }
        std::size_t from = 0;
        std::size_t len = n;
        if (ws_ && !ws_input(buffer.data(), n, from, len)) return;
        if (len != 0) handler_->on_data({buffer.data() + from, len});
        if (migrate_to_ >= 0) {
            hand_over();
            return;
        }
        if (finished_ || close_requested_) return;
        if (handler_->output().size() + (writing_ ? writing_->data.size() : 0) > output_high_water) {
            read_paused_ = true;
            return;
        }
        if (!readable_ && !(tls_ && tls_.has_pending())) return;
    }
    // Budget spent with input left: the rest waits for the end of the turn.
    request_read();
}

void tcp_connection::read_pending() {
    if (finished_ || close_requested_ || read_paused_ || migrate_to_ >= 0) return;
    // Not the worker's main read buffer: the caller may be decoding from it right now.
    readable_ = true;
    read_available(loop_.pending_buffer);
}

void tcp_connection::hand_over() {
    // The CONNECT names a session owned by another worker: move the descriptor there, with
    // the bytes read so far, before anything was answered.
    auto pending = handler_->take_input();
    handler_.reset();
    ::epoll_ctl(loop_.epfd, EPOLL_CTL_DEL, fd_, nullptr);
    const int fd = fd_;
    fd_ = -1;
    finished_ = true;
    auto& target = *loop_.owner->loops_[static_cast<unsigned>(migrate_to_)];
    // The TLS session and the WebSocket decoder go along: they name the descriptor, not a loop.
    auto moved = std::make_shared<std::tuple<std::vector<std::uint8_t>, tls_session,
                                             std::unique_ptr<ws_state>>>(
        std::move(pending), std::move(tls_), std::move(ws_));
    target.post([&target, fd, moved] {
        if (target.owner->stopping_) {
            ::close(fd);
            return;
        }
        auto& [input, tls, ws] = *moved;
        (new tcp_connection(target, fd, std::move(tls), std::move(ws)))->start(std::move(input));
    });
    loop_.bury(this);
}

void tcp_connection::wake_write() {
    if (write_active_ || in_write_list || finished_) return;
    // At the end of the turn: everything produced until then goes out in one write.
    in_write_list = true;
    loop_.write_list.push_back(this);
}

void tcp_connection::do_write() {
    if (write_active_ || finished_) return;
    const bool has_data = handler_ && !handler_->output().empty();
    const bool ws_owed = ws_ && (!ws_->control_out.empty() ||
                                 (close_requested_ && !ws_->final_frame.empty()));
    if (!has_data && !ws_owed) {
        if (close_requested_) finish();
        return;
    }
    if (!writing_) writing_ = std::make_unique<write_state>();
    auto& w = *writing_;
    w.data.clear();
    w.pieces.clear();
    w.piece = 0;
    w.offset = 0;
    w.gathered.clear();
    w.gathered_sent = 0;
    const auto add = [&w](const void* data, std::size_t size) {
        if (size != 0) w.pieces.push_back(iovec{const_cast<void*>(data), size});
    };
    if (ws_ && !ws_->control_out.empty()) {
        w.ws_control.swap(ws_->control_out);
        ws_->control_out.clear();
        add(w.ws_control.data(), w.ws_control.size());
    }
    if (has_data) {
        w.data.swap(handler_->output());
        // WebSocket: everything queued goes out as one binary frame.
        if (ws_) {
            const auto n = ws::encode_header(w.ws_header, ws::opcode::binary, w.data.size());
            add(w.ws_header, n);
        }
        w.data.for_each_piece([&add](std::string_view piece) { add(piece.data(), piece.size()); });
    }
    if (ws_ && close_requested_ && !ws_->final_frame.empty() &&
        (!handler_ || handler_->output().empty())) {
        w.ws_final.swap(ws_->final_frame);
        ws_->final_frame.clear();
        add(w.ws_final.data(), w.ws_final.size());
    }
    write_active_ = true;
    if (tls_)
        write_tls();
    else
        write_plain();
}

// One gathering send per call until everything is out or the socket is full; then the next
// writable event continues where this stopped.
void tcp_connection::write_plain() {
    auto& w = *writing_;
    while (w.piece < w.pieces.size()) {
        msghdr msg{};
        msg.msg_iov = w.pieces.data() + w.piece;
        msg.msg_iovlen = std::min<std::size_t>(w.pieces.size() - w.piece, IOV_MAX);
        const auto sent = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                write_waits_ = wait_for::writable;
                return;
            }
            on_written(false);
            return;
        }
        auto left = static_cast<std::size_t>(sent);
        while (left > 0) {
            auto& p = w.pieces[w.piece];
            if (left >= p.iov_len) {
                left -= p.iov_len;
                ++w.piece;
            } else {
                p.iov_base = static_cast<char*>(p.iov_base) + left;
                p.iov_len -= left;
                left = 0;
            }
        }
    }
    on_written(true);
}

// Encrypts and sends `writing_`, record by record, until done or the socket is full. Pieces
// of a full record or more are encrypted where they are; smaller ones are gathered first.
// After want_write the same bytes are offered again: the state below changes only on progress.
void tcp_connection::write_tls() {
    auto& w = *writing_;
    for (;;) {
        const std::uint8_t* data = nullptr;
        std::size_t size = 0;
        bool direct = false;
        if (w.gathered_sent < w.gathered.size()) {
            data = reinterpret_cast<const std::uint8_t*>(w.gathered.data()) + w.gathered_sent;
            size = w.gathered.size() - w.gathered_sent;
        } else {
            w.gathered.clear();
            w.gathered_sent = 0;
            while (w.piece < w.pieces.size() && w.offset == w.pieces[w.piece].iov_len) {
                ++w.piece;
                w.offset = 0;
            }
            if (w.piece == w.pieces.size()) {
                on_written(true);
                return;
            }
            const auto* piece = static_cast<const std::uint8_t*>(w.pieces[w.piece].iov_base);
            const std::size_t left = w.pieces[w.piece].iov_len - w.offset;
            if (left >= tls_record) {
                data = piece + w.offset;
                size = left;
                direct = true;
            } else {
                while (w.piece < w.pieces.size() && w.gathered.size() < tls_record) {
                    const auto* p = static_cast<const char*>(w.pieces[w.piece].iov_base);
                    const std::size_t take = std::min(w.pieces[w.piece].iov_len - w.offset,
                                                      tls_record - w.gathered.size());
                    w.gathered.append(p + w.offset, take);
                    w.offset += take;
                    if (w.offset == w.pieces[w.piece].iov_len) {
                        ++w.piece;
                        w.offset = 0;
                    }
                }
                data = reinterpret_cast<const std::uint8_t*>(w.gathered.data());
                size = w.gathered.size();
            }
        }
        std::size_t sent = 0;
        const auto r = tls_.write(data, size, sent);
        if (r == tls_session::result::ok) {
            (direct ? w.offset : w.gathered_sent) += sent;
            continue;
        }
        if (r == tls_session::result::want_write) {
            write_waits_ = wait_for::writable;
            return;
        }
        if (r == tls_session::result::want_read) {
            write_waits_ = wait_for::readable;
            return;
        }
        on_written(false);
        return;
    }
}

void tcp_connection::on_written(bool ok) {
    write_active_ = false;
    write_waits_ = wait_for::nothing;
    if (finished_) return;
    if (!ok) {
        handler_->on_transport_closed();
        finish();
        return;
    }
    // Drops the references to shared payloads; gives back memory that grew for a burst. The
    // buffers themselves stay until the next tick: while a client is busy, its output and
    // this write's buffer trade places on every write, so appending never reallocates; an
    // idle connection keeps neither.
    writing_->data.clear();
    writing_->data.trim();
    if (!keeps_write_buffers) {
        keeps_write_buffers = true;
        loop_.write_kept.push_back(this);
    }
    if (read_paused_ && !close_requested_ && handler_ &&
        handler_->output().size() < output_high_water / 2) {
        read_paused_ = false;
        request_read();
    }
    do_write();
}

bool tcp_connection::release_write_buffers() {
    if (write_active_ || in_write_list || (handler_ && !handler_->output().empty())) return false;
    keeps_write_buffers = false;
    writing_.reset();
    if (handler_) std::string().swap(handler_->output().bytes());
    return true;
}

void tcp_connection::close() {
    if (close_requested_ || finished_) return;
    // WebSocket: the closing handshake's frame follows the last data.
    if (ws_ && ws_->open && ws_->final_frame.empty() && !ws_->decoder.closed())
        ws_->final_frame = ws::close_frame(ws::close_normal);
    close_requested_ = true;
    if (!handshake_) set_deadline(steady::now() + close_grace);
    if (!write_active_) wake_write();
}

void tcp_connection::finish() {
    if (finished_) return;
    finished_ = true;
    handshake_.reset();
    // close_notify, unless a record is half sent (it would go out inside it).
    if (tls_ && !write_active_) tls_.shutdown();
    if (fd_ >= 0) {
        if (registered_) ::epoll_ctl(loop_.epfd, EPOLL_CTL_DEL, fd_, nullptr);
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        fd_ = -1;
    }
    if (handler_) handler_->on_transport_closed();
    // The handler goes with the connection, two turns from now: this may run inside one of
    // its calls.
    loop_.bury(this);
}

}  // namespace

server::server(broker::broker& b) : impl_(std::make_unique<impl>(b)) {}

server::~server() {
    if (impl_->started_) stop();
}

namespace {

int open_listener(const sockaddr_storage& addr, socklen_t len, bool reuse_port) {
    const int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if ((reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
        ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
        const int saved = errno;
        ::close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

// One listening socket per worker on `ep`, sharing the port (SO_REUSEPORT).
std::string bind_listeners(server::impl& impl, const endpoint& ep, listener_kind kind) {
    const std::string host = ep.host == "localhost" ? "127.0.0.1" : ep.host;
    sockaddr_storage addr{};
    socklen_t len = 0;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
    if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        len = sizeof(sockaddr_in);
    } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        len = sizeof(sockaddr_in6);
    } else {
        throw std::runtime_error("invalid listen address '" + ep.host + "'");
    }
    const auto set_port = [&](std::uint16_t port) {
        if (addr.ss_family == AF_INET)
            v4->sin_port = htons(port);
        else
            v6->sin6_port = htons(port);
    };
    const auto failed = [&ep](std::uint16_t port) {
        return std::runtime_error("cannot listen on " + ep.host + ":" + std::to_string(port) +
                                  ": " + std::strerror(errno));
    };
    std::uint16_t port = ep.port;
    set_port(port);
    if (port != 0) {
        // SO_REUSEPORT would let this process silently share a port another process listens
        // on (and split its clients). A plain bind first refuses a port already in use.
        const int probe = open_listener(addr, len, false);
        if (probe < 0) throw failed(port);
        ::close(probe);
    }
    std::vector<int> fds;
    for (std::size_t i = 0; i < impl.loops_.size(); ++i) {
        const int fd = open_listener(addr, len, true);
        if (fd < 0 || ::listen(fd, SOMAXCONN) != 0) {
            const auto error = failed(port);
            if (fd >= 0) ::close(fd);
            for (const int f : fds) ::close(f);
            throw error;
        }
        if (port == 0) {
            // The first socket picked a free port; the others share it.
            sockaddr_storage bound{};
            socklen_t bound_len = sizeof bound;
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
            port = ntohs(bound.ss_family == AF_INET
                             ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                             : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
            set_port(port);
        }
        fds.push_back(fd);
    }
    for (std::size_t i = 0; i < fds.size(); ++i) {
        auto& loop = *impl.loops_[i];
        loop.listeners.push_back(std::make_unique<listener>(loop, fds[i], kind));
    }
    char text[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(addr.ss_family, addr.ss_family == AF_INET ? static_cast<const void*>(&v4->sin_addr)
                                                          : static_cast<const void*>(&v6->sin6_addr),
                text, sizeof text);
    return (addr.ss_family == AF_INET6 ? "[" + std::string(text) + "]" : std::string(text)) + ":" +
           std::to_string(port);
}

std::shared_ptr<const ws::upgrade_policy> make_policy(const websocket_settings& ws) {
    auto p = std::make_shared<ws::upgrade_policy>();
    p->path = ws.path;
    p->origins = ws.origins;
    return p;
}

}  // namespace

std::string server::listen_mqtt(const endpoint& ep) {
    return bind_listeners(*impl_, ep, listener_kind::mqtt);
}

std::string server::listen_mqtts(const endpoint& ep, const tls_settings& tls) {
    // The certificate first: a bad one is a configuration error, reported before binding.
    auto ctx = std::make_shared<const tls_context>(tls);
    for (auto& loop : impl_->loops_) loop->tls = ctx;
    return bind_listeners(*impl_, ep, listener_kind::mqtts);
}

std::string server::listen_ws(const endpoint& ep, const websocket_settings& ws) {
    set_websocket(ws);
    return bind_listeners(*impl_, ep, listener_kind::ws);
}

std::string server::listen_wss(const endpoint& ep, const websocket_settings& ws,
                               const tls_settings& tls) {
    auto settings = tls;
    settings.ask_client_certificate = false;
    auto ctx = std::make_shared<const tls_context>(settings);
    for (auto& loop : impl_->loops_) loop->wss_tls = ctx;
    impl_->wss_listening_ = true;
    set_websocket(ws);
    return bind_listeners(*impl_, ep, listener_kind::wss);
}

void server::set_websocket(const websocket_settings& ws) {
    auto policy = make_policy(ws);
    if (!impl_->started_) {
        for (auto& loop : impl_->loops_) loop->ws_policy = policy;
        return;
    }
    // Upgrades under way keep the policy they started with.
    for (auto& loop : impl_->loops_)
        loop->post([l = loop.get(), policy] { l->ws_policy = policy; });
}

void server::reload_tls(const tls_settings& tls) {
    // Both built before either is used: a failure (thrown) leaves the running ones.
    auto ctx = std::make_shared<const tls_context>(tls);
    std::shared_ptr<const tls_context> wss;
    if (impl_->wss_listening_) {
        auto settings = tls;
        settings.ask_client_certificate = false;
        wss = std::make_shared<const tls_context>(settings);
    }
    if (!impl_->started_) {
        for (auto& loop : impl_->loops_) {
            loop->tls = ctx;
            if (wss) loop->wss_tls = wss;
        }
        return;
    }
    // Each worker swaps its own pointers, so accepting never takes a lock. Handshakes under
    // way and connected clients keep the context they started with.
    for (auto& loop : impl_->loops_)
        loop->post([l = loop.get(), ctx, wss] {
            l->tls = ctx;
            if (wss) l->wss_tls = wss;
        });
}

void server::start() {
    for (auto& loop : impl_->loops_) {
        for (auto& l : loop->listeners) l->arm();
        loop->thread = std::thread([this, l = loop.get()] { impl_->run(*l); });
    }
    impl_->started_ = true;
}

void server::run_on_workers(const std::function<void(unsigned)>& f) {
    std::vector<std::future<void>> done;
    for (auto& loop : impl_->loops_) {
        auto task = std::make_shared<std::packaged_task<void()>>([&f, i = loop->index] { f(i); });
        done.push_back(task->get_future());
        loop->post([task] { (*task)(); });
    }
    for (auto& d : done) d.get();
}

void server::stop() {
    if (!impl_->started_) return;
    impl_->started_ = false;
    impl_->stopping_ = true;
    run_on_workers([this](unsigned i) {
        auto& loop = *impl_->loops_[i];
        for (auto& l : loop.listeners) l->close();
        // Handshakes under way: no broker connection knows them yet.
        for (auto* c = loop.live; c != nullptr;) {
            auto* next = c->next;
            if (c->handshaking()) c->abandon();
            c = next;
        }
    });
    // Close every connection (wills and deliveries may cross workers), then let the loops
    // drain their writes.
    run_on_workers([this](unsigned i) { impl_->loops_[i]->state->shutdown(); });
    // Deliveries posted while closing are queued ahead of this pass; then sessions are saved.
    run_on_workers([this](unsigned i) { impl_->loops_[i]->state->save_sessions(); });
    const auto deadline = steady::now() + std::chrono::seconds(2);
    for (auto& loop : impl_->loops_) {
        loop->post([l = loop.get(), deadline] {
            l->quitting = true;
            l->quit_at = deadline;
        });
    }
    for (auto& loop : impl_->loops_)
        if (loop->thread.joinable()) loop->thread.join();
}

}  // namespace iothub::net
