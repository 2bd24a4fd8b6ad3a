// Micro benchmarks of the publish path without sockets: the PUBLISH codec, and whole broker
// connections fed bytes as a socket read would give them (fan-in N->1, fan-out 1->N, 1:1
// QoS 1). The time is user-space broker work only; the system calls that bound a real run
// are measured by iothub-bench and bench/compare.
//
// Build it Release, without sanitizers.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "broker/broker.hpp"
#include "broker/connection.hpp"
#include "broker/output_queue.hpp"
#include "broker/publish_encoder.hpp"
#include "broker/worker.hpp"
#include "mqtt/codec.hpp"

namespace {

namespace broker = iothub::broker;
namespace mqtt = iothub::mqtt;
using mqtt::protocol_version;

std::string encoded(const mqtt::packet& p, protocol_version v = protocol_version::v311) {
    std::string out;
    mqtt::encode(p, v, out);
    return out;
}

std::string publish_bytes(const std::string& topic, std::size_t payload, std::uint8_t qos = 0,
                          std::uint16_t id = 0) {
    mqtt::publish p;
    p.topic = topic;
    p.payload.assign(payload, 'x');
    p.qos = qos;
    p.packet_id = id;
    return encoded(p);
}

std::span<const std::uint8_t> bytes_of(const std::string& s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

struct null_transport final : broker::transport {
    void wake_write() override {}
    void close() override {}
    void migrate(unsigned) override {}
    std::string peer() const override { return "bench"; }
    void read_pending() override {}
};

// A broker with one worker and connected clients, driven by hand.
struct rig {
    std::uint64_t now = 1'000'000;
    std::unique_ptr<broker::broker> b;
    struct client {
        null_transport t;
        std::unique_ptr<broker::connection> c;
    };
    std::vector<std::unique_ptr<client>> clients;

    rig() { b = std::make_unique<broker::broker>(broker::limits{}, 1, [this] { return now; }); }

    client& connect(const std::string& id) {
        auto cl = std::make_unique<client>();
        cl->c = std::make_unique<broker::connection>(b->worker_at(0), cl->t);
        mqtt::connect p;
        p.version = protocol_version::v311;
        p.protocol_name = "MQTT";
        p.client_id = id;
        p.clean_start = true;
        const auto bytes = encoded(p);
        cl->c->on_data(bytes_of(bytes));
        cl->c->output().clear();
        clients.push_back(std::move(cl));
        return *clients.back();
    }
    void subscribe(client& cl, const std::string& filter, std::uint8_t qos = 0) {
        mqtt::subscribe s;
        s.packet_id = 1;
        s.subscriptions.push_back({filter, qos});
        const auto bytes = encoded(s);
        cl.c->on_data(bytes_of(bytes));
        cl.c->output().clear();
    }
};

// The PUBLISH codec: decode into a reused object (the broker's path) and into a packet.
void bm_decode_publish(benchmark::State& state) {
    const auto wire = publish_bytes("bench/fanin/42", static_cast<std::size_t>(state.range(0)));
    const auto buf = bytes_of(wire);
    mqtt::publish p;
    for (auto _ : state) {
        mqtt::frame f;
        mqtt::decode_error err;
        mqtt::read_frame(buf, 1u << 28, f, err);
        mqtt::decode_publish(f, buf.subspan(f.header_size), protocol_version::v311, p, err);
        benchmark::DoNotOptimize(p.payload.data());
    }
    state.SetItemsProcessed(state.iterations());
}

void bm_decode_packet(benchmark::State& state) {
    const auto wire = publish_bytes("bench/fanin/42", static_cast<std::size_t>(state.range(0)));
    const auto buf = bytes_of(wire);
    for (auto _ : state) {
        mqtt::frame f;
        mqtt::decode_error err;
        mqtt::read_frame(buf, 1u << 28, f, err);
        mqtt::packet p;
        mqtt::decode(f, buf.subspan(f.header_size), protocol_version::v311, p, err);
        benchmark::DoNotOptimize(&p);
    }
    state.SetItemsProcessed(state.iterations());
}

void bm_encode_publish(benchmark::State& state) {
    auto m = std::make_shared<broker::message>();
    m->topic = "bench/fanin/42";
    m->payload.assign(static_cast<std::size_t>(state.range(0)), 'x');
    const broker::message_ptr msg = m;
    broker::output_queue out;
    const std::vector<std::uint32_t> no_ids;
    std::size_t n = 0;
    for (auto _ : state) {
        broker::encode_publish(out, protocol_version::v311, msg, 0, false, false, 0, no_ids, 0);
        if (++n % 256 == 0) out.clear();
    }
    state.SetItemsProcessed(state.iterations());
}

// Fan-in N->1: N publishers on bench/fanin/<i>, one subscriber on bench/fanin/+. Each
// iteration is one read of `batch` PUBLISH packets from the next publisher.
void bm_fanin(benchmark::State& state) {
    const auto publishers = static_cast<int>(state.range(0));
    const auto batch = static_cast<int>(state.range(1));
    rig r;
    auto& sub = r.connect("sub");
    r.subscribe(sub, "bench/fanin/+");
    std::vector<rig::client*> pubs;
    std::vector<std::string> reads;
    for (int i = 0; i < publishers; ++i) {
        pubs.push_back(&r.connect("pub" + std::to_string(i)));
        std::string read;
        for (int k = 0; k < batch; ++k) read += publish_bytes("bench/fanin/" + std::to_string(i), 64);
        reads.push_back(std::move(read));
    }
    int next = 0;
    for (auto _ : state) {
        pubs[next]->c->on_data(bytes_of(reads[next]));
        if (++next == publishers) {
            next = 0;
            sub.c->output().clear();
        }
    }
    state.SetItemsProcessed(state.iterations() * batch);
}

// Fan-out 1->N: one PUBLISH per iteration, delivered to N subscribers.
void bm_fanout(benchmark::State& state) {
    const auto subscribers = static_cast<int>(state.range(0));
    rig r;
    std::vector<rig::client*> subs;
    for (int i = 0; i < subscribers; ++i) {
        subs.push_back(&r.connect("sub" + std::to_string(i)));
        r.subscribe(*subs.back(), "bench/fanout");
    }
    auto& pub = r.connect("pub");
    const auto wire = publish_bytes("bench/fanout", 64);
    std::size_t n = 0;
    for (auto _ : state) {
        pub.c->on_data(bytes_of(wire));
        if (++n % 64 == 0)
            for (auto* s : subs) s->c->output().clear();
    }
    state.SetItemsProcessed(state.iterations() * subscribers);
}

// 1:1 at QoS 1: a read of `batch` PUBLISH packets, their PUBACKs, the deliveries at QoS 1 and
// the subscriber's PUBACKs for them (built from the ids the broker chose: a few ns each).
void bm_pair_qos1(benchmark::State& state) {
    const auto batch = static_cast<int>(state.range(0));
    rig r;
    auto& sub = r.connect("sub");
    r.subscribe(sub, "bench/1", 1);
    auto& pub = r.connect("pub");
    std::string read;
    for (int k = 0; k < batch; ++k) read += publish_bytes("bench/1", 64, 1, static_cast<std::uint16_t>(k + 1));
    // A delivery: 0x32, length 75, topic (2 + 7), packet id (2), payload (64).
    constexpr std::size_t delivery_size = 77;
    constexpr std::size_t id_at = 11;
    std::string acks;
    for (auto _ : state) {
        pub.c->on_data(bytes_of(read));
        const std::string& out = sub.c->output().bytes();
        acks.clear();
        for (std::size_t at = 0; at + delivery_size <= out.size(); at += delivery_size) {
            const char ack[4] = {0x40, 0x02, out[at + id_at], out[at + id_at + 1]};
            acks.append(ack, 4);
        }
        sub.c->output().clear();
        sub.c->on_data(bytes_of(acks));
        pub.c->output().clear();
    }
    state.SetItemsProcessed(state.iterations() * batch);
}

}  // namespace

BENCHMARK(bm_decode_publish)->Arg(64)->Arg(1024);
BENCHMARK(bm_decode_packet)->Arg(64)->Arg(1024);
BENCHMARK(bm_encode_publish)->Arg(64)->Arg(1024);
BENCHMARK(bm_fanin)->Args({100, 10})->Args({10, 100});
BENCHMARK(bm_fanout)->Arg(10)->Arg(100)->Arg(1000);
BENCHMARK(bm_pair_qos1)->Arg(10);

BENCHMARK_MAIN();
