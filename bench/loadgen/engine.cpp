#include "engine.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

namespace iothub::bench {

std::uint64_t now_ns() noexcept {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
}

namespace {

constexpr std::size_t read_chunk = 64 * 1024;
constexpr std::size_t out_high_water = 1024 * 1024;
// A link's queued MQTT bytes are framed/encrypted only while less than this waits in `wire`.
constexpr std::size_t wire_refill = 256 * 1024;

constexpr std::uint64_t ms = 1000000;

// A worker's totals are written by its own thread only (the reporter just reads them), so a
// plain load and store will do: no locked add per message.
void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

tls_client* shared_tls = nullptr;

// Skips v5 properties of a CONNACK, picking out Receive Maximum.
void read_connack_properties(const std::uint8_t* p, std::size_t n, std::uint32_t& receive_max) {
    std::uint32_t len = 0;
    const std::size_t lsz = skip_varint(p, n, len);
    if (lsz == 0 || lsz + len > n) {
        return;
    }
    std::size_t i = lsz;
    const std::size_t end = lsz + len;
    while (i < end) {
        const std::uint8_t id = p[i++];
        switch (id) {
        case 0x01: case 0x17: case 0x19: case 0x24: case 0x25: case 0x28: case 0x29: case 0x2A:
            i += 1;
            break;
        case 0x13: case 0x22: case 0x23:
            i += 2;
            break;
        case 0x21:
            if (i + 2 <= end) {
                receive_max = read_u16(p + i);
            }
            i += 2;
            break;
        case 0x02: case 0x11: case 0x18: case 0x27:
            i += 4;
            break;
        case 0x03: case 0x08: case 0x12: case 0x1A: case 0x1C: case 0x1F: case 0x09: case 0x16:
            if (i + 2 > end) {
                return;
            }
            i += 2 + read_u16(p + i);
            break;
        case 0x26:
            for (int k = 0; k < 2; ++k) {
                if (i + 2 > end) {
                    return;
                }
                i += 2 + read_u16(p + i);
            }
            break;
        case 0x0B: {
            std::uint32_t v = 0;
            const std::size_t s = skip_varint(p + i, end - i, v);
            if (s == 0) {
                return;
            }
            i += s;
            break;
        }
        default: return;
        }
    }
}

}  // namespace

std::string prepare_transport(const options& o) {
    if (!uses_tls(o.link) || shared_tls != nullptr) {
        return {};
    }
    auto* t = new tls_client();  // lives as long as the process
    std::string err = t->init(o.cafile, o.host);
    if (!err.empty()) {
        delete t;
        return err;
    }
    shared_tls = t;
    return {};
}

std::uint16_t alloc_pid(connection& c) {
    if (c.pid_used.empty()) {
        c.pid_used.assign(1024, 0);
    }
    for (;;) {
        const std::uint16_t id = c.next_pid;
        c.next_pid = static_cast<std::uint16_t>(c.next_pid == 65535 ? 1 : c.next_pid + 1);
        std::uint64_t& word = c.pid_used[id >> 6];
        const std::uint64_t bit = std::uint64_t{1} << (id & 63);
        if ((word & bit) == 0) {
            word |= bit;
            return id;
        }
    }
}

bool free_pid(connection& c, std::uint16_t id) {
    if (c.pid_used.empty()) {
        return false;
    }
    std::uint64_t& word = c.pid_used[id >> 6];
    const std::uint64_t bit = std::uint64_t{1} << (id & 63);
    if ((word & bit) == 0) {
        return false;
    }
    word &= ~bit;
    return true;
}

worker::worker(run_state& rs, int index) : rs_(rs), index_(index) {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    const options& o = *rs_.opt;
    link_settings_.kind = o.link;
    link_settings_.ctx = shared_tls != nullptr ? shared_tls->ctx() : nullptr;
    link_settings_.host = o.host;
    link_settings_.port = o.port;
    link_settings_.path = o.ws_path;
    link_settings_.max_frame = o.ws_max_frame;
    link_seed_ = now_ns() ^ (static_cast<std::uint64_t>(index) << 48);
    if (uses_tls(o.link)) {
        raw_.resize(read_chunk);
    }
}

worker::~worker() {
    for (auto& c : conns) {
        if (c->fd >= 0) {
            ::close(c->fd);
        }
    }
    if (epfd_ >= 0) {
        ::close(epfd_);
    }
}

connection& worker::add(role kind, std::string client_id) {
    auto c = std::make_unique<connection>();
    c->kind = kind;
    c->client_id = std::move(client_id);
    c->keep_alive = rs_.opt->keep_alive;
    if (kind == role::publisher) {
        publishers_.push_back(c.get());
    } else if (kind == role::slow_subscriber) {
        slow_.push_back(c.get());
    }
    conns.push_back(std::move(c));
    return *conns.back();
}

void worker::start(connection& c) {
    const options& o = *rs_.opt;
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
        fail(c, std::string("socket: ") + std::strerror(errno));
        return;
    }
    const int one = 1;
    ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c.kind == role::slow_subscriber) {
        const int small = 16 * 1024;
        ::setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(o.port);
    if (::inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr) != 1) {
        fail(c, "bad --host (an IPv4 address is expected): " + o.host);
        return;
    }
    c.in_len = 0;
    c.out.clear();
    c.out_head = 0;
    if (o.link != transport::tcp) {
        if (uses_tls(o.link) && link_settings_.ctx == nullptr) {
            fail(c, "TLS is not prepared (prepare_transport)");
            return;
        }
        link_seed_ = link_seed_ * 6364136223846793005ull + 1442695040888963407ull;
        c.lk = std::make_unique<link>(link_settings_, link_seed_);
    }
    c.want_write = true;
    c.reading = true;
    c.st = connection::state::connecting;
    c.connect_started_ns = now_ns();
    ++handshakes_;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = &c;
    ::epoll_ctl(epfd_, EPOLL_CTL_ADD, c.fd, &ev);
    if (::connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 &&
        errno != EINPROGRESS) {
        fail(c, std::string("connect: ") + std::strerror(errno));
    }
}

