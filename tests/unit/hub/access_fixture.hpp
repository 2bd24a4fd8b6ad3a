#pragma once
// A broker with the hub layer as its gatekeeper, on one test thread: a registry on a memory
// store, access, and clients from the connection harness.

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/connection_harness.hpp"
#include "hub/access.hpp"
#include "store/registry_store.hpp"

namespace iothub::hub::testing {

using broker::testing::client;
using broker::testing::publishes;
using mqtt::protocol_version;

// Both workers live on the test's thread: tasks and deliveries run at once.
struct inline_dispatcher final : broker::dispatcher {
    broker::broker* b = nullptr;
    void post_deliveries(unsigned w, std::vector<broker::delivery>&& batch) override {
        b->worker_at(w).on_deliveries(batch);
    }
    void post_task(unsigned w, std::function<void(broker::worker&)> task) override {
        task(b->worker_at(w));
    }
};

struct hub_fixture : ::testing::Test {
    std::uint64_t now = 1'700'000'000'000;
    broker::limits lim;
    std::unique_ptr<broker::broker> b;
    std::unique_ptr<store::registry_store> db = store::make_memory_registry();
    std::unique_ptr<registry> reg;
    std::unique_ptr<access> acc;
    inline_dispatcher disp;
    scope sc{make_uuid()};
    hub_view hub;

    void SetUp() override {
        lim.dev_hub_open = false;
        b = std::make_unique<broker::broker>(lim, 1, [this] { return now; });
        disp.b = b.get();
        b->set_dispatcher(&disp);
        reg = std::make_unique<registry>(*db, [this] { return now; });
        reg->set_device_key_type(pki::key_type::ec_p256);  // fast
        acc = std::make_unique<access>(*b, *reg, [this] { return now; });
        reg->set_listener(acc.get());
        reg->set_presence(acc.get());
        b->set_gatekeeper(acc.get());
        hub = make_hub(product_plan::plan_dedicated);
    }
    void TearDown() override {
        b->set_gatekeeper(nullptr);
        b->set_dispatcher(nullptr);
    }
    hub_view make_hub(product_plan plan) {
        hub_create req;
        req.name = "hub-" + make_uuid().substr(0, 8);
        req.plan = plan;
        return reg->create_hub(sc, req);
    }
    device_ptr make_device(const std::string& hub_id, bool insecure = true,
                           std::optional<message_filters> filters = {}, bool multiple = false) {
        device_create req;
        req.hub_id = hub_id;
        req.name = "dev-" + make_uuid().substr(0, 8);
        req.allow_insecure = insecure;
        req.allow_multiple_connections = multiple;
        req.filters = std::move(filters);
        return reg->create_device(sc, req).device;
    }
    // A connected device subscribed to its hub's events.
    std::unique_ptr<client> watcher(const std::string& hub_id) {
        auto d = make_device(hub_id);
        auto c = std::make_unique<client>(*b, protocol_version::v311);
        EXPECT_EQ(c->connect(d->id).reason, mqtt::reason_code::success);
        c->subscribe("$SCW/events/#", 0);
        c->received();
        return c;
    }
    static std::vector<std::string> event_messages(const std::vector<mqtt::packet>& ps) {
        std::vector<std::string> out;
        for (const auto& p : publishes(ps)) {
            const auto at = p.payload.find("\"msg\":\"");
            if (at == std::string::npos) continue;
            std::string msg;
            for (auto i = at + 7; i < p.payload.size() && p.payload[i] != '"'; ++i) {
                if (p.payload[i] == '\\') ++i;  // an escaped character
                msg.push_back(p.payload[i]);
            }
            out.push_back(msg);
        }
        return out;
    }
};

}  // namespace iothub::hub::testing
