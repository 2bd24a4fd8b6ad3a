#include "api/server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <future>
#include <list>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "api/errors.hpp"
#include "api/router.hpp"

namespace iothub::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

class session;

// What a refused or failed connection may still send before it is closed: the rest of a
// request we did not read. Reading it (and dropping it) lets our answer reach the client
// instead of being lost to a reset.
constexpr std::size_t max_drain_bytes = 16 * 1024 * 1024;
constexpr auto drain_time = std::chrono::seconds(2);
constexpr std::size_t max_header_bytes = 16 * 1024;

}  // namespace

struct api_server::impl {
    impl(hub::registry& reg, store::registry_store& keys, api_options o)
        : options(o), handler(reg, keys, o) {}

    api_options options;
    router handler;
    // Declared before the io_context so they outlive it: sessions that die with it still
    // unregister themselves.
    std::list<std::weak_ptr<session>> sessions;  // API thread only
    unsigned active = 0;                         // API thread only
    bool stopping = false;                       // API thread only (and before start)

    asio::io_context ioc{1};
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
    std::thread thread;
    std::future<void> finished;
    std::mutex state_mutex;  // start / stop / listen from the owner's threads
    bool started = false;
    bool stopped = false;

    void do_accept(tcp::acceptor& acceptor);
    void close_all();
};

namespace {

// One HTTP/1.1 connection: reads a request, answers it, and reads the next one (keep-alive;
// pipelined requests wait in the buffer). Lives on the API thread.
class session : public std::enable_shared_from_this<session> {
public:
    session(api_server::impl& owner, tcp::socket socket, bool refuse)
        : owner_(owner), stream_(std::move(socket)), refuse_(refuse) {}

    ~session() {
        if (registered_) owner_.sessions.erase(self_);
        if (!refuse_) --owner_.active;
    }

    // Every session is registered, so stop() can close it; only those served count
    // against max_connections.
    void start() {
        owner_.sessions.push_front(weak_from_this());
        self_ = owner_.sessions.begin();
        registered_ = true;
        if (refuse_) {
            send_error(service_unavailable("too many API connections; try again later"), 11);
            return;
        }
        read_request();
    }

    void close() {
        beast::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
        stream_.close();
    }

private:
    std::chrono::seconds idle() const {
        return std::chrono::seconds(owner_.options.idle_timeout_seconds);
    }

    void read_request() {
        if (owner_.stopping) return close();
        parser_.emplace();
        parser_->body_limit(owner_.options.max_body_bytes);
        parser_->header_limit(max_header_bytes);
        stream_.expires_after(idle());
        http::async_read_header(stream_, buffer_, *parser_,
                                [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                    self->on_header(ec);
                                });
    }

    void on_header(beast::error_code ec) {
        if (ec) return on_read_error(ec);
        const auto& req = parser_->get();
        if (beast::iequals(req[http::field::expect], "100-continue") && !parser_->is_done()) {
            // Tell a client that waits for it (curl does, for bodies past 1 KiB) to send.
            static const std::string cont = "HTTP/1.1 100 Continue\r\n\r\n";
            stream_.expires_after(idle());
            asio::async_write(stream_, asio::buffer(cont),
                              [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                  if (ec) return self->close();
                                  self->read_body();
                              });
            return;
        }
        read_body();
    }

    void read_body() {
        stream_.expires_after(idle());
        http::async_read(stream_, buffer_, *parser_,
                         [self = shared_from_this()](beast::error_code ec, std::size_t) {
                             if (ec) return self->on_read_error(ec);
                             self->on_request();
                         });
    }

    void on_read_error(beast::error_code ec) {
        if (ec == http::error::body_limit) {
            return send_error(body_too_large(owner_.options.max_body_bytes), 11);
        }
        if (ec == http::error::header_limit) {
            return send_error(bad_request("the header is larger than 16 KiB"), 11);
        }
        if (ec.category() == beast::error_code(http::error::bad_target).category() &&
            ec != http::error::end_of_stream && ec != http::error::partial_message) {
            return send_error(bad_request(ec.message()), 11);
        }
        // The client went away, or stayed silent past the idle timeout.
        close();
    }

    void on_request() {
        auto msg = parser_->release();
        parser_.reset();
        request req;
        req.method = std::string(msg.method_string());
        req.target = std::string(msg.target());
        if (const auto it = msg.find("X-Auth-Token"); it != msg.end()) {
            req.token = std::string(it->value());
        }
        req.body = std::move(msg.body());
        const bool head = msg.method() == http::verb::head;
        response out = owner_.handler.handle(req);
        spdlog::debug("api: {} {} -> {}", req.method, req.target, out.status);
        write(out, msg.version(), msg.keep_alive() && !head);
    }

    void send_error(const error_reply& e, unsigned version) {
        response out{e.status, to_text(e.body), {}};
        write(out, version, false);
    }

    void write(const response& out, unsigned version, bool keep_alive) {
        res_ = {};
        res_.version(version);
        res_.result(out.status);
        res_.set(http::field::server, "iothub");
        for (const auto& [name, value] : out.headers) res_.set(name, value);
        if (out.status != 204) {
            res_.set(http::field::content_type, "application/json");
            res_.body() = out.body;
        }
        res_.keep_alive(keep_alive);
        // 204 carries no Content-Length at all (RFC 9110 8.6); every other answer has one.
        if (out.status != 204) res_.prepare_payload();
        stream_.expires_after(idle());
        http::async_write(
            stream_, res_,
            [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
                if (ec) return self->close();
                if (keep_alive) return self->read_request();
                self->finish();
            });
    }