void worker::set_events(connection& c) {
    if (c.fd < 0) {
        return;
    }
    epoll_event ev{};
    ev.events = (c.reading ? EPOLLIN : 0u) | (c.want_write ? EPOLLOUT : 0u);
    ev.data.ptr = &c;
    ::epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
}

void worker::mark_dirty(connection& c) {
    if (!c.dirty) {
        c.dirty = true;
        dirty_.push_back(&c);
    }
}

void worker::send(connection& c, const std::uint8_t* p, std::size_t n) {
    c.out.insert(c.out.end(), p, p + n);
    mark_dirty(c);
}

void worker::flush() {
    const std::uint64_t now = dirty_.empty() ? 0 : now_ns();
    for (connection* c : dirty_) {
        c->dirty = false;
        if (c->fd < 0 || c->st == connection::state::connecting) {
            continue;
        }
        if (c->lk) {
            flush_link(*c, now);
            continue;
        }
        const bool wanted = c->want_write;
        while (c->out_head < c->out.size()) {
            const ssize_t w = ::send(c->fd, c->out.data() + c->out_head, c->out.size() - c->out_head,
                                     MSG_NOSIGNAL);
            if (w > 0) {
                c->out_head += static_cast<std::size_t>(w);
                c->last_tx_ns = now;
                continue;
            }
            if (w < 0 && errno == EINTR) {
                continue;
            }
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                break;
            }
            fail(*c, std::string("write: ") + std::strerror(errno));
            break;
        }
        if (c->fd < 0) {
            continue;
        }
        if (c->out_head == c->out.size()) {
            c->out.clear();
            c->out_head = 0;
            c->want_write = false;
            if (c->st == connection::state::closing) {
                ::shutdown(c->fd, SHUT_WR);
            }
        } else {
            c->want_write = true;
            if (c->out_head > out_high_water) {
                c->out.erase(c->out.begin(), c->out.begin() + static_cast<std::ptrdiff_t>(c->out_head));
                c->out_head = 0;
            }
        }
        if (wanted != c->want_write) {
            set_events(*c);
        }
    }
    dirty_.clear();
}

