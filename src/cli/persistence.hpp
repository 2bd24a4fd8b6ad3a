#pragma once
// Maps the broker's retained messages and sessions to the store's records and back.

#include <cstddef>

#include "broker/broker.hpp"

namespace iothub::store {
class store;
}

namespace iothub::cli {

class store_persistence final : public broker::persistence {
public:
    explicit store_persistence(store::store& db) : db_(db) {}

    void retained_set(const std::string& hub, const broker::message_ptr& m) override;
    void retained_erase(const std::string& hub, const std::string& topic) override;
    void session_save(const broker::session& s) override;
    void session_erase(const std::string& hub, const std::string& client_id) override;

    struct counts {
        std::size_t retained = 0;
        std::size_t sessions = 0;
    };
    // Loads what the store holds into the broker (before its workers start). Sessions are
    // saved whole at shutdown but only partly while running (on subscription changes and when
    // they go offline), so after an unclean stop their message state may be stale: then
    // `with_messages` is false and only subscriptions and expiry come back.
    counts restore(broker::broker& b, bool with_messages);

private:
    store::store& db_;
};

}  // namespace iothub::cli
