// Feeds arbitrary bytes to the broker's protocol state machine through three connections on
// two workers, with a clock that moves, so every packet order and every malformed input
// reaches the session, routing, retained and will code. Crashes and sanitizer reports fail.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "broker/broker.hpp"
#include "broker/connection.hpp"
#include "broker/worker.hpp"

namespace {

using namespace iothub::broker;

struct sink_transport final : transport {
    bool closed = false;
    void wake_write() override {}
    void close() override { closed = true; }
    void migrate(unsigned) override {}
    std::string peer() const override { return "fuzz"; }
    void read_pending() override {}
};

// Deliveries for the other worker are run at once: both workers live on this thread.
struct inline_dispatcher final : dispatcher {
    broker* b = nullptr;
    void post_deliveries(unsigned w, std::vector<delivery>&& batch) override {
        b->worker_at(w).on_deliveries(batch);
    }
    void post_task(unsigned w, std::function<void(worker&)> task) override { task(b->worker_at(w)); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::uint64_t now = 1'000'000;
    limits lim;
    lim.max_packet_size = 4096;
    lim.max_queued_messages = 8;
    lim.topic_alias_maximum = 4;
    lim.max_inflight = 2;
    broker b(lim, 2, [&now] { return now; });
    inline_dispatcher disp;
    disp.b = &b;
    b.set_dispatcher(&disp);

    constexpr int n = 3;
    sink_transport transports[n];
    std::unique_ptr<connection> conns[n];
    for (int i = 0; i < n; ++i)
        conns[i] = std::make_unique<connection>(b.worker_at(static_cast<unsigned>(i % 2)), transports[i]);

    // Input: a sequence of chunks [selector][len][bytes...]. The selector's low bits pick
    // the connection; bit 7 advances the clock and ticks; bit 6 closes the connection.
    std::size_t pos = 0;
    while (pos + 2 <= size) {
        const std::uint8_t sel = data[pos];
        std::size_t len = data[pos + 1];
        pos += 2;
        if (len > size - pos) len = size - pos;
        const int i = sel % n;
        if ((sel & 0x80) != 0) {
            now += (sel & 0x3F) * 1000;
            b.worker_at(0).tick(now);
            b.worker_at(1).tick(now);
        }
        if ((sel & 0x40) != 0 && conns[i]) {
            conns[i]->on_transport_closed();
            conns[i].reset();
            transports[i].closed = false;
            conns[i] = std::make_unique<connection>(b.worker_at(static_cast<unsigned>(i % 2)), transports[i]);
        }
        if (!transports[i].closed && len > 0) {
            conns[i]->on_data({data + pos, len});
        }
        // Keep output from growing without bound across chunks, as a socket write would.
        conns[i]->output().clear();
        pos += len;
    }
    for (auto& c : conns) {
        if (c) c->on_transport_closed();
        c.reset();
    }
    b.worker_at(0).shutdown();
    b.worker_at(1).shutdown();
    return 0;
}
