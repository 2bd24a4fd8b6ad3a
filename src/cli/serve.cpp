#include "cli/serve.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "api/keys.hpp"
#include "api/server.hpp"
#include "broker/broker.hpp"
#include "broker/worker.hpp"
#include "cli/persistence.hpp"
#include "hub/access.hpp"
#include "hub/registry.hpp"
#include "net/server.hpp"
#include "pki/crl.hpp"
#include "pki/pki.hpp"
#include "store/registry_store.hpp"
#include "store/sqlite_store.hpp"

namespace iothub::cli {

namespace {

constexpr const char* clean_stop_marker = "clean-stop";

std::uint64_t wall_clock_ms() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

spdlog::level::level_enum spd_level(logging_level l) {
    switch (l) {
    case logging_level::trace: return spdlog::level::trace;
    case logging_level::debug: return spdlog::level::debug;
    case logging_level::info: return spdlog::level::info;
    case logging_level::warning: return spdlog::level::warn;
    case logging_level::error: return spdlog::level::err;
    case logging_level::critical: return spdlog::level::critical;
    case logging_level::off: return spdlog::level::off;
    }
    return spdlog::level::info;
}

broker::limits to_broker_limits(const config& cfg) {
    broker::limits l;
    const auto& c = cfg.limits;
    l.max_packet_size = c.max_packet_size;
    l.max_queued_messages = c.max_queued_messages;
    l.max_queued_bytes = c.max_queued_bytes;
    l.max_inflight = c.max_inflight;
    l.receive_maximum = c.receive_maximum;
    l.topic_alias_maximum = c.topic_alias_maximum;
    l.max_topic_length = c.max_topic_length;
    l.max_topic_levels = c.max_topic_levels;
    l.max_connections = c.max_connections;
    l.max_keep_alive = c.max_keep_alive;
    l.max_session_expiry = c.max_session_expiry;
    l.max_retained = c.max_retained;
    l.retain_available = c.retain_available;
    l.drop_log_interval_ms = std::uint64_t{cfg.drop_log_interval} * 1000;
    l.dev_hub_open = cfg.dev_hub_open();
    return l;
}

// The bound address of each listener that is on, by its key ("mqtt", "api", …).
using bound_listeners = std::vector<std::pair<std::string, std::string>>;

void write_ready_file(const std::string& path, const bound_listeners& bound) {
    // Written whole, then renamed, so a reader never sees half a file.
    const std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp, std::ios::trunc);
        if (!f) throw std::runtime_error("cannot write ready file " + tmp);
        f << "{";
        for (std::size_t i = 0; i < bound.size(); ++i)
            f << (i == 0 ? "" : ",") << "\"" << bound[i].first << "\":\"" << bound[i].second
              << "\"";
        f << "}\n";
    }
    std::filesystem::rename(tmp, path);
}