void worker::flush_link(connection& c, std::uint64_t now) {
    link& l = *c.lk;
    const bool wanted = c.want_write;
    if (l.open() && c.out_head < c.out.size() && l.wire_pending() < wire_refill) {
        if (l.put(c.out.data() + c.out_head, c.out.size() - c.out_head) != link::status::ok) {
            const std::string why = l.error();
            fail(c, why);
            return;
        }
        c.out.clear();
        c.out_head = 0;
    }
    while (l.wire_pending() > 0) {
        const ssize_t w = ::send(c.fd, l.wire.data() + l.wire_head, l.wire_pending(), MSG_NOSIGNAL);
        if (w > 0) {
            l.sent(static_cast<std::size_t>(w));
            c.last_tx_ns = now;
            continue;
        }
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        fail(c, std::string("write: ") + std::strerror(errno));
        return;
    }
    c.want_write = l.wire_pending() > 0 || c.out_head < c.out.size();
    if (!c.want_write && c.st == connection::state::closing) {
        ::shutdown(c.fd, SHUT_WR);
    }
    if (wanted != c.want_write) {
        set_events(c);
    }
}

void worker::fail(connection& c, const std::string& why) {
    bump(totals.errors, 1);
    if (error_messages.size() < 10) {
        error_messages.push_back(c.client_id + ": " + why);
    }
    const bool was_handshaking = c.st == connection::state::connecting ||
                                 c.st == connection::state::transport ||
                                 c.st == connection::state::handshake;
    close(c);
    if (was_handshaking && handshakes_ > 0) {
        --handshakes_;
    }
    if (c.kind == role::connector) {
        restart_.push_back(&c);
    } else if (c.kind != role::slow_subscriber) {
        rs_.fatal.store(1, std::memory_order_relaxed);
    }
}

void worker::close(connection& c) {
    if (c.fd >= 0) {
        ::epoll_ctl(epfd_, EPOLL_CTL_DEL, c.fd, nullptr);
        ::close(c.fd);
        c.fd = -1;
    }
    c.lk.reset();
    c.st = connection::state::closed;
}

void worker::restart_connector(connection& c) {
    close(c);
    if (rs_.get() == phase::run) {
        start(c);
    }
}

bool worker::all_ready() const noexcept {
    for (const auto& c : conns) {
        if (c->kind == role::connector) {
            continue;
        }
        if (c->st != connection::state::ready) {
            return false;
        }
    }
    return true;
}

void worker::on_ready(connection& c) {
    const options& o = *rs_.opt;
    switch (c.kind) {
    case role::subscriber:
    case role::slow_subscriber: {
        bytes pkt;
        append_subscribe(pkt, 1, c.filters, o.qos, o.v5);
        send(c, pkt.data(), pkt.size());
        return;  // ready on SUBACK
    }
    case role::connector: {
        if (rs_.measuring.load(std::memory_order_relaxed)) {
            latency.record(now_ns() - c.connect_started_ns);
        }
        bytes pkt;
        append_simple(pkt, pt_disconnect);
        send(c, pkt.data(), pkt.size());
        c.st = connection::state::closing;
        if (handshakes_ > 0) {
            --handshakes_;
        }
        return;
    }
    default:
        c.st = connection::state::ready;
        if (handshakes_ > 0) {
            --handshakes_;
        }
        c.last_progress_ns = now_ns();
        return;
    }
}

void worker::on_writable(connection& c) {
    if (c.st == connection::state::connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            fail(c, std::string("connect: ") + std::strerror(err));
            return;
        }
        c.want_write = false;
        if (c.lk) {
            c.st = connection::state::transport;
            if (c.lk->begin() != link::status::ok) {
                const std::string why = c.lk->error();
                fail(c, why);
                return;
            }
            if (c.lk->take_opened()) {
                begin_mqtt(c);
            }
        } else {
            begin_mqtt(c);
        }
        mark_dirty(c);
        set_events(c);
        return;
    }
    mark_dirty(c);
}

