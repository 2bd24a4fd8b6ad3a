#include "net/server.hpp"

#include <malloc.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_set>

#include "broker/broker.hpp"
#include "broker/connection.hpp"
#include "broker/guarded.hpp"
#include "broker/output_queue.hpp"
#include "broker/worker.hpp"
#include "net/tls.hpp"
#include "net/websocket.hpp"

namespace iothub::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
// Sockets bound to their io_context's own executor type: smaller sockets and smaller pending
// operations than with the type-erased default executor.
using socket_type = asio::basic_stream_socket<tcp, asio::io_context::executor_type>;

namespace {

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

// One TCP connection, plain or TLS: owns the socket and the protocol handler, moves bytes
// between them.
//
// TLS (see net/tls.hpp): the SSL object does its own read(2)/write(2) on the socket's
// descriptor; the loop only waits for readiness, as for plain TCP, and the plaintext goes
// through the worker's read buffer into the same broker::connection, with the same batching.
// The handshake runs first, on the accepting worker, one step per readiness event, under a
// timer. A connection whose session lives on another worker moves there after its CONNECT
// exactly as a TCP one does (release the descriptor, assign it on the target's io_context),
// and the SSL object moves with it: it refers to the descriptor by number and to no
// io_context, and it carries what it has read ahead.
class tcp_connection final : public broker::transport,
                             public std::enable_shared_from_this<tcp_connection> {
public:
    tcp_connection(worker_loop& loop, socket_type socket, tls_session tls = {},
                   std::unique_ptr<ws_state> ws = nullptr);
    ~tcp_connection() override = default;

    // `pending`: plaintext read on another worker and not handled yet.
    void start(std::vector<std::uint8_t> pending = {});
    // TLS: handshake first (with this timeout), then start().
    void start_tls(unsigned timeout_s);
    // Ends a handshake under way (the server stops).
    void abort_handshake() { finish(); }

    void wake_write() override;
    void close() override;
    void migrate(unsigned worker) override { migrate_to_ = static_cast<int>(worker); }
    std::string peer() const override;
    bool tls() const override { return static_cast<bool>(tls_); }
    std::vector<std::string> peer_certificates() const override { return tls_.peer_chain(); }

private:
    void schedule_read();
    // Waits until the socket is ready for `what`, then reads (or handles an error).
    void wait_then_read(socket_type::wait_type what);
    void on_readable();
    void read_available(std::vector<std::uint8_t>& buffer);
    // TLS: fills `buffer` with plaintext; false when the connection ended meanwhile.
    bool read_tls(std::vector<std::uint8_t>& buffer, std::size_t& n);
    void read_pending() override;
    void do_write();
    void write_tls();
    void on_written(boost::system::error_code ec);
    void continue_handshake();
    void handshake_failed(const std::string& why);
    // WebSocket: takes [data, data + n) read from the stream; on true, [data + from,
    // data + from + len) is MQTT for the handler (maybe empty); false when the connection ends.
    bool ws_input(std::uint8_t* data, std::size_t n, std::size_t& from, std::size_t& len);
    void ws_fail(std::uint16_t code, const std::string& why);
    void finish();
    void hand_over();

    worker_loop& loop_;
    socket_type socket_;
    tls_session tls_;                            // empty for plain TCP
    std::unique_ptr<ws_state> ws_;               // empty for MQTT straight on the stream
    std::optional<broker::connection> handler_;  // in the same allocation as the socket
    // The write in progress: what it sends and its pieces, for one gathering write. Allocated
    // while writes are under way, freed when the connection has nothing left to send, so an
    // idle connection carries none of it.
    struct write_state {
        broker::output_queue data;
        std::vector<asio::const_buffer> pieces;
        // TLS: where the write is in `pieces`, and small pieces gathered into one record.
        std::size_t piece = 0;
        std::size_t offset = 0;
        std::string gathered;
        std::size_t gathered_sent = 0;
        // WebSocket: control frames ahead, the data frame's header, the close frame last.
        std::string ws_control;
        std::uint8_t ws_header[14] = {};
        std::string ws_final;
    };
    std::unique_ptr<write_state> writing_;
    bool write_active_ = false;
    bool write_posted_ = false;
    bool close_requested_ = false;
    bool finished_ = false;
    bool read_paused_ = false;
    bool read_waiting_ = false;  // an async_wait for readable is under way
    bool read_posted_ = false;   // a read is posted (TLS: records already taken in)
    int migrate_to_ = -1;
    std::unique_ptr<asio::steady_timer> close_timer_;
    // TLS, during the handshake only: its deadline, and the client's address for the log
    // (a client that gave up may no longer have one on the socket).
    struct handshake_state {
        asio::steady_timer timer;
        tcp::endpoint peer;
    };
    std::unique_ptr<handshake_state> handshake_;
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

}  // namespace

namespace {

struct worker_loop {
    server::impl* owner = nullptr;
    unsigned index = 0;
    // One thread runs each loop and every socket and timer is used from it alone (other
    // threads only post), so the reactor needs no locking of its own.
    asio::io_context ioc{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
    std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work;
    struct listener {
        std::unique_ptr<tcp::acceptor> acceptor;
        listener_kind kind = listener_kind::mqtt;
    };
    std::vector<listener> acceptors;
    // What new TLS connections of this worker use; replaced (on this thread) by reload_tls.
    std::shared_ptr<const tls_context> tls;
    // What the WebSocket listeners accept; replaced (on this thread) by set_websocket.
    std::shared_ptr<const ws::upgrade_policy> ws_policy;
    // TLS connections still in their handshake: no broker connection knows them yet.
    std::unordered_set<tcp_connection*> handshakes;
    std::unique_ptr<asio::steady_timer> ticker;
    broker::worker* state = nullptr;
    std::vector<std::uint8_t> read_buffer = std::vector<std::uint8_t>(64 * 1024);
    std::vector<std::uint8_t> pending_buffer = std::vector<std::uint8_t>(16 * 1024);
    std::thread thread;
    std::uint64_t ticks = 0;
    struct inbox_state {
        std::vector<broker::delivery> items;  // deliveries from other workers
        bool scheduled = false;               // a drain is posted and has not started yet
    };
    broker::guarded<inbox_state, std::mutex> inbox;
};

}  // namespace

struct server::impl final : broker::dispatcher {
    explicit impl(broker::broker& b) : broker_(b) {
        for (unsigned i = 0; i < b.worker_count(); ++i) {
            auto w = std::make_unique<worker_loop>();
            w->owner = this;
            w->index = i;
            w->state = &b.worker_at(i);
            w->work = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
                w->ioc.get_executor());
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
        if (wake) asio::post(loop.ioc, [&loop] { drain_inbox(loop); });
    }

