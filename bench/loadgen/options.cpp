#include "options.hpp"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

namespace iothub::bench {
namespace {

const char* const usage_text = R"(usage: iothub-bench [OPTIONS]
MQTT load generator: connects to a broker, runs one scenario, prints what it measured.

Connection:
  --host ADDR             broker address (IPv4) [127.0.0.1]
  --port PORT             broker port [1883]
  --transport T           tcp | tls | ws | wss: MQTT over TCP, TLS, WebSocket, WebSocket over
                          TLS [tcp; handshake: tls]
  --cafile FILE           tls, wss: verify the server's chain and IP address with these CA
                          certificates (PEM) [no verification]
  --ws-path PATH          ws, wss: request target of the WebSocket upgrade [/mqtt]
  --ws-max-frame BYTES    ws, wss: what is queued at a flush goes out as one frame, or as
                          frames of at most BYTES when there is more [65536]
  --mqtt-version V        3.1.1 or 5 [3.1.1]
  --keep-alive SECONDS    keep alive announced in CONNECT; pings are sent at half of it [60]
  --threads N             generator threads, each one event loop owning its connections [1]

Scenario:
  --scenario NAME         pairs | fanout | fanin | shared | idle | connect | handshake |
                          subscriptions | retained | slow [pairs]
  --clients N             pairs: pairs; fanout: subscribers; fanin: publishers; shared: group
                          members; idle: connections; connect, handshake: concurrent
                          connectors;
                          slow: fast subscribers beside the slow one [1]
  --publishers N          shared: publishers [1]
  --qos 0|1|2             QoS of publishes and subscriptions [0]
  --payload BYTES         payload size, at least 16 (timestamp, publisher, sequence) [64]
  --topic PATTERN         topic published to; %i is replaced by the client index
                          [pairs: bench/%i, fanout: bench/fanout, fanin: bench/fanin/%i,
                           shared: bench/shared, retained: bench/retained/%i, slow: bench/slow]
  --sub-topic PATTERN     filter subscribed to [the topic; fanin: bench/fanin/+;
                          shared: $share/g/<topic>]
  --duration SECONDS      measured time [10]
  --warmup SECONDS        time run before measuring [2]
  --window N              closed loop: messages in flight per publisher [1000]
  --rate MSG_PER_S        fixed rate, all publishers together (replaces the window) [off]
  --drain SECONDS         after the run, time allowed for in-flight messages to arrive [3]
  --subscriptions N       one extra client first makes N subscriptions (one per SUBSCRIBE,
                          64 in flight) and the run reports their rate and broker bytes each
  --subscription-filter P[,P...]  patterns of those subscriptions, %i = number [bench/subs/%i]
  --then-pairs            subscriptions: then run pairs throughput with them present
  --retained N            retained: messages stored [100000]
  --lookups N             retained: exact-topic subscribe/unsubscribe lookups timed [1000]
  --slow-read-rate BYTES  slow: bytes per second the slow subscriber reads [65536]

Output:
  --broker-pid PID        read the broker's CPU time and RSS from /proc/PID
  --json                  print one JSON line with every figure to stdout
  --no-progress           no live line on stderr (it is shown only on a terminal anyway)
  --label TEXT            copied into the JSON line
  --help                  this text
)";

[[noreturn]] void fail(const std::string& msg) {
    std::fprintf(stderr, "iothub-bench: %s (see --help)\n", msg.c_str());
    std::exit(2);
}

double to_double(std::string_view name, const char* v) {
    char* end = nullptr;
    const double d = std::strtod(v, &end);
    if (end == v || *end != '\0' || d < 0) {
        fail("bad value for " + std::string(name) + ": " + v);
    }
    return d;
}

long long to_int(std::string_view name, const char* v, long long lo, long long hi) {
    char* end = nullptr;
    const long long x = std::strtoll(v, &end, 10);
    if (end == v || *end != '\0' || x < lo || x > hi) {
        fail("bad value for " + std::string(name) + ": " + v + " (" + std::to_string(lo) +
             ".." + std::to_string(hi) + ")");
    }
    return x;
}

std::vector<std::string> split(std::string_view s) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= s.size()) {
        const std::size_t comma = s.find(',', start);
        const std::size_t end = comma == std::string_view::npos ? s.size() : comma;
        if (end > start) {
            out.emplace_back(s.substr(start, end - start));
        }
        start = end + 1;
    }
    return out;
}

}  // namespace