void worker::begin_mqtt(connection& c) {
    c.st = connection::state::handshake;
    bytes pkt;
    const std::uint16_t ka =
        (c.kind == role::control || c.kind == role::connector) ? 0 : c.keep_alive;
    append_connect(pkt, c.client_id, rs_.opt->v5, ka);
    c.out.insert(c.out.begin(), pkt.begin(), pkt.end());
    mark_dirty(c);
    if (c.lk && c.lk->tls() && !has_tls_info) {
        tls_info = c.lk->summary();
        has_tls_info = true;
    }
}

void worker::on_eof(connection& c) {
    if (c.kind == role::connector && c.st == connection::state::closing) {
        if (rs_.measuring.load(std::memory_order_relaxed)) {
            bump(totals.connects, 1);
        }
        restart_connector(c);
        return;
    }
    std::string why = "connection closed by the broker";
    if (c.lk && !c.lk->error().empty()) {
        why = c.lk->error();
    } else if (c.lk && c.lk->tls()) {
        why += " (TLS close_notify)";
    }
    fail(c, why);
}

void worker::on_readable(connection& c) {
    std::size_t want = read_chunk;
    if (c.kind == role::slow_subscriber) {
        if (c.read_budget == 0) {
            c.reading = false;
            set_events(c);
            return;
        }
        want = std::min<std::size_t>(want, c.read_budget);
    }
    const bool tls = c.lk && c.lk->tls();
    ssize_t r = 0;
    if (tls) {
        r = ::read(c.fd, raw_.data(), want);
    } else {
        if (c.in.size() < c.in_len + want) {
            c.in.resize(c.in_len + want);
        }
        r = ::read(c.fd, c.in.data() + c.in_len, want);
    }
    if (r == 0) {
        on_eof(c);
        return;
    }
    if (r < 0) {
        if (errno == EAGAIN || errno == EINTR) {
            return;
        }
        if (c.kind == role::connector && c.st == connection::state::closing) {
            if (rs_.measuring.load(std::memory_order_relaxed)) {
                bump(totals.connects, 1);
            }
            restart_connector(c);
            return;
        }
        fail(c, std::string("read: ") + std::strerror(errno));
        return;
    }
    if (c.kind == role::slow_subscriber) {
        c.read_budget -= static_cast<std::uint64_t>(r);
    }
    // Every message of this read arrived by now: one clock read serves them all (per message,
    // the clock was a quarter of the generator's time, and later messages would have been
    // charged the parsing of earlier ones).
    read_ns_ = now_ns();
    bool eof = false;
    if (c.lk) {
        link& l = *c.lk;
        const auto n = static_cast<std::size_t>(r);
        const link::status s =
            tls ? l.feed_tls(raw_.data(), n, c.in, c.in_len) : l.feed_plain(c.in, c.in_len, n);
        if (l.wire_pending() > 0) {
            mark_dirty(c);
        }
        if (s == link::status::error) {
            if (c.kind == role::connector && c.st == connection::state::closing) {
                on_eof(c);
                return;
            }
            const std::string why = l.error();
            fail(c, why);
            return;
        }
        eof = s == link::status::closed;
        if (l.take_opened()) {
            begin_mqtt(c);
        }
        if (c.st == connection::state::transport) {
            if (eof) {
                on_eof(c);
            }
            return;
        }
    } else {
        c.in_len += static_cast<std::size_t>(r);
    }
    std::size_t off = 0;
    while (off < c.in_len) {
        std::uint32_t rem = 0;
        std::size_t header = 0;
        const int h = read_fixed_header(c.in.data() + off, c.in_len - off, rem, header);
        if (h < 0) {
            fail(c, "malformed remaining length from the broker");
            return;
        }
        if (h == 0 || c.in_len - off < header + rem) {
            break;
        }
        if (!handle_packet(c, c.in.data() + off, header, rem)) {
            return;
        }
        off += header + rem;
    }
    if (off > 0) {
        std::memmove(c.in.data(), c.in.data() + off, c.in_len - off);
        c.in_len -= off;
    }
    if (eof && c.fd >= 0) {
        on_eof(c);
    }
}