    // After the last answer: no more sending, and whatever the client still sends is read
    // and dropped for a while, so that closing does not reset the connection under an
    // answer the client has not read yet.
    void finish() {
        beast::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        if (ec) return close();
        drained_ = 0;
        stream_.expires_after(drain_time);
        drain();
    }

    void drain() {
        if (!drain_buffer_) drain_buffer_ = std::make_unique<std::array<char, 8192>>();
        stream_.async_read_some(
            asio::buffer(*drain_buffer_),
            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                self->drained_ += n;
                if (ec || self->drained_ > max_drain_bytes || self->owner_.stopping) {
                    return self->close();
                }
                self->drain();
            });
    }

    api_server::impl& owner_;
    beast::tcp_stream stream_;
    bool refuse_;
    bool registered_ = false;
    std::list<std::weak_ptr<session>>::iterator self_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    http::response<http::string_body> res_;
    std::unique_ptr<std::array<char, 8192>> drain_buffer_;
    std::size_t drained_ = 0;
};

}  // namespace

void api_server::impl::do_accept(tcp::acceptor& acceptor) {
    acceptor.async_accept([this, &acceptor](beast::error_code ec, tcp::socket socket) {
        if (stopping || !acceptor.is_open()) return;
        if (ec) {
            // Out of descriptors and the like: keep listening, but do not spin.
            spdlog::warn("api: accept failed: {}", ec.message());
            auto timer = std::make_shared<asio::steady_timer>(ioc, std::chrono::milliseconds(100));
            timer->async_wait([this, &acceptor, timer](beast::error_code) {
                if (!stopping && acceptor.is_open()) do_accept(acceptor);
            });
            return;
        }
        const bool refuse = active >= options.max_connections;
        if (!refuse) ++active;  // given back by the session's destructor
        std::make_shared<session>(*this, std::move(socket), refuse)->start();
        do_accept(acceptor);
    });
}

void api_server::impl::close_all() {
    stopping = true;
    for (auto& a : acceptors) {
        beast::error_code ec;
        a->close(ec);
    }
    // Copy first: closing may end a session, which unregisters itself.
    std::vector<std::shared_ptr<session>> live;
    for (auto& w : sessions) {
        if (auto s = w.lock()) live.push_back(std::move(s));
    }
    for (auto& s : live) s->close();
}

api_server::api_server(hub::registry& reg, store::registry_store& keys, api_options options)
    : impl_(std::make_unique<impl>(reg, keys, std::move(options))) {}

api_server::~api_server() {
    stop();
}

std::string api_server::listen(const std::string& host, std::uint16_t port) {
    std::lock_guard lock(impl_->state_mutex);
    if (impl_->stopped) throw std::runtime_error("API server already stopped");
    beast::error_code ec;
    tcp::resolver resolver(impl_->ioc);
    const auto results = resolver.resolve(
        host, std::to_string(port), tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec) throw std::runtime_error("API listen address " + host + ": " + ec.message());
    std::string last_error = "no address";
    for (const auto& r : results) {
        auto acceptor = std::make_unique<tcp::acceptor>(impl_->ioc);
        const auto ep = r.endpoint();
        acceptor->open(ep.protocol(), ec);
        if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec) acceptor->bind(ep, ec);
        if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
        if (ec) {
            last_error = ec.message();
            continue;
        }
        const auto bound = acceptor->local_endpoint();
        const std::string addr = bound.address().to_string();
        std::string text = bound.address().is_v6() ? "[" + addr + "]" : addr;
        text += ":" + std::to_string(bound.port());
        auto* raw = acceptor.get();
        impl_->acceptors.push_back(std::move(acceptor));
        asio::post(impl_->ioc, [i = impl_.get(), raw] { i->do_accept(*raw); });
        return text;
    }
    throw std::runtime_error("cannot listen for the API on " + host + ":" + std::to_string(port) +
                             ": " + last_error);
}

void api_server::start() {
    std::lock_guard lock(impl_->state_mutex);
    if (impl_->started || impl_->stopped) return;
    impl_->started = true;
    std::promise<void> done;
    impl_->finished = done.get_future();
    impl_->thread = std::thread([i = impl_.get(), done = std::move(done)]() mutable {
        for (;;) {
            try {
                i->ioc.run();
                break;
            } catch (const std::exception& e) {
                spdlog::error("api: unexpected error: {}", e.what());
            }
        }
        done.set_value();
    });
}

void api_server::stop() {
    std::lock_guard lock(impl_->state_mutex);
    if (impl_->stopped) return;
    impl_->stopped = true;
    if (!impl_->started) {
        impl_->close_all();
        return;
    }
    asio::post(impl_->ioc, [i = impl_.get()] { i->close_all(); });
    // Every socket and acceptor is closed, so the loop runs out of work; a handler that
    // does not finish in time is cut off.
    if (impl_->finished.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
        impl_->ioc.stop();
    }
    impl_->thread.join();
}

}  // namespace iothub::api