options parse_options(int argc, char** argv) {
    options o;
    bool topic_set = false;
    bool transport_set = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--help" || a == "-h") {
            std::fputs(usage_text, stdout);
            std::exit(0);
        }
        if (a == "--json") {
            o.json = true;
            continue;
        }
        if (a == "--no-progress") {
            o.progress = false;
            continue;
        }
        if (a == "--then-pairs") {
            o.then_pairs = true;
            continue;
        }
        if (i + 1 >= argc) {
            fail("missing value or unknown option: " + std::string(a));
        }
        const char* v = argv[++i];
        if (a == "--host") {
            o.host = v;
        } else if (a == "--port") {
            o.port = static_cast<std::uint16_t>(to_int(a, v, 1, 65535));
        } else if (a == "--scenario") {
            const std::string_view s = v;
            o.scenario_name = v;
            if (s == "pairs") {
                o.kind = scenario::pairs;
            } else if (s == "fanout") {
                o.kind = scenario::fanout;
            } else if (s == "fanin") {
                o.kind = scenario::fanin;
            } else if (s == "shared") {
                o.kind = scenario::shared;
            } else if (s == "idle") {
                o.kind = scenario::idle;
            } else if (s == "connect" || s == "handshake") {
                o.kind = scenario::connect;
            } else if (s == "subscriptions") {
                o.kind = scenario::subscriptions;
            } else if (s == "retained") {
                o.kind = scenario::retained;
            } else if (s == "slow") {
                o.kind = scenario::slow;
            } else {
                fail("unknown scenario: " + std::string(s));
            }
        } else if (a == "--transport") {
            const std::string_view t = v;
            transport_set = true;
            if (t == "tcp") {
                o.link = transport::tcp;
            } else if (t == "tls") {
                o.link = transport::tls;
            } else if (t == "ws") {
                o.link = transport::ws;
            } else if (t == "wss") {
                o.link = transport::wss;
            } else {
                fail("unknown transport: " + std::string(t));
            }
        } else if (a == "--cafile") {
            o.cafile = v;
        } else if (a == "--ws-path") {
            o.ws_path = v;
            if (o.ws_path.empty() || o.ws_path[0] != '/') {
                fail("--ws-path must start with /");
            }
        } else if (a == "--ws-max-frame") {
            o.ws_max_frame = static_cast<std::size_t>(to_int(a, v, 1, 1LL << 40));
        } else if (a == "--threads") {
            o.threads = static_cast<int>(to_int(a, v, 1, 64));
        } else if (a == "--clients") {
            o.clients = static_cast<int>(to_int(a, v, 1, 1000000));
        } else if (a == "--publishers") {
            o.publishers = static_cast<int>(to_int(a, v, 1, 1000000));
        } else if (a == "--qos") {
            o.qos = static_cast<int>(to_int(a, v, 0, 2));
        } else if (a == "--mqtt-version") {
            const std::string_view s = v;
            if (s == "3.1.1" || s == "4") {
                o.v5 = false;
            } else if (s == "5" || s == "5.0") {
                o.v5 = true;
            } else {
                fail("unknown MQTT version: " + std::string(s));
            }
        } else if (a == "--payload") {
            o.payload = static_cast<std::size_t>(to_int(a, v, 16, 256 * 1024 * 1024 - 1024));
        } else if (a == "--topic") {
            o.topic = v;
            topic_set = true;
        } else if (a == "--sub-topic") {
            o.sub_topic = v;
        } else if (a == "--duration") {
            o.duration = to_double(a, v);
        } else if (a == "--warmup") {
            o.warmup = to_double(a, v);
        } else if (a == "--window") {
            o.window = static_cast<std::uint32_t>(to_int(a, v, 1, 65535));
        } else if (a == "--rate") {
            o.rate = to_double(a, v);
        } else if (a == "--drain") {
            o.drain = to_double(a, v);
        } else if (a == "--broker-pid") {
            o.broker_pid = static_cast<int>(to_int(a, v, 1, 1 << 30));
        } else if (a == "--keep-alive") {
            o.keep_alive = static_cast<std::uint16_t>(to_int(a, v, 0, 65535));
        } else if (a == "--subscriptions") {
            o.subscriptions = static_cast<std::uint32_t>(to_int(a, v, 0, 100000000));
        } else if (a == "--subscription-filter") {
            o.subscription_filters = split(v);
            if (o.subscription_filters.empty()) {
                fail("empty --subscription-filter");
            }
        } else if (a == "--retained") {
            o.retained = static_cast<std::uint32_t>(to_int(a, v, 1, 100000000));
        } else if (a == "--lookups") {
            o.lookups = static_cast<std::uint32_t>(to_int(a, v, 0, 100000000));
        } else if (a == "--slow-read-rate") {
            o.slow_read_rate = static_cast<std::uint64_t>(to_int(a, v, 1, 1LL << 40));
        } else if (a == "--label") {
            o.label = v;
        } else {
            fail("unknown option: " + std::string(a));
        }
    }
    if (o.scenario_name == "handshake" && !transport_set) {
        o.link = transport::tls;
    }
    if (!topic_set) {
        switch (o.kind) {
        case scenario::fanout: o.topic = "bench/fanout"; break;
        case scenario::fanin: o.topic = "bench/fanin/%i"; break;
        case scenario::shared: o.topic = "bench/shared"; break;
        case scenario::retained: o.topic = "bench/retained/%i"; break;
        case scenario::slow: o.topic = "bench/slow"; break;
        default: o.topic = "bench/%i"; break;
        }
    }
    if (o.sub_topic.empty()) {
        if (o.kind == scenario::fanin && !topic_set) {
            o.sub_topic = "bench/fanin/+";
        } else if (o.kind == scenario::shared) {
            o.sub_topic = "$share/g/" + o.topic;
        } else {
            o.sub_topic = o.topic;
        }
    }
    if (o.kind == scenario::subscriptions && o.subscriptions == 0) {
        o.subscriptions = 100000;
    }
    return o;
}

}  // namespace iothub::bench
