// The API server end to end: api_server on 127.0.0.1 port 0 with a memory registry store,
// driven by a raw socket client (api_fixture.hpp).

#include "api/server.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "api/api_fixture.hpp"
#include "hub/model.hpp"

namespace iothub::api {
namespace {

using nlohmann::json;
using testing::http_response;
using testing::raw_client;
using testing::registry_env;

const std::string base = "/iot/v1/regions/fr-par/";

class ServerTest : public ::testing::Test {
protected:
    registry_env env;
    std::unique_ptr<api_server> srv;
    std::uint16_t port = 0;

    void start(api_options o = {}) {
        srv = std::make_unique<api_server>(env.reg, *env.db, o);
        port = testing::port_of(srv->listen("127.0.0.1", 0));
        srv->start();
    }
    void SetUp() override {}
    void TearDown() override {
        if (srv) srv->stop();
    }

    // The text of one request.
    std::string req(const std::string& method, const std::string& path,
                    const std::string& body = {}, const std::string& extra_headers = {},
                    bool with_token = true) const {
        std::string r = method + " " + (path.front() == '/' ? path : base + path) +
                        " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
        if (with_token) r += "X-Auth-Token: " + env.key.secret_key + "\r\n";
        if (!body.empty()) {
            r += "Content-Type: application/json; charset=utf-8\r\nContent-Length: " +
                 std::to_string(body.size()) + "\r\n";
        }
        return r + extra_headers + "\r\n" + body;
    }