bool worker::handle_packet(connection& c, const std::uint8_t* p, std::size_t header, std::uint32_t rem) {
    const std::uint8_t type = p[0] >> 4;
    const std::uint8_t* body = p + header;
    switch (type) {
    case pt_publish:
        on_publish(c, p, header, rem);
        return c.fd >= 0;
    case pt_connack:
        if (rem < 2 || body[1] != 0) {
            fail(c, "CONNACK refused, code " + std::to_string(rem >= 2 ? body[1] : 255));
            return false;
        }
        if (rs_.opt->v5 && rem > 2) {
            read_connack_properties(body + 2, rem - 2, c.receive_max);
        }
        on_ready(c);
        return c.fd >= 0;
    case pt_suback: {
        std::size_t i = 2;
        if (rs_.opt->v5 && rem > 2) {
            std::uint32_t plen = 0;
            i += skip_varint(body + 2, rem - 2, plen) + plen;
        }
        for (; i < rem; ++i) {
            if (body[i] >= 0x80) {
                fail(c, "SUBSCRIBE refused, code " + std::to_string(body[i]));
                return false;
            }
        }
        if (c.st == connection::state::handshake) {
            c.st = connection::state::ready;
            if (handshakes_ > 0) {
                --handshakes_;
            }
        } else if (c.pending > 0) {
            --c.pending;
        }
        return true;
    }
    case pt_unsuback:
    case pt_pingresp:
        if (c.pending > 0 && c.kind == role::control) {
            --c.pending;
        }
        return true;
    case pt_puback:
    case pt_pubcomp:
        if (rem >= 2 && free_pid(c, read_u16(body))) {
            if (c.unacked > 0) {
                --c.unacked;
            }
            if (c.kind == role::control && c.pending > 0) {
                --c.pending;
            }
        }
        if (rs_.opt->v5 && rem >= 3 && body[2] >= 0x80) {
            fail(c, "publish refused, reason " + std::to_string(body[2]));
            return false;
        }
        return true;
    case pt_pubrec: {
        if (rs_.opt->v5 && rem >= 3 && body[2] >= 0x80) {
            fail(c, "publish refused, reason " + std::to_string(body[2]));
            return false;
        }
        std::uint8_t ack[4];
        bytes tmp;
        append_ack(tmp, pt_pubrel, read_u16(body));
        std::memcpy(ack, tmp.data(), 4);
        send(c, ack, 4);
        return true;
    }
    case pt_pubrel: {
        bytes tmp;
        append_ack(tmp, pt_pubcomp, read_u16(body));
        send(c, tmp.data(), tmp.size());
        return true;
    }
    case pt_disconnect:
        fail(c, "DISCONNECT from the broker, reason " + std::to_string(rem >= 1 ? body[0] : 0));
        return false;
    default:
        fail(c, "unexpected packet type " + std::to_string(type));
        return false;
    }
}

