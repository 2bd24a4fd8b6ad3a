#pragma once
// A connection driven without sockets: packets in, packets out, a fake clock.

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <optional>

#include "broker/broker.hpp"
#include "broker/connection.hpp"
#include "broker/worker.hpp"
#include "mqtt/codec.hpp"

namespace iothub::broker::testing {


using mqtt::protocol_version;

struct fake_transport final : transport {
    bool closed = false;
    int migrate_to = -1;
    // What a TLS transport would report: set before CONNECT.
    bool is_tls = false;
    std::vector<std::string> certificates;  // the client's chain, leaf first, DER
    std::string peer_address = "test";
    void wake_write() override {}
    void close() override { closed = true; }
    void migrate(unsigned w) override { migrate_to = static_cast<int>(w); }
    std::string peer() const override { return peer_address; }
    bool tls() const override { return is_tls; }
    std::vector<std::string> peer_certificates() const override { return certificates; }
    void read_pending() override {}
};

struct fixture : ::testing::Test {
    std::uint64_t now = 1'000'000;
    limits lim;
    std::unique_ptr<broker> b;

    void make(unsigned workers = 1) {
        b = std::make_unique<broker>(lim, workers, [this] { return now; });
    }
    void SetUp() override { make(); }
};

// A client: a transport, a handler on worker 0 (or another), and a parser for its output.
struct client {
    fake_transport t;
    std::unique_ptr<connection> c;
    protocol_version v;
    std::size_t parsed = 0;
    std::string wire;  // everything the connection wrote, as the client would read it
    std::vector<mqtt::packet> pending;  // read past a CONNACK, returned by the next received()

    client(broker& b, protocol_version version, unsigned w = 0)
        : c(std::make_unique<connection>(b.worker_at(w), t)), v(version) {}

    void send(const mqtt::packet& p) {
        std::string bytes;
        mqtt::encode(p, v, bytes);
        send_raw(bytes);
    }
    void send_raw(std::string_view bytes) {
        c->on_data({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()});
    }
    // Every packet written since the last call.
    std::vector<mqtt::packet> received() {
        std::vector<mqtt::packet> out = std::move(pending);
        pending.clear();
        wire += c->output().flatten();
        c->output().clear();
        auto& o = wire;
        while (parsed < o.size()) {
            std::span<const std::uint8_t> avail(reinterpret_cast<const std::uint8_t*>(o.data()) + parsed,
                                                o.size() - parsed);
            mqtt::frame f;
            mqtt::decode_error err;
            EXPECT_EQ(mqtt::read_frame(avail, 1u << 28, f, err), mqtt::decode_status::ok);
            mqtt::packet p;
            EXPECT_EQ(mqtt::decode(f, avail.subspan(f.header_size, f.remaining_length), v, p, err),
                      mqtt::decode_status::ok)
                << err.message;
            out.push_back(std::move(p));
            parsed += f.total_size();
        }
        return out;
    }
    mqtt::connack connect(std::string id, bool clean = true, std::uint16_t keep_alive = 0,
                          std::optional<mqtt::will_message> will = {}, mqtt::properties props = {}) {
        mqtt::connect p;
        p.version = v;
        p.protocol_name = v == protocol_version::v31 ? "MQIsdp" : "MQTT";
        p.client_id = std::move(id);
        p.clean_start = clean;
        p.keep_alive = keep_alive;
        p.will = std::move(will);
        p.props = std::move(props);
        send(p);
        auto got = received();
        EXPECT_GE(got.size(), 1u);
        if (got.empty()) return {};
        auto ack = std::get<mqtt::connack>(got[0]);
        pending.assign(std::make_move_iterator(got.begin() + 1), std::make_move_iterator(got.end()));
        return ack;
    }
    void subscribe(std::string filter, std::uint8_t qos, std::uint16_t id = 1) {
        mqtt::subscribe s;
        s.packet_id = id;
        s.subscriptions.push_back({std::move(filter), qos});
        send(s);
    }
    void publish(std::string topic, std::string payload, std::uint8_t qos = 0, bool retain = false,
                 std::uint16_t id = 0) {
        mqtt::publish p;
        p.topic = std::move(topic);
        p.payload = std::move(payload);
        p.qos = qos;
        p.retain = retain;
        p.packet_id = id;
        send(p);
    }
};

inline std::vector<mqtt::publish> publishes(const std::vector<mqtt::packet>& ps) {
    std::vector<mqtt::publish> out;
    for (const auto& p : ps)
        if (auto* pub = std::get_if<mqtt::publish>(&p)) out.push_back(*pub);
    return out;
}

}  // namespace iothub::broker::testing