    http_response exchange(raw_client& c, const std::string& text) {
        c.send(text);
        auto r = c.read_response();
        if (!r) throw std::runtime_error("no response to: " + text.substr(0, 80));
        return *r;
    }
};

void expect_json(const http_response& r, unsigned status) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.header("content-type"), "application/json");
    const auto j = json::parse(r.body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.body;
}

TEST_F(ServerTest, HubsAndDevicesOverOneKeepAliveConnection) {
    start();
    raw_client c(port);
    auto r = exchange(c, req("POST", "hubs", R"({"name":"over-http"})"));
    expect_json(r, 200);
    const std::string hub_id = r.json().at("id");
    EXPECT_EQ(r.json().at("name"), "over-http");

    r = exchange(c, req("GET", "hubs/" + hub_id));
    expect_json(r, 200);
    EXPECT_EQ(r.json().at("id"), hub_id);

    r = exchange(c, req("GET", "hubs?page_size=10"));
    expect_json(r, 200);
    EXPECT_EQ(r.json().at("total_count"), 1);
    EXPECT_EQ(r.json().at("hubs")[0].at("id"), hub_id);

    r = exchange(c, req("PATCH", "hubs/" + hub_id, R"({"events_topic_prefix":"x/events"})"));
    expect_json(r, 200);
    EXPECT_EQ(r.json().at("events_topic_prefix"), "x/events");

    r = exchange(c, req("POST", "devices", json{{"hub_id", hub_id}, {"name", "d1"}}.dump()));
    expect_json(r, 200);
    const std::string dev_id = r.json().at("device").at("id");

    r = exchange(c, req("GET", "devices?hub_id=" + hub_id));
    expect_json(r, 200);
    EXPECT_EQ(r.json().at("devices").size(), 1u);

    r = exchange(c, req("PATCH", "devices/" + dev_id, R"({"description":"patched"})"));
    expect_json(r, 200);
    EXPECT_EQ(r.json().at("description"), "patched");

    r = exchange(c, req("POST", "devices/" + dev_id + "/disable", "{}"));
    EXPECT_EQ(r.json().at("status"), "disabled");

    r = exchange(c, req("DELETE", "devices/" + dev_id));
    EXPECT_EQ(r.status, 204u);
    EXPECT_TRUE(r.body.empty());
    EXPECT_EQ(r.header("content-length"), "");

    r = exchange(c, req("DELETE", "hubs/" + hub_id + "?delete_devices=false"));
    EXPECT_EQ(r.status, 204u);
    r = exchange(c, req("GET", "hubs/" + hub_id));
    expect_json(r, 404);
    EXPECT_EQ(r.json().at("resource"), "hub");
}

TEST_F(ServerTest, ErrorPathsKeepTheConnection) {
    start();
    raw_client c(port);
    auto r = exchange(c, req("GET", "hubs", {}, {}, false));
    expect_json(r, 401);
    EXPECT_EQ(r.json().at("type"), "denied_authentication");

    r = exchange(c, req("GET", "/nowhere"));
    expect_json(r, 404);

    r = exchange(c, req("GET", "/iot/v1/regions/nl-ams/hubs"));
    expect_json(r, 404);

    r = exchange(c, req("POST", "hubs", "{\"name\": oops}"));
    expect_json(r, 400);
    EXPECT_EQ(r.json().at("details")[0].at("argument_name"), "body");

    r = exchange(c, req("POST", "hubs", R"({"name": 5})"));
    expect_json(r, 400);
    EXPECT_EQ(r.json().at("details")[0].at("argument_name"), "name");

    r = exchange(c, req("DELETE", "hubs"));
    expect_json(r, 405);
    EXPECT_EQ(r.header("allow"), "GET, POST");

    r = exchange(c, req("GET", "networks"));
    expect_json(r, 501);

    r = exchange(c, req("GET", "hubs/not-a-uuid"));
    expect_json(r, 400);

    // Still usable.
    r = exchange(c, req("GET", "hubs"));
    expect_json(r, 200);
}

TEST_F(ServerTest, OversizeBodyIs413AndCloses) {
    api_options o;
    o.max_body_bytes = 1024;
    start(o);
    {
        raw_client c(port);
        const std::string body = "{\"name\":\"" + std::string(5000, 'x') + "\"}";
        auto r = exchange(c, req("POST", "hubs", body));
        expect_json(r, 413);
        EXPECT_NE(r.json().at("message").get<std::string>().find("1024"), std::string::npos);
        EXPECT_TRUE(c.closed_by_server());
    }
    {
        // Chunked: the limit applies as the chunks come.
        raw_client c(port);
        std::string text = req("POST", "hubs", {}, "Transfer-Encoding: chunked\r\n");
        for (int i = 0; i < 4; ++i) text += "200\r\n" + std::string(0x200, ' ') + "\r\n";
        text += "0\r\n\r\n";
        auto r = exchange(c, text);
        expect_json(r, 413);
        EXPECT_TRUE(c.closed_by_server());
    }
    {
        // Just under the limit is fine.
        raw_client c(port);
        const std::string body = "{\"name\":\"ok\"" + std::string(900, ' ') + "}";
        expect_json(exchange(c, req("POST", "hubs", body)), 200);
    }
}

TEST_F(ServerTest, RequestSplitAcrossWrites) {
    start();
    raw_client c(port);
    const std::string text = req("POST", "hubs", R"({"name":"split"})");
    for (std::size_t i = 0; i < text.size(); ++i) {
        c.send(text.substr(i, 1));
        if (i % 16 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    auto r = c.read_response();
    ASSERT_TRUE(r);
    expect_json(*r, 200);
    EXPECT_EQ(r->json().at("name"), "split");
}

TEST_F(ServerTest, PipelinedRequestsAnswerInOrder) {
    start();
    raw_client c(port);
    c.send(req("POST", "hubs", R"({"name":"p1"})") + req("POST", "hubs", R"({"name":"p2"})") +
           req("GET", "hubs?order_by=created_at_asc") + req("GET", "/bad") + req("GET", "hubs"));
    std::vector<http_response> got;
    for (int i = 0; i < 5; ++i) {
        auto r = c.read_response();
        ASSERT_TRUE(r) << "response " << i;
        got.push_back(*r);
    }
    EXPECT_EQ(got[0].json().at("name"), "p1");
    EXPECT_EQ(got[1].json().at("name"), "p2");
    EXPECT_EQ(got[2].json().at("total_count"), 2);
    EXPECT_EQ(got[3].status, 404u);
    EXPECT_EQ(got[4].json().at("total_count"), 2);
}

TEST_F(ServerTest, ConnectionCloseAndHttp10) {
    start();
    {
        raw_client c(port);
        auto r = exchange(c, req("GET", "hubs", {}, "Connection: close\r\n"));
        expect_json(r, 200);
        EXPECT_EQ(r.header("connection"), "close");
        EXPECT_TRUE(c.closed_by_server());
    }
    {
        raw_client c(port);
        auto r = exchange(
            c, "GET " + base + "hubs HTTP/1.0\r\nX-Auth-Token: " + env.key.secret_key + "\r\n\r\n");
        expect_json(r, 200);
        EXPECT_TRUE(c.closed_by_server());
    }
}

TEST_F(ServerTest, MalformedHttpIs400AndCloses) {
    start();
    for (const std::string& garbage :
         {std::string("GARBAGE\r\n\r\n"), std::string("GET /x HTTP/9.9\r\n\r\n"),
          std::string("GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n"),
          std::string("GET / HTTP/1.1\r\nBad Header\r\n\r\n")}) {
        raw_client c(port);
        auto r = exchange(c, garbage);
        expect_json(r, 400);
        EXPECT_TRUE(c.closed_by_server()) << garbage;
    }
    {
        raw_client c(port);
        auto r = exchange(c, req("GET", "hubs", {}, "X-Big: " + std::string(20000, 'a') + "\r\n"));
        expect_json(r, 400);
    }
    // The server is still fine.
    raw_client c(port);
    expect_json(exchange(c, req("GET", "hubs")), 200);
}

TEST_F(ServerTest, ExpectContinue) {
    start();
    raw_client c(port);
    const std::string body = R"({"name":"continued"})";
    c.send(req("POST", "hubs", {},
               "Expect: 100-continue\r\nContent-Type: application/json\r\n"
               "Content-Length: " +
                   std::to_string(body.size()) + "\r\n"));
    auto cont = c.read_response();
    ASSERT_TRUE(cont);
    EXPECT_EQ(cont->status, 100u);
    c.send(body);
    auto r = c.read_response();
    ASSERT_TRUE(r);
    expect_json(*r, 200);
    EXPECT_EQ(r->json().at("name"), "continued");
}

TEST_F(ServerTest, IdleConnectionsAreClosed) {
    api_options o;
    o.idle_timeout_seconds = 1;
    start(o);
    raw_client c(port);
    EXPECT_TRUE(c.closed_by_server(std::chrono::seconds(10)));
    raw_client half(port);
    half.send("GET " + base + "hubs HTTP/1.1\r\n");  // and then nothing
    EXPECT_TRUE(half.closed_by_server(std::chrono::seconds(10)));
}

TEST_F(ServerTest, MaxConnections) {
    api_options o;
    o.max_connections = 2;
    start(o);
    auto c1 = std::make_unique<raw_client>(port);
    raw_client c2(port);
    expect_json(exchange(*c1, req("GET", "hubs")), 200);
    expect_json(exchange(c2, req("GET", "hubs")), 200);
    {
        raw_client c3(port);
        auto r = c3.read_response();  // refused without being asked
        ASSERT_TRUE(r);
        expect_json(*r, 503);
        EXPECT_TRUE(c3.closed_by_server());
    }
    c1.reset();
    // Once one leaves, a new one is served (the server notices the close asynchronously).
    bool served = false;
    for (int i = 0; i < 100 && !served; ++i) {
        raw_client c4(port);
        c4.send(req("GET", "hubs"));
        auto r = c4.read_response();
        served = r && r->status == 200;
        if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(served);
}

TEST_F(ServerTest, StopClosesOpenConnections) {
    start();
    raw_client idle(port);
    raw_client busy(port);
    expect_json(exchange(busy, req("GET", "hubs")), 200);
    busy.send("POST " + base + "hubs HTTP/1.1\r\nContent-Length: 100\r\n\r\n{");
    const auto t0 = std::chrono::steady_clock::now();
    srv->stop();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
    EXPECT_TRUE(idle.closed_by_server(std::chrono::seconds(2)));
    EXPECT_TRUE(busy.closed_by_server(std::chrono::seconds(2)));
    srv->stop();  // twice is fine
}

TEST_F(ServerTest, ListenErrors) {
    start();
    api_server other(env.reg, *env.db, api_options{});
    EXPECT_THROW(other.listen("127.0.0.1", port), std::runtime_error);
    EXPECT_THROW(other.listen("not a host name", 0), std::runtime_error);
    // Never started: stopping (and destroying) is fine.
    other.stop();
}

TEST_F(ServerTest, GarbageBytesNeverHurtTheServer) {
    start();
    std::mt19937 rng(7);
    for (int i = 0; i < 40; ++i) {
        raw_client c(port);
        std::string bytes;
        if (i % 2 == 0) bytes = req("POST", "hubs", "{\"name\":\"g\"}");
        const std::size_t n = rng() % 2000;
        for (std::size_t k = 0; k < n; ++k) bytes.push_back(static_cast<char>(rng() % 256));
        if (i % 4 == 1) bytes = bytes.substr(0, bytes.size() / 2);
        try {
            c.send(bytes);
        } catch (const std::exception&) {
            // the server may have answered and closed already
        }
        c.read_response(std::chrono::milliseconds(200));
    }
    raw_client c(port);
    expect_json(exchange(c, req("GET", "hubs")), 200);
}

TEST(ServerLifecycle, StartStopWithoutTraffic) {
    registry_env env;
    for (int i = 0; i < 3; ++i) {
        api_server s(env.reg, *env.db, api_options{});
        const auto addr = s.listen("127.0.0.1", 0);
        EXPECT_EQ(addr.rfind("127.0.0.1:", 0), 0u);
        s.start();
    }
}

}  // namespace
}  // namespace iothub::api