void worker::on_publish(connection& c, const std::uint8_t* p, std::size_t header, std::uint32_t rem) {
    const std::uint8_t flags = p[0] & 0x0f;
    const int qos = (flags >> 1) & 3;
    const std::uint8_t* body = p + header;
    if (rem < 2) {
        fail(c, "malformed PUBLISH");
        return;
    }
    std::size_t pos = 2 + read_u16(body);
    std::uint16_t pid = 0;
    if (qos > 0) {
        if (pos + 2 > rem) {
            fail(c, "malformed PUBLISH");
            return;
        }
        pid = read_u16(body + pos);
        pos += 2;
    }
    if (rs_.opt->v5) {
        std::uint32_t plen = 0;
        const std::size_t s = skip_varint(body + pos, rem - pos, plen);
        pos += s + plen;
    }
    if (pos > rem) {
        fail(c, "malformed PUBLISH");
        return;
    }
    if (qos == 1) {
        std::uint8_t ack[4] = {pt_puback << 4, 2, static_cast<std::uint8_t>(pid >> 8),
                               static_cast<std::uint8_t>(pid & 0xff)};
        c.out.insert(c.out.end(), ack, ack + 4);
        mark_dirty(c);
    } else if (qos == 2) {
        std::uint8_t ack[4] = {pt_pubrec << 4, 2, static_cast<std::uint8_t>(pid >> 8),
                               static_cast<std::uint8_t>(pid & 0xff)};
        c.out.insert(c.out.end(), ack, ack + 4);
        mark_dirty(c);
    }
    const std::uint64_t now = read_ns_;
    ++c.received;
    c.last_receive_ns = now;
    bump(totals.received_all, 1);
    if (flags & 1) {
        ++c.retained_received;
    }
    if (c.kind == role::control || rem - pos < stamp_size) {
        return;
    }
    stamp s;
    std::memcpy(&s.sent_ns, body + pos, 8);
    std::memcpy(&s.publisher, body + pos + 8, 4);
    std::memcpy(&s.seq, body + pos + 12, 4);
    if (c.kind == role::subscriber) {
        if (rs_.measuring.load(std::memory_order_relaxed) && now >= s.sent_ns) {
            latency.record(now - s.sent_ns);
        }
        bump(totals.received, 1);
        if (s.publisher < rs_.publisher_count) {
            rs_.delivered[s.publisher].fetch_add(1, std::memory_order_relaxed);
        }
    }
    if (s.publisher != c.last_pub) {
        c.last_pub = s.publisher;
        c.last_check = &(*c.checks)[s.publisher];
    }
    c.last_check->on_receive(s.seq);
}

void worker::publish_due(std::uint64_t now) {
    if (rs_.get() != phase::run) {
        return;
    }
    const options& o = *rs_.opt;
    for (connection* cp : publishers_) {
        connection& c = *cp;
        if (c.st != connection::state::ready || unsent(c) > out_high_water) {
            continue;
        }
        std::uint64_t allowed = 0;
        if (o.rate > 0) {
            const double target =
                static_cast<double>(now - rs_.run_start_ns) * rs_.rate_per_publisher / 1e9;
            const auto t = static_cast<std::uint64_t>(target);
            allowed = t > c.sent ? t - c.sent : 0;
        } else {
            const std::uint64_t del =
                rs_.delivered[c.pub].load(std::memory_order_relaxed) / rs_.deliveries_per_message;
            const std::uint64_t done = c.written_off + del;
            const std::uint64_t inflight = c.sent > done ? c.sent - done : 0;
            allowed = o.window > inflight ? o.window - inflight : 0;
            if (del != c.last_delivered) {
                c.last_delivered = del;
                c.last_progress_ns = now;
            } else if (inflight > 0 && now - c.last_progress_ns > 1000 * ms) {
                c.written_off = c.sent > del ? c.sent - del : 0;
                c.last_progress_ns = now;
                ++stalls;
            }
        }
        if (o.qos > 0) {
            std::uint32_t cap = std::min<std::uint32_t>(c.receive_max, 65000);
            if (o.rate <= 0) {
                cap = std::min(cap, o.window);
            }
            const std::uint64_t room = cap > c.unacked ? cap - c.unacked : 0;
            allowed = std::min(allowed, room);
        }
        const std::uint64_t per_turn =
            std::max<std::uint64_t>(1, std::min<std::uint64_t>(1024, out_high_water / c.tmpl.data.size()));
        allowed = std::min(allowed, per_turn);
        if (allowed == 0) {
            continue;
        }
        c.out.reserve(c.out.size() + allowed * c.tmpl.data.size());
        for (std::uint64_t k = 0; k < allowed; ++k) {
            const std::uint16_t pid = o.qos > 0 ? alloc_pid(c) : 0;
            const stamp s{now, c.pub, static_cast<std::uint32_t>(c.sent)};
            c.tmpl.append_to(c.out, pid, s);
            ++c.sent;
        }
        if (o.qos > 0) {
            c.unacked += static_cast<std::uint32_t>(allowed);
        }
        bump(totals.sent, allowed);
        mark_dirty(c);
    }
}

