#pragma once
// Event loops and listeners: one Asio io_context per worker thread, a listening socket per
// worker on each address (SO_REUSEPORT spreads new connections), and the batched hand-off of
// deliveries between workers. Boost stays inside server.cpp.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace iothub::broker {
class broker;
}

namespace iothub::net {

struct endpoint {
    std::string host;
    std::uint16_t port = 0;
};

class server {
public:
    explicit server(broker::broker& b);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // Binds the MQTT listener; returns the bound address as "host:port". Throws
    // std::runtime_error with a clear message when the address cannot be bound.
    std::string listen_mqtt(const endpoint& ep);
    // Starts the worker threads.
    void start();
    // Runs `f` on every worker's thread and waits for all of them.
    void run_on_workers(const std::function<void(unsigned worker)>& f);
    // Stops accepting, closes every connection (broker shutdown), stops the threads.
    void stop();

    struct impl;  // defined in server.cpp

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace iothub::net
