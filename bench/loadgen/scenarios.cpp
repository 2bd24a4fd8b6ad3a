#include "scenarios.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <thread>

#include "engine.hpp"
#include "proc_stats.hpp"

namespace iothub::bench {
namespace {

constexpr std::uint64_t ms = 1000000;

std::string subst(const std::string& pattern, std::uint64_t i) {
    std::string out;
    out.reserve(pattern.size() + 8);
    for (std::size_t k = 0; k < pattern.size(); ++k) {
        if (pattern[k] == '%' && k + 1 < pattern.size() && pattern[k + 1] == 'i') {
            out += std::to_string(i);
            ++k;
        } else {
            out += pattern[k];
        }
    }
    return out;
}

std::string client_prefix() { return "bench-" + std::to_string(::getpid()) + "-"; }

bool progress_enabled(const options& o) { return o.progress && ::isatty(2) != 0; }

void progress_line(const options& o, const char* what, double t, double total, double sent_rate,
                   double recv_rate) {
    if (!progress_enabled(o)) {
        return;
    }
    std::fprintf(stderr, "\r[%s] %s %5.1f/%.0f s  sent %10.0f/s  received %10.0f/s   ",
                 o.scenario_name.c_str(), what, t, total, sent_rate, recv_rate);
    std::fflush(stderr);
}

void progress_done(const options& o) {
    if (progress_enabled(o)) {
        std::fprintf(stderr, "\r%100s\r", "");
    }
}

// Turns the loop of a worker owned by this thread until pred holds; false on timeout or a
// fatal error.
bool pump(worker& w, run_state& rs, const std::function<bool()>& pred, double timeout_s) {
    const std::uint64_t deadline = now_ns() + static_cast<std::uint64_t>(timeout_s * 1e9);
    while (!pred()) {
        if (rs.fatal.load() != 0 || now_ns() > deadline) {
            return false;
        }
        w.poll(1);
    }
    return true;
}

void pump_for(worker& w, double seconds) {
    const std::uint64_t until = now_ns() + static_cast<std::uint64_t>(seconds * 1e9);
    while (now_ns() < until) {
        w.poll(1);
    }
}

void collect_errors(const worker& w, result& r) {
    if (w.has_tls_info && r.text.empty()) {
        r.set_text("tls_version", w.tls_info.version);
        r.set_text("tls_cipher", w.tls_info.cipher);
        r.set_text("tls_group", w.tls_info.group);
        r.set_text("tls_server_key", w.tls_info.server_key);
    }
    r.errors += w.totals.errors.load();
    for (const auto& e : w.error_messages) {
        if (r.error_messages.size() < 10) {
            r.error_messages.push_back(e);
        }
    }
}

void note_broker(const options& o, result& r, const proc_sample& before, const proc_sample& after) {
    if (!before.ok || !after.ok) {
        return;
    }
    r.broker = true;
    r.cpu_user_s = after.user_s - before.user_s;
    r.cpu_sys_s = after.sys_s - before.sys_s;
    r.rss_before = before.rss_bytes;
    r.rss_after = after.rss_bytes;
    if (after.rss_bytes > r.rss_max) {
        r.rss_max = after.rss_bytes;
    }
    (void)o;
}

// One client makes o.subscriptions subscriptions, 64 SUBSCRIBE packets in flight; it stays
// connected (without keep alive) while the worker lives.
bool make_subscriptions(const options& o, worker& w, run_state& rs, result& r) {
    connection& c = w.add(role::control, client_prefix() + "subs");
    if (!pump(w, rs, [&] { return c.st == connection::state::ready; }, 30)) {
        return false;
    }
    const proc_sample before = read_proc(o.broker_pid);
    const std::uint64_t t0 = now_ns();
    std::uint32_t next = 0;
    const std::size_t patterns = o.subscription_filters.size();
    const bool ok = pump(
        w, rs,
        [&] {
            while (c.pending < 64 && next < o.subscriptions) {
                bytes pkt;
                const std::vector<std::string> f{subst(o.subscription_filters[next % patterns], next)};
                append_subscribe(pkt, static_cast<std::uint16_t>(next % 65535 + 1), f, 0, o.v5);
                w.send(c, pkt.data(), pkt.size());
                ++c.pending;
                ++next;
            }
            return next == o.subscriptions && c.pending == 0;
        },
        600);
    const double secs = static_cast<double>(now_ns() - t0) / 1e9;
    if (!ok) {
        r.error_messages.push_back("subscriptions: timed out or failed after " + std::to_string(next));
        ++r.errors;
        return false;
    }
    pump_for(w, 0.5);
    const proc_sample after = read_proc(o.broker_pid);
    r.set("subscriptions", o.subscriptions);
    r.set("subscribe_s", secs);
    r.set("subscribes_per_s", o.subscriptions / secs);
    if (before.ok && after.ok) {
        r.set("bytes_per_subscription",
              (static_cast<double>(after.rss_bytes) - static_cast<double>(before.rss_bytes)) /
                  o.subscriptions);
    }
    return true;
}

struct layout {
    std::uint32_t publishers = 0;
    std::uint32_t per_message = 1;
};

// pairs, fanout, fanin, shared, slow: publishers and subscribers over o.threads workers.
void run_traffic(const options& o, result& r) {
    run_state rs;
    rs.opt = &o;
    const int nthreads = o.threads;
    std::vector<std::unique_ptr<worker>> workers;
    for (int t = 0; t < nthreads; ++t) {
        workers.push_back(std::make_unique<worker>(rs, t));
    }
    const std::string prefix = client_prefix();
    const int n = o.clients;
    auto add_publisher = [&](worker& w, std::uint32_t index, const std::string& topic) {
        connection& c = w.add(role::publisher, prefix + "p" + std::to_string(index));
        c.pub = index;
        c.tmpl.build(topic, o.qos, false, o.v5, o.payload);
        return &c;
    };
    auto add_subscriber = [&](worker& w, role kind, const std::string& id, const std::string& filter) {
        connection& c = w.add(kind, id);
        c.filters = {filter};
        return &c;
    };
    layout lay;
    switch (o.kind) {
    case scenario::pairs:
        lay.publishers = static_cast<std::uint32_t>(n);
        for (int i = 0; i < n; ++i) {
            worker& w = *workers[static_cast<std::size_t>(i % nthreads)];
            auto* s = add_subscriber(w, role::subscriber, prefix + "s" + std::to_string(i), subst(o.sub_topic, i));
            s->own_checks[static_cast<std::uint32_t>(i)];
            add_publisher(w, static_cast<std::uint32_t>(i), subst(o.topic, i));
        }
        break;
    case scenario::fanout:
    case scenario::slow:
        lay.publishers = 1;
        lay.per_message = static_cast<std::uint32_t>(n);
        for (int i = 0; i < n; ++i) {
            worker& w = *workers[static_cast<std::size_t>(i % nthreads)];
            auto* s = add_subscriber(w, role::subscriber, prefix + "s" + std::to_string(i), subst(o.sub_topic, 0));
            s->own_checks[0];
        }
        if (o.kind == scenario::slow) {
            auto* s = add_subscriber(*workers[0], role::slow_subscriber, prefix + "slow", subst(o.sub_topic, 0));
            s->own_checks[0];
        }
        add_publisher(*workers[0], 0, subst(o.topic, 0));
        break;
    case scenario::fanin: {
        lay.publishers = static_cast<std::uint32_t>(n);
        auto* s = add_subscriber(*workers[0], role::subscriber, prefix + "s0", subst(o.sub_topic, 0));
        for (int i = 0; i < n; ++i) {
            s->own_checks[static_cast<std::uint32_t>(i)];
            add_publisher(*workers[static_cast<std::size_t>(i % nthreads)], static_cast<std::uint32_t>(i),
                          subst(o.topic, i));
        }
        break;
    }
    case scenario::shared:
        lay.publishers = static_cast<std::uint32_t>(o.publishers);
        for (int i = 0; i < n; ++i) {
            auto* s = add_subscriber(*workers[0], role::subscriber, prefix + "s" + std::to_string(i), subst(o.sub_topic, 0));
            s->checks = &workers[0]->shared_checks;
        }
        for (int i = 0; i < o.publishers; ++i) {
            workers[0]->shared_checks[static_cast<std::uint32_t>(i)];
            add_publisher(*workers[static_cast<std::size_t>(i % nthreads)], static_cast<std::uint32_t>(i),
                          subst(o.topic, i));
        }
        break;
    default: break;
    }
    rs.publisher_count = lay.publishers;
    rs.deliveries_per_message = lay.per_message;
    rs.delivered = std::make_unique<std::atomic<std::uint64_t>[]>(lay.publishers);
    rs.rate_per_publisher = o.rate > 0 ? o.rate / lay.publishers : 0;

    std::vector<std::thread> threads;
    for (auto& w : workers) {
        threads.emplace_back([&w] { w->run(); });
    }
    auto sum = [&](auto member) {
        std::uint64_t s = 0;
        for (auto& w : workers) {
            s += (w->totals.*member).load(std::memory_order_relaxed);
        }
        return s;
    };
    const std::uint64_t setup_deadline = now_ns() + 120 * 1000 * ms;
    while (rs.ready_workers.load() < nthreads && rs.fatal.load() == 0 && now_ns() < setup_deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const bool ready = rs.ready_workers.load() == nthreads && rs.fatal.load() == 0;
    if (!ready && r.error_messages.empty()) {
        r.error_messages.push_back("setup failed: not every connection was ready");
        ++r.errors;
    }
    proc_sample before;
    proc_sample after;
    if (ready) {
        rs.run_start_ns = now_ns();
        rs.current.store(static_cast<int>(phase::run), std::memory_order_release);
        const std::uint64_t t_run = now_ns();
        while (now_ns() - t_run < static_cast<std::uint64_t>(o.warmup * 1e9) && rs.fatal.load() == 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            progress_line(o, "warmup", static_cast<double>(now_ns() - t_run) / 1e9, o.warmup, 0, 0);
        }
        before = read_proc(o.broker_pid);
        const std::uint64_t s0 = sum(&worker_totals::sent);
        const std::uint64_t r0 = sum(&worker_totals::received);
        const std::uint64_t t0 = now_ns();
        rs.measuring.store(true);
        std::uint64_t last_s = s0;
        std::uint64_t last_r = r0;
        std::uint64_t last_t = t0;
        while (now_ns() - t0 < static_cast<std::uint64_t>(o.duration * 1e9) && rs.fatal.load() == 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            const proc_sample p = read_proc(o.broker_pid);
            if (p.ok && p.rss_bytes > r.rss_max) {
                r.rss_max = p.rss_bytes;
            }
            const std::uint64_t t = now_ns();
            if (t - last_t >= 1000 * ms) {
                const std::uint64_t s = sum(&worker_totals::sent);
                const std::uint64_t rc = sum(&worker_totals::received);
                const double dt = static_cast<double>(t - last_t) / 1e9;
                progress_line(o, "run", static_cast<double>(t - t0) / 1e9, o.duration,
                              static_cast<double>(s - last_s) / dt, static_cast<double>(rc - last_r) / dt);
                last_s = s;
                last_r = rc;
                last_t = t;
            }
        }
        rs.measuring.store(false);
        const std::uint64_t t1 = now_ns();
        r.sent = sum(&worker_totals::sent) - s0;
        r.received = sum(&worker_totals::received) - r0;
        r.measured_s = static_cast<double>(t1 - t0) / 1e9;
        after = read_proc(o.broker_pid);
        rs.current.store(static_cast<int>(phase::drain), std::memory_order_release);
        const std::uint64_t drain_until = now_ns() + static_cast<std::uint64_t>(o.drain * 1e9);
        // Let the publishers notice the phase change before reading their totals.
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        const std::uint64_t expected = sum(&worker_totals::sent) * lay.per_message;
        while (now_ns() < drain_until && sum(&worker_totals::received) < expected && rs.fatal.load() == 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        progress_done(o);
    }
    rs.current.store(static_cast<int>(phase::stop), std::memory_order_release);
    for (auto& t : threads) {
        t.join();
    }
    note_broker(o, r, before, after);
    r.has_traffic = ready;
    r.total_sent = sum(&worker_totals::sent);
    r.total_received = sum(&worker_totals::received);
    std::vector<std::uint64_t> sent_by(lay.publishers, 0);
    for (auto& w : workers) {
        r.latency.merge(w->latency);
        r.stalls += w->stalls;
        collect_errors(*w, r);
        for (auto& c : w->conns) {
            if (c->kind == role::publisher) {
                sent_by[c->pub] = c->sent;
            }
        }
    }
    r.integrity_checked = ready;
    for (auto& w : workers) {
        for (auto& c : w->conns) {
            if ((c->kind != role::subscriber && c->kind != role::slow_subscriber) ||
                c->checks != &c->own_checks) {
                continue;
            }
            integrity& into = c->kind == role::slow_subscriber ? r.slow_checked : r.checked;
            for (auto& [pub, check] : c->own_checks) {
                into.add(check.result(pub < sent_by.size() ? sent_by[pub] : 0));
            }
            if (c->kind == role::slow_subscriber) {
                r.set("slow_received", static_cast<double>(c->received));
            }
        }
    }
    for (auto& [pub, check] : workers[0]->shared_checks) {
        r.checked.add(check.result(pub < sent_by.size() ? sent_by[pub] : 0));
    }
    const bool shared = o.kind == scenario::shared;
    r.integrity_ok = r.checked.duplicated == 0 && (shared || r.checked.reordered == 0) &&
                     (o.qos == 0 || r.checked.lost == 0);
    if (o.qos == 0 && r.checked.lost > 0) {
        r.integrity_note = "QoS 0 loss is reported, not an error";
    }
    if (shared) {
        r.integrity_note += std::string(r.integrity_note.empty() ? "" : "; ") +
                            "reordered counts arrivals across group members (not an error)";
    }
    if (o.kind == scenario::slow) {
        r.set("slow_lost", static_cast<double>(r.slow_checked.lost));
        r.set("slow_duplicated", static_cast<double>(r.slow_checked.duplicated));
        r.set("slow_reordered", static_cast<double>(r.slow_checked.reordered));
        if (r.slow_checked.duplicated > 0 || r.slow_checked.reordered > 0) {
            r.integrity_ok = false;
            r.integrity_note += std::string(r.integrity_note.empty() ? "" : "; ") +
                                "slow subscriber got duplicated or reordered messages";
        }
        if (r.sent > 0) {
            r.set("fast_received_ratio",
                  static_cast<double>(r.received) / (static_cast<double>(r.sent) * lay.per_message));
        }
    }
    if (r.errors > 0 && o.kind == scenario::slow) {
        r.integrity_note += std::string(r.integrity_note.empty() ? "" : "; ") +
                            "connection errors (the slow subscriber may have been disconnected)";
    }
}

void run_idle(const options& o, result& r) {
    run_state rs;
    rs.opt = &o;
    worker w(rs, 0);
    const proc_sample before = read_proc(o.broker_pid);
    const std::string prefix = client_prefix();
    for (int i = 0; i < o.clients; ++i) {
        w.add(role::idle, prefix + "i" + std::to_string(i));
    }
    const std::uint64_t t0 = now_ns();
    const bool ok = pump(w, rs, [&] { return w.all_ready(); }, 300);
    const double secs = static_cast<double>(now_ns() - t0) / 1e9;
    if (ok) {
        pump_for(w, 1.0);
    }
    const proc_sample after = read_proc(o.broker_pid);
    note_broker(o, r, before, after);
    collect_errors(w, r);
    if (!ok) {
        r.error_messages.push_back("not every connection was accepted");
        ++r.errors;
    }
    r.measured_s = secs;
    r.set("connections", o.clients);
    r.set("connect_all_s", secs);
    if (before.ok && after.ok) {
        r.set("bytes_per_connection",
              (static_cast<double>(after.rss_bytes) - static_cast<double>(before.rss_bytes)) / o.clients);
    }
    w.disconnect_all();
}

void run_connect(const options& o, result& r) {
    run_state rs;
    rs.opt = &o;
    worker w(rs, 0);
    const std::string prefix = client_prefix();
    for (int i = 0; i < o.clients; ++i) {
        w.add(role::connector, prefix + "c" + std::to_string(i));
    }
    rs.current.store(static_cast<int>(phase::run));
    pump_for(w, o.warmup);
    const proc_sample before = read_proc(o.broker_pid);
    const double self0 = self_cpu_s();
    rs.measuring.store(true);
    const std::uint64_t t0 = now_ns();
    pump_for(w, o.duration);
    rs.measuring.store(false);
    const std::uint64_t t1 = now_ns();
    const double self1 = self_cpu_s();
    const proc_sample after = read_proc(o.broker_pid);
    rs.current.store(static_cast<int>(phase::stop));
    note_broker(o, r, before, after);
    r.measured_s = static_cast<double>(t1 - t0) / 1e9;
    const auto connects = w.totals.connects.load();
    r.latency_name = "connect";
    r.latency.merge(w.latency);
    collect_errors(w, r);
    // handshake: the same cycle, named after what it is there to measure.
    const bool hs = o.scenario_name == "handshake";
    r.set(hs ? "handshakes" : "connections", static_cast<double>(connects));
    r.set(hs ? "handshakes_per_s" : "connects_per_s", static_cast<double>(connects) / r.measured_s);
    if (r.broker && connects > 0) {
        r.set(hs ? "broker_cpu_us_per_handshake" : "broker_cpu_us_per_connect",
              (r.cpu_user_s + r.cpu_sys_s) * 1e6 / static_cast<double>(connects));
    }
    // The generator's own share: near measured_s of CPU means the rate is the generator's limit.
    r.set("generator_cpu_s", self1 - self0);
    if (connects > 0) {
        r.set(hs ? "generator_cpu_us_per_handshake" : "generator_cpu_us_per_connect",
              (self1 - self0) * 1e6 / static_cast<double>(connects));
    }
    w.disconnect_all();
}

void run_retained(const options& o, result& r) {
    run_state rs;
    rs.opt = &o;
    worker w(rs, 0);
    const std::string prefix = client_prefix();
    connection& st = w.add(role::control, prefix + "store");
    if (!pump(w, rs, [&] { return st.st == connection::state::ready; }, 30)) {
        collect_errors(w, r);
        return;
    }
    const proc_sample before = read_proc(o.broker_pid);
    const std::uint32_t n = o.retained;
    std::uint32_t next = 0;
    const std::uint32_t window = std::min<std::uint32_t>(o.window, std::min<std::uint32_t>(st.receive_max, 65000));
    publish_template t;
    const std::uint64_t t0 = now_ns();
    bool ok = pump(
        w, rs,
        [&] {
            while (next < n && (o.qos == 0 || st.unacked < window) && unsent(st) < (1u << 20)) {
                t.build(subst(o.topic, next), o.qos, true, o.v5, o.payload);
                const std::uint16_t pid = o.qos > 0 ? alloc_pid(st) : 0;
                t.append_to(st.out, pid, stamp{now_ns(), 0, next});
                w.queue(st);
                if (o.qos > 0) {
                    ++st.unacked;
                }
                ++next;
                if (next == n && o.qos == 0) {
                    bytes ping;
                    append_simple(ping, pt_pingreq);
                    w.send(st, ping.data(), ping.size());
                    st.pending = 1;
                }
            }
            return next == n && st.unacked == 0 && st.pending == 0;
        },
        600);
    const double store_s = static_cast<double>(now_ns() - t0) / 1e9;
    if (!ok) {
        collect_errors(w, r);
        r.error_messages.push_back("retained: storing timed out after " + std::to_string(next));
        ++r.errors;
        return;
    }
    pump_for(w, 0.3);
    const proc_sample stored = read_proc(o.broker_pid);
    r.set("retained", n);
    r.set("store_s", store_s);
    r.set("stores_per_s", n / store_s);
    if (before.ok && stored.ok) {
        r.set("bytes_per_retained",
              (static_cast<double>(stored.rss_bytes) - static_cast<double>(before.rss_bytes)) / n);
    }

    // All of them through one wildcard subscription.
    std::string filter = o.sub_topic;
    if (filter == o.topic) {
        const auto at = filter.find("%i");
        filter = at == std::string::npos ? filter : filter.substr(0, at) + "#";
    }
    connection& rd = w.add(role::control, prefix + "reader");
    if (!pump(w, rs, [&] { return rd.st == connection::state::ready; }, 30)) {
        collect_errors(w, r);
        return;
    }
    {
        bytes pkt;
        append_subscribe(pkt, 1, {filter}, 0, o.v5);
        w.send(rd, pkt.data(), pkt.size());
    }
    const std::uint64_t r0 = now_ns();
    rd.last_receive_ns = r0;
    pump(
        w, rs,
        [&] { return rd.retained_received >= n || now_ns() - rd.last_receive_ns > 5000 * ms; }, 300);
    const double retrieve_s = static_cast<double>(rd.last_receive_ns - r0) / 1e9;
    r.set("retrieved", static_cast<double>(rd.retained_received));
    r.set("retrieve_s", retrieve_s);
    if (rd.retained_received < n) {
        r.error_messages.push_back("retained: only " + std::to_string(rd.retained_received) + " of " +
                                   std::to_string(n) + " delivered to " + filter);
        ++r.errors;
    }

    // Exact-topic lookups: subscribe, wait for the retained message, unsubscribe.
    connection& lk = w.add(role::control, prefix + "lookup");
    if (!pump(w, rs, [&] { return lk.st == connection::state::ready; }, 30)) {
        collect_errors(w, r);
        return;
    }
    std::uint64_t seed = 0x9e3779b97f4a7c15ull;
    std::uint64_t missing = 0;
    r.latency_name = "lookup";
    for (std::uint32_t k = 0; k < o.lookups; ++k) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        const std::uint64_t idx = (seed >> 33) % n;
        const std::string topic = subst(o.topic, idx);
        bytes pkt;
        append_subscribe(pkt, 1, {topic}, 0, o.v5);
        const std::uint64_t before_count = lk.retained_received;
        const std::uint64_t s0 = now_ns();
        w.send(lk, pkt.data(), pkt.size());
        w.flush();
        if (pump(w, rs, [&] { return lk.retained_received > before_count; }, 2)) {
            r.latency.record(lk.last_receive_ns - s0);
        } else {
            ++missing;
        }
        pkt.clear();
        append_unsubscribe(pkt, 2, topic, o.v5);
        lk.pending = 1;
        w.send(lk, pkt.data(), pkt.size());
        if (!pump(w, rs, [&] { return lk.pending == 0; }, 5)) {
            break;
        }
    }
    r.set("lookups_missing", static_cast<double>(missing));
    const proc_sample after = read_proc(o.broker_pid);
    note_broker(o, r, before, after);
    collect_errors(w, r);
    w.disconnect_all();
}

}  // namespace

result run_scenario(const options& o) {
    result r;
    if (const std::string err = prepare_transport(o); !err.empty()) {
        r.errors = 1;
        r.error_messages.push_back(err);
        return r;
    }
    switch (o.kind) {
    case scenario::idle: run_idle(o, r); break;
    case scenario::connect: run_connect(o, r); break;
    case scenario::retained: run_retained(o, r); break;
    case scenario::subscriptions: {
        run_state rs;
        rs.opt = &o;
        worker w(rs, 0);
        if (!make_subscriptions(o, w, rs, r)) {
            collect_errors(w, r);
            break;
        }
        if (o.then_pairs) {
            options p = o;
            p.kind = scenario::pairs;
            p.topic = o.topic;
            run_traffic(p, r);
        }
        collect_errors(w, r);
        w.disconnect_all();
        break;
    }
    default:
        if (o.subscriptions > 0) {
            run_state rs;
            rs.opt = &o;
            worker w(rs, 0);
            if (make_subscriptions(o, w, rs, r)) {
                run_traffic(o, r);
            }
            collect_errors(w, r);
            w.disconnect_all();
        } else {
            run_traffic(o, r);
        }
        break;
    }
    return r;
}

}  // namespace iothub::bench