net::websocket_settings websocket_settings_of(const config& cfg) {
    net::websocket_settings ws;
    ws.path = cfg.ws_path;
    std::string_view list = cfg.ws_origins;
    while (!list.empty()) {
        const auto comma = list.find(',');
        auto item = list.substr(0, comma);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        if (!item.empty()) ws.origins.emplace_back(item);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return ws;
}

std::string read_pem_file(const std::string& key, const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(key + ": cannot read " + path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// The TLS listener's certificate, key and settings, as the configuration names them.
struct tls_material {
    net::tls_settings settings;
    std::string ca_path;  // the server CA's certificate when iothub issued the certificate
    std::string ca_pem;
    bool ca_created = false;
};

bool is_wildcard(const std::string& host) {
    return host == "0.0.0.0" || host == "::";
}

tls_material load_tls(const config& cfg) {
    tls_material m;
    m.settings.tls13_only = cfg.tls_min_version == tls_version::v1_3;
    m.settings.handshake_timeout_s = cfg.tls_handshake_timeout;
    if (cfg.tls_cert_file.empty() != cfg.tls_key_file.empty())
        throw std::runtime_error(
            "tls_cert_file and tls_key_file go together: give both, or neither to use a "
            "certificate from iothub's own server CA");
    if (!cfg.tls_cert_file.empty()) {
        m.settings.cert_pem = read_pem_file("tls_cert_file", cfg.tls_cert_file);
        m.settings.key_pem = read_pem_file("tls_key_file", cfg.tls_key_file);
        m.settings.origin = cfg.tls_cert_file + ", " + cfg.tls_key_file;
        return m;
    }
    // The names clients reach the server by: the public endpoint, else the listeners' host.
    std::vector<std::string> names;
    auto add = [&names](const std::string& n) {
        if (!n.empty() && !is_wildcard(n) &&
            std::find(names.begin(), names.end(), n) == names.end())
            names.push_back(n);
    };
    add(cfg.endpoint.empty() ? cfg.mqtt.host : cfg.endpoint);
    add("localhost");
    add("127.0.0.1");
    std::filesystem::create_directories(cfg.data_dir);
    const bool existed =
        std::filesystem::exists(std::filesystem::path(cfg.data_dir) / "server-ca.pem");
    auto id = pki::load_or_create_server_identity(cfg.data_dir, names);
    m.settings.cert_pem = std::move(id.cert_pem);
    m.settings.key_pem = std::move(id.key_pem);
    m.ca_path = std::move(id.ca_path);
    m.ca_pem = std::move(id.ca_pem);
    m.ca_created = !existed;
    m.settings.origin = "the server certificate in " + cfg.data_dir;
    return m;
}

// The client certificates' revocation lists of tls_crl_file; null when it is empty. Throws,
// naming the file, when it cannot be read or holds anything but usable CRLs. A CRL past its
// next update is still applied (revocation does not expire), with a warning.
pki::crl_set_ptr load_crls(const config& cfg) {
    if (cfg.tls_crl_file.empty()) return nullptr;
    const std::string pem = read_pem_file("tls_crl_file", cfg.tls_crl_file);
    pki::crl_set_ptr crls;
    try {
        crls = std::make_shared<const pki::crl_set>(pki::crl_set::from_pem(pem));
    } catch (const pki::error& e) {
        throw std::runtime_error("tls_crl_file " + cfg.tls_crl_file + ": " + e.what());
    }
    std::size_t revoked = 0;
    for (const auto& c : crls->crls()) revoked += c.revoked;
    spdlog::info("tls_crl_file {}: {} CRLs, {} revoked certificates", cfg.tls_crl_file,
                 crls->crls().size(), revoked);
    for (const auto& c : crls->expired(wall_clock_ms())) {
        const std::time_t next = static_cast<std::time_t>(c.next_update_ms / 1000);
        char when[32] = "?";
        std::tm tm{};
        if (gmtime_r(&next, &tm) != nullptr)
            std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        spdlog::warn(
            "tls_crl_file {}: the CRL of {} is past its next update ({}); still applied, "
            "revocation does not expire: publish a new one",
            cfg.tls_crl_file, c.issuer, when);
    }
    return crls;
}

}  // namespace

int run_serve(const serve_options& options) {
    config cfg = options.resolve();
    spdlog::set_level(spd_level(cfg.log_level));
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

    // Signals are taken by this thread alone, with sigwait; the workers never see them.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    broker::broker b(to_broker_limits(cfg), cfg.worker_count(), wall_clock_ms);
    b.log = [](int level, const std::string& text) {
        spdlog::log(static_cast<spdlog::level::level_enum>(level), "{}", text);
    };
    b.hub("default");

    std::unique_ptr<store::store> db;
    std::unique_ptr<store_persistence> persist;
    if (cfg.persistence) {
        db = store::open_sqlite_store(cfg.data_dir);
        persist = std::make_unique<store_persistence>(*db);
        // The marker exists only between a clean stop and the next start.
        const auto marker = std::filesystem::path(cfg.data_dir) / clean_stop_marker;
        const bool clean = std::filesystem::exists(marker);
        const auto restored = persist->restore(b, clean);
        std::filesystem::remove(marker);
        spdlog::info("store {}/iothub.db: {} retained messages, {} sessions restored", cfg.data_dir,
                     restored.retained, restored.sessions);
        if (!clean && restored.sessions > 0)
            spdlog::warn("the previous run did not stop cleanly: sessions keep their subscriptions, "
                         "but their queued and unacknowledged messages were not restored");
        b.set_persistence(persist.get());
    }

    // The device registry: hubs, devices and API keys. Without persistence it lives in
    // memory, and the admin token of the previous run means nothing any more.
    std::unique_ptr<store::registry_store> registry_db;
    if (cfg.persistence) {
        registry_db = store::open_sqlite_registry(cfg.data_dir);
    } else {
        registry_db = store::make_memory_registry();
        std::filesystem::create_directories(cfg.data_dir);
        std::filesystem::remove(std::filesystem::path(cfg.data_dir) / api::admin_token_file);
    }
    hub::registry registry(*registry_db, wall_clock_ms);
    registry.load();
    hub::access access(b, registry, wall_clock_ms);
    registry.set_listener(&access);
    registry.set_presence(&access);
    b.set_gatekeeper(&access);

    net::server srv(b);
    const std::string mqtt_addr = srv.listen_mqtt({cfg.mqtt.host, cfg.mqtt.port});
    tls_material tls;
    try {
        tls = load_tls(cfg);
    } catch (const pki::error& e) {
        throw std::runtime_error("cannot prepare the TLS server certificate in " + cfg.data_dir +
                                 ": " + e.what());
    }
    access.set_crls(load_crls(cfg));
    const std::string mqtts_addr = srv.listen_mqtts({cfg.mqtts.host, cfg.mqtts.port}, tls.settings);
    bound_listeners bound{{"mqtt", mqtt_addr}, {"mqtts", mqtts_addr}};
    if (cfg.ws.enabled())
        bound.emplace_back("ws", srv.listen_ws({cfg.ws.host, cfg.ws.port}, websocket_settings_of(cfg)));
    if (cfg.wss.enabled())
        bound.emplace_back("wss", srv.listen_wss({cfg.wss.host, cfg.wss.port},
                                                 websocket_settings_of(cfg), tls.settings));
    api::api_options api_opts;
    api_opts.region = cfg.region;
    api_opts.endpoint = cfg.endpoint.empty() ? cfg.mqtt.host : cfg.endpoint;
    api_opts.server_ca_pem = tls.ca_pem;  // empty when the certificate comes from files
    api::api_server api_srv(registry, *registry_db, api_opts);
    const std::string api_addr = api_srv.listen(cfg.api.host, cfg.api.port);
    bound.emplace_back("api", api_addr);
    const auto token = api::ensure_admin_token(*registry_db, cfg.data_dir);
    if (token.created)
        spdlog::info("API admin token written to {} (readable by this user only)", token.path);
    srv.start();
    api_srv.start();
    std::string listening;
    for (const auto& [key, addr] : bound) {
        if (key == "api") continue;
        listening += key + " " + addr + ", ";
    }
    spdlog::info("iothub listening: {}api http://{}/iot/v1/regions/{} ({} workers{})", listening,
                 api_addr, cfg.region, b.worker_count(),
                 cfg.dev_hub_open() ? ", open development hub 'default'" : "");
    if (!tls.ca_path.empty())
        spdlog::info(
            "mqtts: server certificate issued by iothub's server CA{}; clients verify "
            "the server with {}",
            tls.ca_created ? ", created now" : "", tls.ca_path);
    if (!cfg.ready_file.empty()) write_ready_file(cfg.ready_file, bound);

    for (;;) {
        // Between signals, the devices' last activity goes to the store every 30 s.
        const timespec activity_interval{30, 0};
        const int sig = sigtimedwait(&signals, nullptr, &activity_interval);
        if (sig < 0) {
            registry.flush_activity();
            continue;
        }
        if (sig == SIGHUP) {
            try {
                auto result = options.reload(cfg);
                cfg = result.next;
                spdlog::set_level(spd_level(cfg.log_level));
                auto lim = to_broker_limits(cfg);
                lim.dev_hub_open = b.config()->dev_hub_open;  // decided at start
                b.set_limits(lim);
                srv.set_websocket(websocket_settings_of(cfg));
                for (const auto& k : result.ignored)
                    spdlog::warn("reload: '{}' changes only after a restart", k);
                spdlog::info("configuration reloaded ({} keys changed)", result.applied.size());
            } catch (const std::exception& e) {
                spdlog::error("reload failed, keeping the running configuration: {}", e.what());
            }
            // Certificates are read again even when their file names did not change: renewed
            // files replace the old ones in place.
            try {
                srv.reload_tls(load_tls(cfg).settings);
                spdlog::info("mqtts: certificates reloaded; new connections use them");
            } catch (const std::exception& e) {
                spdlog::error("mqtts: certificate reload failed, keeping the running ones: {}",
                              e.what());
            }
            // Revocation lists likewise; connected clients stay, new CONNECTs use them.
            try {
                access.set_crls(load_crls(cfg));
            } catch (const std::exception& e) {
                spdlog::error("tls_crl_file: reload failed, keeping the running CRLs: {}",
                              e.what());
            }
            continue;
        }
        spdlog::info("{} received: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
    }
    api_srv.stop();
    srv.stop();
    b.set_gatekeeper(nullptr);
    registry.flush_activity();
    if (db) {
        db->close();
        std::ofstream(std::filesystem::path(cfg.data_dir) / clean_stop_marker) << "stopped\n";
    }
    spdlog::info("stopped");
    return 0;
}

}  // namespace iothub::cli