void worker::tick(std::uint64_t now) {
    const std::uint64_t dt = now - last_tick_ns_;
    if (last_tick_ns_ != 0 && dt < 10 * ms) {
        return;
    }
    const bool first = last_tick_ns_ == 0;
    last_tick_ns_ = now;
    for (connection* c : slow_) {
        if (c->fd < 0 || first) {
            continue;
        }
        const std::uint64_t add = rs_.opt->slow_read_rate * dt / (1000 * ms);
        c->read_budget = std::min<std::uint64_t>(c->read_budget + add, rs_.opt->slow_read_rate / 10 + 1);
        if (!c->reading && c->read_budget > 0) {
            c->reading = true;
            set_events(*c);
        }
    }
    // Keep-alive: a ping once half the keep alive has passed without sending anything.
    if (now - last_ping_scan_ns_ < 1000 * ms) {
        return;
    }
    last_ping_scan_ns_ = now;
    for (auto& c : conns) {
        if (c->fd < 0 || c->st != connection::state::ready || c->kind == role::control ||
            c->keep_alive == 0) {
            continue;
        }
        if (c->last_tx_ns == 0) {
            c->last_tx_ns = now;
        }
        if (now - c->last_tx_ns > static_cast<std::uint64_t>(c->keep_alive) * 500 * ms) {
            bytes pkt;
            append_simple(pkt, pt_pingreq);
            send(*c, pkt.data(), pkt.size());
            c->last_tx_ns = now;
        }
    }
}

void worker::poll(int timeout_ms) {
    // Start queued connections, a bounded number of handshakes at a time.
    const bool running = rs_.get() == phase::run;
    while (next_to_start_ < conns.size() && handshakes_ < max_handshakes_) {
        connection& c = *conns[next_to_start_];
        if (c.kind == role::connector && !running) {
            break;
        }
        ++next_to_start_;
        if (c.st == connection::state::idle) {
            start(c);
        }
    }
    if (running && !restart_.empty()) {
        std::vector<connection*> again;
        again.swap(restart_);
        for (connection* c : again) {
            c->st = connection::state::idle;
            start(*c);
        }
    }
    epoll_event events[256];
    const int n = ::epoll_wait(epfd_, events, 256, timeout_ms);
    for (int i = 0; i < n; ++i) {
        auto* c = static_cast<connection*>(events[i].data.ptr);
        if (c->fd < 0) {
            continue;
        }
        if (events[i].events & (EPOLLOUT | EPOLLERR)) {
            on_writable(*c);
            if (c->fd < 0) {
                continue;
            }
        }
        if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            if (c->st == connection::state::connecting) {
                on_writable(*c);
            } else {
                on_readable(*c);
            }
        }
    }
    const std::uint64_t now = now_ns();
    publish_due(now);
    tick(now);
    flush();
}

void worker::run() {
    bool counted = false;
    while (rs_.get() == phase::setup) {
        poll(5);
        if (!counted && all_ready()) {
            counted = true;
            rs_.ready_workers.fetch_add(1, std::memory_order_release);
        }
    }
    const int timeout = rs_.opt->rate > 0 ? 0 : 1;
    while (rs_.get() != phase::stop) {
        poll(timeout);
    }
    disconnect_all();
}

void worker::disconnect_all() {
    for (auto& c : conns) {
        if (c->fd >= 0 && c->st == connection::state::ready) {
            bytes pkt;
            append_simple(pkt, pt_disconnect);
            send(*c, pkt.data(), pkt.size());
        }
    }
    flush();
    for (auto& c : conns) {
        close(*c);
    }
}

}  // namespace iothub::bench
