#pragma once
// Test doubles and a fixture for the registry tests: a fake clock, presence, a listener
// that records its calls, and a store that can be told to fail.

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "hub/registry.hpp"
#include "store/registry_store.hpp"

namespace iothub::hub::testing {

// Delegates to an in-memory store; throws from every write while `fail` is set.
class failing_store final : public store::registry_store {
public:
    bool fail = false;
    int writes = 0;  // successful device writes
    std::vector<store::device_row> device_writes;

    using store::registry_store::load;  // the two-callback form
    void load(const std::function<void(store::hub_row&&)>& hub,
              const std::function<void(store::device_row&&)>& device,
              const std::function<void(store::hub_ca_row&&)>& ca,
              const std::function<void(store::device_certificate_row&&)>& cert) override {
        inner_->load(hub, device, ca, cert);
    }
    void put_hub(const store::hub_row& h) override {
        check();
        inner_->put_hub(h);
    }
    void erase_hub(const std::string& id) override {
        check();
        inner_->erase_hub(id);
    }
    void put_device(const store::device_row& d) override {
        check();
        inner_->put_device(d);
        ++writes;
        device_writes.push_back(d);
    }
    void put_devices(const std::vector<store::device_row>& ds) override {
        check();
        inner_->put_devices(ds);
        ++writes;  // one transaction
        device_writes.insert(device_writes.end(), ds.begin(), ds.end());
    }
    void erase_device(const std::string& id) override {
        check();
        inner_->erase_device(id);
    }
    void put_hub_ca(const store::hub_row& h, const store::hub_ca_row& ca, bool drop) override {
        check();
        inner_->put_hub_ca(h, ca, drop);
    }
    void put_device_certificate(const store::device_row& d,
                                const store::device_certificate_row& c) override {
        check();
        inner_->put_device_certificate(d, c);
        ++writes;
        device_writes.push_back(d);
    }
    void put_api_key(const store::api_key_row& k) override { inner_->put_api_key(k); }
    bool erase_api_key(const std::string& k) override { return inner_->erase_api_key(k); }
    std::vector<store::api_key_row> list_api_keys() override { return inner_->list_api_keys(); }
    std::optional<store::api_key_row> find_api_key_by_hash(const std::string& h) override {
        return inner_->find_api_key_by_hash(h);
    }

private:
    void check() const {
        if (fail) throw std::runtime_error("disk on fire");
    }
    std::unique_ptr<store::registry_store> inner_ = store::make_memory_registry();
};

class fake_presence final : public presence_source {
public:
    std::map<std::string, bool, std::less<>> connected;
    std::map<std::string, std::uint64_t, std::less<>> activity;
    std::map<std::string, std::uint64_t, std::less<>> per_hub;

    bool is_connected(std::string_view id) const override {
        const auto it = connected.find(id);
        return it != connected.end() && it->second;
    }
    std::uint64_t last_activity_ms(std::string_view id) const override {
        const auto it = activity.find(id);
        return it == activity.end() ? 0 : it->second;
    }
    std::uint64_t connected_devices(std::string_view hub) const override {
        const auto it = per_hub.find(hub);
        return it == per_hub.end() ? 0 : it->second;
    }
};

class recording_listener final : public registry_listener {
public:
    struct call {
        std::string what;       // "hub" | "device"
        std::string before_id;  // empty for null
        std::string after_id;
        std::shared_ptr<const void> before;
        std::shared_ptr<const void> after;
    };
    std::vector<call> calls;
    std::function<void()> during_call;  // e.g. reads the registry back

    void hub_changed(const hub_ptr& before, const hub_ptr& after) override {
        calls.push_back({"hub", before ? before->id : "", after ? after->id : "", before, after});
        if (during_call) during_call();
    }
    void device_changed(const device_ptr& before, const device_ptr& after) override {
        calls.push_back(
            {"device", before ? before->id : "", after ? after->id : "", before, after});
        if (during_call) during_call();
    }
};

inline const scope mine{"11111111-1111-4111-8111-111111111111"};
inline const scope theirs{"22222222-2222-4222-8222-222222222222"};

class registry_test : public ::testing::Test {
protected:
    explicit registry_test(registry_limits limits = {})
        : reg_(
              db_, [this] { return now_; }, limits) {
        reg_.set_listener(&listener_);
        reg_.set_presence(&presence_);
        // EC keys: an RSA key pair per device would make these tests minutes long. The
        // default (RSA) has its own tests.
        reg_.set_device_key_type(pki::key_type::ec_p256);
    }

    hub_view make_hub(const std::string& name = "hub",
                      product_plan plan = product_plan::plan_dedicated, const scope& sc = mine) {
        hub_create req;
        req.name = name;
        req.plan = plan;
        return reg_.create_hub(sc, req);
    }

    device_view make_device(const std::string& hub_id, const std::string& name = "",
                            const scope& sc = mine) {
        device_create req;
        req.hub_id = hub_id;
        req.name = name;
        return reg_.create_device(sc, req);
    }

    failing_store db_;
    std::uint64_t now_ = 1'700'000'000'000;
    recording_listener listener_;
    fake_presence presence_;
    registry reg_;
};

// Runs `fn`, which must throw registry_error, and returns the error.
template <typename F>
registry_error error_of(F&& fn) {
    try {
        fn();
    } catch (const registry_error& e) {
        return e;
    }
    ADD_FAILURE() << "no registry_error thrown";
    return registry_error(error_kind::not_found, "none");
}

// The details of an invalid_arguments error as "name:reason" strings.
inline std::vector<std::string> details_of(const std::vector<argument_error>& details) {
    std::vector<std::string> out;
    for (const auto& d : details) out.push_back(d.argument_name + ":" + d.reason);
    return out;
}
inline std::vector<std::string> details_of(const registry_error& e) {
    return details_of(e.details);
}

template <typename... T>
std::vector<std::string> names(T... n) {
    return {std::string(n)...};
}

}  // namespace iothub::hub::testing