    void post_task(unsigned target, std::function<void(broker::worker&)> task) override {
        auto& loop = *loops_[target];
        asio::post(loop.ioc, [&loop, task = std::move(task)] {
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

    void accept(worker_loop& loop, tcp::acceptor& acc, listener_kind kind) {
        acc.async_accept(loop.ioc, [this, &loop, &acc, kind](boost::system::error_code ec,
                                                             socket_type s) {
            if (ec == asio::error::operation_aborted || !acc.is_open() || stopping_) return;
            if (ec) {
                // Out of descriptors or memory: retry shortly instead of spinning.
                if (broker_.log && broker_.may_log_drop(broker_.now()))
                    broker_.log(4, "accept failed: " + ec.message());
                auto t = std::make_shared<asio::steady_timer>(loop.ioc, std::chrono::milliseconds(100));
                t->async_wait([this, &loop, &acc, t, kind](boost::system::error_code) {
                    accept(loop, acc, kind);
                });
                return;
            }
            boost::system::error_code ignored;
            s.set_option(tcp::no_delay(true), ignored);
            std::unique_ptr<ws_state> ws;
            if (kind == listener_kind::ws || kind == listener_kind::wss)
                ws = std::make_unique<ws_state>(loop.ws_policy, ws_max_frame(broker_));
            if (kind == listener_kind::mqtt || kind == listener_kind::ws) {
                std::make_shared<tcp_connection>(loop, std::move(s), tls_session{}, std::move(ws))
                    ->start();
            } else if (const auto ctx = loop.tls) {
                tls_session session(*ctx, s.native_handle());
                if (session) {
                    std::make_shared<tcp_connection>(loop, std::move(s), std::move(session),
                                                     std::move(ws))
                        ->start_tls(ctx->handshake_timeout_s());
                } else if (broker_.log && broker_.may_log_drop(broker_.now())) {
                    broker_.log(4,
                                "TLS: cannot make a session (out of memory?): connection closed");
                }
            }
            accept(loop, acc, kind);
        });
    }

    void tick(worker_loop& loop) {
        loop.ticker->expires_after(std::chrono::milliseconds(250));
        loop.ticker->async_wait([this, &loop](boost::system::error_code ec) {
            if (ec) return;
            loop.state->tick(broker_.now());
            // Give freed memory back to the system after a spike (idle most of the time).
            if (loop.index == 0 && ++loop.ticks % 40 == 0) ::malloc_trim(0);
            tick(loop);
        });
    }

    ~impl() override { broker_.set_dispatcher(nullptr); }

    broker::broker& broker_;
    std::vector<std::unique_ptr<worker_loop>> loops_;
    bool started_ = false;
    std::atomic<bool> stopping_{false};
};

namespace {

tcp_connection::tcp_connection(worker_loop& loop, socket_type socket, tls_session tls,
                               std::unique_ptr<ws_state> ws)
    : loop_(loop), socket_(std::move(socket)), tls_(std::move(tls)), ws_(std::move(ws)) {}

// Formatted when a log line needs it rather than kept per connection.
std::string tcp_connection::peer() const {
    boost::system::error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    if (ec && handshake_ && handshake_->peer.port() != 0) {
        ep = handshake_->peer;
        ec = {};
    }
    if (ec) return "unknown";
    auto addr = ep.address();
    return addr.is_v6() ? "[" + addr.to_string() + "]:" + std::to_string(ep.port())
                        : addr.to_string() + ":" + std::to_string(ep.port());
}

void tcp_connection::start(std::vector<std::uint8_t> pending) {
    boost::system::error_code ec;
    socket_.non_blocking(true, ec);
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
    schedule_read();
}

void tcp_connection::start_tls(unsigned timeout_s) {
    boost::system::error_code ec;
    socket_.non_blocking(true, ec);
    loop_.handshakes.insert(this);
    handshake_ = std::make_unique<handshake_state>(
        handshake_state{asio::steady_timer(loop_.ioc, std::chrono::seconds(timeout_s)), {}});
    handshake_->peer = socket_.remote_endpoint(ec);
    handshake_->timer.async_wait(
        [self = shared_from_this(), timeout_s](boost::system::error_code ec) {
            if (ec || self->finished_ || self->tls_.established()) return;
            self->handshake_failed("not finished after " + std::to_string(timeout_s) +
                                   " s (tls_handshake_timeout)");
        });
    continue_handshake();
}

// One step per readiness event: a slow or silent client costs the worker nothing while it
// waits, and the timer ends it.
void tcp_connection::continue_handshake() {
    std::string why;
    const auto r = tls_.handshake(why);
    if (r == tls_session::result::ok) {
        handshake_.reset();  // cancels the timer
        loop_.handshakes.erase(this);
        start();
        return;
    }
    if (r == tls_session::result::want_read || r == tls_session::result::want_write) {
        const auto wait =
            r == tls_session::result::want_read ? socket_type::wait_read : socket_type::wait_write;
        socket_.async_wait(wait, [self = shared_from_this()](boost::system::error_code ec) {
            if (self->finished_) return;
            if (ec) {
                self->handshake_failed(ec.message());
                return;
            }
            self->continue_handshake();
        });
        return;
    }
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

// Readiness, then non-blocking reads into the worker's buffer: no connection keeps a read
// buffer of its own while it waits. Records a TLS session has already taken from the socket
// do not make it readable: those are read on a posted turn instead.
void tcp_connection::schedule_read() {
    if (finished_ || close_requested_ || read_paused_ || migrate_to_ >= 0) return;
    if (tls_ && tls_.has_pending()) {
        if (read_posted_) return;
        read_posted_ = true;
        asio::post(loop_.ioc, [self = shared_from_this()] {
            self->read_posted_ = false;
            if (!self->finished_) self->on_readable();
        });
        return;
    }
    wait_then_read(socket_type::wait_read);
}

void tcp_connection::wait_then_read(socket_type::wait_type what) {
    if (read_waiting_) return;
    read_waiting_ = true;
    socket_.async_wait(what, [self = shared_from_this()](boost::system::error_code ec) {
        self->read_waiting_ = false;
        if (self->finished_) return;
        if (ec) {
            self->handler_->on_transport_closed();
            self->finish();
            return;
        }
        self->on_readable();
    });
}

void tcp_connection::on_readable() {
    if (read_paused_ || migrate_to_ >= 0) return;
    read_available(loop_.read_buffer);
    schedule_read();
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
        if (r == tls_session::result::want_read) break;
        if (r == tls_session::result::want_write) {
            // The session must send something first (renegotiation is off, so rarely):
            // retry the read once the socket takes it.
            wait_then_read(socket_type::wait_write);
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
    // A few reads at most per wake-up, so one busy client cannot starve the others.
    for (int i = 0; i < 4; ++i) {
        std::size_t n = 0;
        if (tls_) {
            if (!read_tls(buffer, n)) return;
            if (n == 0) return;
        } else {
            boost::system::error_code ec;
            n = socket_.read_some(asio::buffer(buffer), ec);
            if (ec == asio::error::would_block || ec == asio::error::try_again) return;
            if (ec) {
                handler_->on_transport_closed();
                finish();
                return;
            }
        }
        std::size_t from = 0;
        std::size_t len = n;
        if (ws_ && !ws_input(buffer.data(), n, from, len)) return;
        if (len != 0) handler_->on_data({buffer.data() + from, len});
        if (migrate_to_ >= 0) {
            hand_over();
            return;
        }
        if (close_requested_) return;
        if (handler_->output().size() + (writing_ ? writing_->data.size() : 0) > output_high_water) {
            read_paused_ = true;
            return;
        }
        if (n < buffer.size()) return;
    }
}

void tcp_connection::read_pending() {
    if (finished_ || close_requested_ || read_paused_ || migrate_to_ >= 0) return;
    // Not the worker's main read buffer: the caller may be decoding from it right now.
    read_available(loop_.pending_buffer);
    // Records left inside the TLS session would not wake the socket's wait.
    if (tls_ && tls_.has_pending()) schedule_read();
}

void tcp_connection::hand_over() {
    // The CONNECT names a session owned by another worker: move the socket there, with the
    // bytes read so far, before anything was answered.
    auto pending = handler_->take_input();
    handler_.reset();
    boost::system::error_code ec;
    const auto protocol = socket_.local_endpoint(ec).protocol();
    const int fd = socket_.release(ec);
    finished_ = true;
    if (ec || fd < 0) return;
    auto& target = *loop_.owner->loops_[static_cast<unsigned>(migrate_to_)];
    // A TLS session goes along: it names the descriptor, not an io_context.
    asio::post(target.ioc, [&target, fd, protocol, pending = std::move(pending),
                            tls = std::move(tls_), ws = std::move(ws_)]() mutable {
        if (target.owner->stopping_) {
            ::close(fd);
            return;
        }
        boost::system::error_code assign_ec;
        socket_type s(target.ioc);
        s.assign(protocol, fd, assign_ec);
        if (assign_ec) {
            ::close(fd);
            return;
        }
        std::make_shared<tcp_connection>(target, std::move(s), std::move(tls), std::move(ws))
            ->start(std::move(pending));
    });
}

void tcp_connection::wake_write() {
    if (write_active_ || write_posted_ || finished_) return;
    write_posted_ = true;
    // Deferred: everything produced in this turn of the loop goes out in one write.
    asio::post(loop_.ioc, [self = shared_from_this()] {
        self->write_posted_ = false;
        self->do_write();
    });
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
    if (ws_ && !ws_->control_out.empty()) {
        w.ws_control.swap(ws_->control_out);
        ws_->control_out.clear();
        w.pieces.push_back(asio::buffer(w.ws_control));
    }
    if (has_data) {
        w.data.swap(handler_->output());
        // WebSocket: everything queued goes out as one binary frame.
        if (ws_) {
            const auto n = ws::encode_header(w.ws_header, ws::opcode::binary, w.data.size());
            w.pieces.push_back(asio::buffer(w.ws_header, n));
        }
        w.data.for_each_piece([&w](std::string_view piece) {
            w.pieces.push_back(asio::buffer(piece.data(), piece.size()));
        });
    }
    if (ws_ && close_requested_ && !ws_->final_frame.empty() &&
        (!handler_ || handler_->output().empty())) {
        w.ws_final.swap(ws_->final_frame);
        ws_->final_frame.clear();
        w.pieces.push_back(asio::buffer(w.ws_final));
    }
    write_active_ = true;
    if (tls_) {
        w.piece = 0;
        w.offset = 0;
        w.gathered.clear();
        w.gathered_sent = 0;
        write_tls();
        return;
    }
    asio::async_write(socket_, w.pieces,
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                          self->on_written(ec);
                      });
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
            while (w.piece < w.pieces.size() && w.offset == w.pieces[w.piece].size()) {
                ++w.piece;
                w.offset = 0;
            }
            if (w.piece == w.pieces.size()) {
                on_written({});
                return;
            }
            const auto* piece = static_cast<const std::uint8_t*>(w.pieces[w.piece].data());
            const std::size_t left = w.pieces[w.piece].size() - w.offset;
            if (left >= tls_record) {
                data = piece + w.offset;
                size = left;
                direct = true;
            } else {
                while (w.piece < w.pieces.size() && w.gathered.size() < tls_record) {
                    const auto* p = static_cast<const char*>(w.pieces[w.piece].data());
                    const std::size_t take = std::min(w.pieces[w.piece].size() - w.offset,
                                                      tls_record - w.gathered.size());
                    w.gathered.append(p + w.offset, take);
                    w.offset += take;
                    if (w.offset == w.pieces[w.piece].size()) {
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
        if (r == tls_session::result::want_write || r == tls_session::result::want_read) {
            const auto wait = r == tls_session::result::want_write ? socket_type::wait_write
                                                                   : socket_type::wait_read;
            socket_.async_wait(wait, [self = shared_from_this()](boost::system::error_code ec) {
                if (self->finished_) {
                    self->write_active_ = false;
                    return;
                }
                if (ec) {
                    self->on_written(ec);
                    return;
                }
                self->write_tls();
            });
            return;
        }
        on_written(asio::error::connection_reset);
        return;
    }
}

void tcp_connection::on_written(boost::system::error_code ec) {
    write_active_ = false;
    if (finished_) return;
    if (ec) {
        handler_->on_transport_closed();
        finish();
        return;
    }
    // Drops the references to shared payloads; gives back memory that grew for a burst.
    if (handler_->output().empty()) {
        writing_.reset();
    } else {
        writing_->data.clear();
        writing_->data.trim();
    }
    if (read_paused_ && !close_requested_ && handler_->output().size() < output_high_water / 2) {
        read_paused_ = false;
        schedule_read();
    }
    do_write();
}

void tcp_connection::close() {
    if (close_requested_) return;
    // WebSocket: the closing handshake's frame follows the last data.
    if (ws_ && ws_->open && ws_->final_frame.empty() && !ws_->decoder.closed())
        ws_->final_frame = ws::close_frame(ws::close_normal);
    close_requested_ = true;
    close_timer_ = std::make_unique<asio::steady_timer>(loop_.ioc, close_grace);
    close_timer_->async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec) self->finish();
    });
    if (!write_active_ && !write_posted_) {
        write_posted_ = true;
        asio::post(loop_.ioc, [self = shared_from_this()] {
            self->write_posted_ = false;
            self->do_write();
        });
    }
}

void tcp_connection::finish() {
    if (finished_) return;
    finished_ = true;
    if (close_timer_) close_timer_->cancel();
    if (handshake_) {
        handshake_->timer.cancel();
        loop_.handshakes.erase(this);
    }
    // close_notify, unless a record is half sent (it would go out inside it).
    if (tls_ && !write_active_) tls_.shutdown();
    boost::system::error_code ec;
    socket_.shutdown(socket_type::shutdown_both, ec);
    socket_.close(ec);
    if (handler_) handler_->on_transport_closed();
    // Destroy the handler on a later turn: this may run inside one of its calls.
    asio::post(loop_.ioc, [self = shared_from_this()] { self->handler_.reset(); });
}

}  // namespace

server::server(broker::broker& b) : impl_(std::make_unique<impl>(b)) {}

server::~server() {
    if (impl_->started_) stop();
}

namespace {

// One listening socket per worker on `ep`, sharing the port (SO_REUSEPORT).
std::string bind_listeners(server::impl& impl, const endpoint& ep, listener_kind kind) {
    boost::system::error_code ec;
    std::string host = ep.host == "localhost" ? "127.0.0.1" : ep.host;
    auto addr = asio::ip::make_address(host, ec);
    if (ec) throw std::runtime_error("invalid listen address '" + ep.host + "': " + ec.message());
    std::uint16_t port = ep.port;
    std::string bound;
    if (port != 0) {
        // SO_REUSEPORT would let this process silently share a port another process listens
        // on (and split its clients). A plain bind first refuses a port already in use.
        tcp::acceptor probe(impl.loops_.front()->ioc);
        tcp::endpoint e(addr, port);
        probe.open(e.protocol(), ec);
        if (!ec) probe.set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec) probe.bind(e, ec);
        if (ec)
            throw std::runtime_error("cannot listen on " + ep.host + ":" + std::to_string(port) +
                                     ": " + ec.message());
        probe.close(ec);
    }
    for (auto& loop : impl.loops_) {
        auto acc = std::make_unique<tcp::acceptor>(loop->ioc);
        tcp::endpoint e(addr, port);
        acc->open(e.protocol(), ec);
        if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec) {
            int one = 1;
            if (::setsockopt(acc->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
                ec = boost::system::error_code(errno, boost::system::system_category());
        }
        if (!ec) acc->bind(e, ec);
        if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
        if (ec)
            throw std::runtime_error("cannot listen on " + ep.host + ":" + std::to_string(port) +
                                     ": " + ec.message());
        if (port == 0) {
            // The first socket picked a free port; the others share it.
            port = acc->local_endpoint().port();
        }
        loop->acceptors.push_back({std::move(acc), kind});
    }
    bound = (addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string()) + ":" + std::to_string(port);
    return bound;
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

namespace {

std::shared_ptr<const ws::upgrade_policy> make_policy(const websocket_settings& ws) {
    auto p = std::make_shared<ws::upgrade_policy>();
    p->path = ws.path;
    p->origins = ws.origins;
    return p;
}

}  // namespace

std::string server::listen_ws(const endpoint& ep, const websocket_settings& ws) {
    set_websocket(ws);
    return bind_listeners(*impl_, ep, listener_kind::ws);
}

std::string server::listen_wss(const endpoint& ep, const websocket_settings& ws,
                               const tls_settings& tls) {
    auto ctx = std::make_shared<const tls_context>(tls);
    for (auto& loop : impl_->loops_) loop->tls = ctx;
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
        asio::post(loop->ioc, [l = loop.get(), policy] { l->ws_policy = policy; });
}

void server::reload_tls(const tls_settings& tls) {
    auto ctx = std::make_shared<const tls_context>(tls);  // throws: the running one stays
    if (!impl_->started_) {
        for (auto& loop : impl_->loops_) loop->tls = ctx;
        return;
    }
    // Each worker swaps its own pointer, so accepting never takes a lock. Handshakes under
    // way and connected clients keep the context they started with.
    for (auto& loop : impl_->loops_) asio::post(loop->ioc, [l = loop.get(), ctx] { l->tls = ctx; });
}

void server::start() {
    for (auto& loop : impl_->loops_) {
        for (auto& l : loop->acceptors) impl_->accept(*loop, *l.acceptor, l.kind);
        loop->ticker = std::make_unique<asio::steady_timer>(loop->ioc);
        impl_->tick(*loop);
        loop->thread = std::thread([l = loop.get()] { l->ioc.run(); });
    }
    impl_->started_ = true;
}

void server::run_on_workers(const std::function<void(unsigned)>& f) {
    std::vector<std::future<void>> done;
    for (auto& loop : impl_->loops_) {
        auto task = std::make_shared<std::packaged_task<void()>>([&f, i = loop->index] { f(i); });
        done.push_back(task->get_future());
        asio::post(loop->ioc, [task] { (*task)(); });
    }
    for (auto& d : done) d.get();
}

void server::stop() {
    if (!impl_->started_) return;
    impl_->started_ = false;
    impl_->stopping_ = true;
    run_on_workers([this](unsigned i) {
        auto& loop = *impl_->loops_[i];
        boost::system::error_code ec;
        for (auto& l : loop.acceptors) l.acceptor->close(ec);
        const std::vector<tcp_connection*> handshakes(loop.handshakes.begin(),
                                                      loop.handshakes.end());
        for (auto* c : handshakes) c->abort_handshake();
        if (loop.ticker) loop.ticker->cancel();
    });
    // Close every connection (wills and deliveries may cross workers), then let the loops
    // drain their writes.
    run_on_workers([this](unsigned i) { impl_->loops_[i]->state->shutdown(); });
    // Deliveries posted while closing are queued ahead of this pass; then sessions are saved.
    run_on_workers([this](unsigned i) { impl_->loops_[i]->state->save_sessions(); });
    for (auto& loop : impl_->loops_) loop->work.reset();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    for (auto& loop : impl_->loops_) {
        while (!loop->ioc.stopped() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        loop->ioc.stop();
        if (loop->thread.joinable()) loop->thread.join();
    }
}

}  // namespace iothub::net
