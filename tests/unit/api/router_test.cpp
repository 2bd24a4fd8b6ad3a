// The API's request handling, without sockets: routing, auth, every hub and device
// operation, and the error paths.

#include "api/router.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "api/api_fixture.hpp"
#include "hub/model.hpp"

namespace iothub::api {
namespace {

using nlohmann::json;
using testing::registry_env;

const std::string base = "/iot/v1/regions/fr-par/";

class RouterTest : public ::testing::Test {
protected:
    registry_env env;
    api_options opts = [] {
        api_options o;
        o.endpoint = "iot.example.net";
        return o;
    }();
    router r{env.reg, *env.db, opts};

    response call(const std::string& method, const std::string& path, const std::string& body = {},
                  std::optional<std::string> token = std::nullopt) {
        request req;
        req.method = method;
        req.target = path.front() == '/' ? path : base + path;
        req.token = token ? token : std::optional<std::string>(env.key.secret_key);
        req.body = body;
        return r.handle(req);
    }
    json ok(const std::string& method, const std::string& path, const std::string& body = {}) {
        const auto res = call(method, path, body);
        EXPECT_EQ(res.status, 200u) << method << " " << path << ": " << res.body;
        return json::parse(res.body);
    }
    json fails(unsigned status, const std::string& method, const std::string& path,
               const std::string& body = {}) {
        const auto res = call(method, path, body);
        EXPECT_EQ(res.status, status) << method << " " << path << ": " << res.body;
        return json::parse(res.body);
    }
    json new_hub(const std::string& name = "hub-a") {
        return ok("POST", "hubs", json{{"name", name}}.dump());
    }
    json new_device(const std::string& hub_id, json extra = json::object()) {
        extra["hub_id"] = hub_id;
        return ok("POST", "devices", extra.dump()).at("device");
    }
};

bool names_argument(const json& body, const std::string& arg) {
    if (body.value("type", "") != "invalid_arguments") return false;
    for (const auto& d : body.at("details")) {
        if (d.at("argument_name") == arg) return true;
    }
    return false;
}

// --- routing and auth ----------------------------------------------------------------------

TEST_F(RouterTest, NoTokenIsDenied) {
    for (const std::optional<std::string>& token :
         {std::optional<std::string>(), std::optional<std::string>(""),
          std::optional<std::string>("not-a-uuid")}) {
        request req{"GET", base + "hubs", token, ""};
        const auto res = r.handle(req);
        EXPECT_EQ(res.status, 401u);
        const auto j = json::parse(res.body);
        EXPECT_EQ(j.at("type"), "denied_authentication");
        EXPECT_EQ(j.at("reason"), "invalid_argument");
        EXPECT_TRUE(j.at("method").is_string());
    }
}

TEST_F(RouterTest, UnknownTokenIsDenied) {
    const auto res = call("GET", "hubs", "", hub::make_uuid());
    EXPECT_EQ(res.status, 401u);
    EXPECT_EQ(json::parse(res.body).at("reason"), "not_found");
}

TEST_F(RouterTest, UnknownPathIs404) {
    for (const char* path :
         {"/", "/iot/v1/regions/", "/iot/v2/regions/fr-par/hubs", "/iot/v1/regions/fr-par/nothing",
          "/iot/v1/regions/fr-par/hubs/a/b/c", "/iot/v1/regions/fr-par", "/metrics"}) {
        const auto res = call("GET", path);
        EXPECT_EQ(res.status, 404u) << path;
        const auto j = json::parse(res.body);
        EXPECT_EQ(j.at("type"), "not_found");
        EXPECT_TRUE(j.at("message").is_string());
    }
}

TEST_F(RouterTest, OtherRegionIs404NamingOurs) {
    const auto j = fails(404, "GET", "/iot/v1/regions/nl-ams/hubs");
    EXPECT_EQ(j.at("type"), "not_found");
    EXPECT_NE(j.at("message").get<std::string>().find("fr-par"), std::string::npos);
}

TEST_F(RouterTest, WrongMethodIs405WithAllow) {
    const auto res = call("PUT", "hubs");
    EXPECT_EQ(res.status, 405u);
    ASSERT_EQ(res.headers.size(), 1u);
    EXPECT_EQ(res.headers[0].first, "Allow");
    EXPECT_EQ(res.headers[0].second, "GET, POST");
    const auto res2 = call("GET", "hubs/" + hub::make_uuid() + "/enable");
    EXPECT_EQ(res2.status, 405u);
    EXPECT_EQ(json::parse(res2.body).at("type"), "method_not_allowed");
}

TEST_F(RouterTest, LaterOperationsAre501) {
    const std::string id = hub::make_uuid();
    for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
             {"GET", "hubs/" + id + "/metrics"},
             {"GET", "devices/" + id + "/metrics"},
             {"GET", "routes"},
             {"POST", "routes"},
             {"PATCH", "routes/" + id},
             {"GET", "networks"},
             {"DELETE", "networks/" + id},
             {"GET", "twins/" + id},
             {"PATCH", "twins/" + id + "/documents/doc"}}) {
        const auto res = call(method, path);
        EXPECT_EQ(res.status, 501u) << method << " " << path;
        const auto j = json::parse(res.body);
        EXPECT_EQ(j.at("type"), "not_implemented");
        EXPECT_NE(j.at("message").get<std::string>().find("not implemented yet"),
                  std::string::npos);
    }
    // Still behind authentication.
    EXPECT_EQ(call("GET", "routes", "", hub::make_uuid()).status, 401u);
}

TEST_F(RouterTest, MalformedIdsNameTheArgument) {
    EXPECT_TRUE(names_argument(fails(400, "GET", "hubs/xyz"), "hub_id"));
    EXPECT_TRUE(names_argument(fails(400, "POST", "hubs/123/enable"), "hub_id"));
    EXPECT_TRUE(names_argument(fails(400, "DELETE", "devices/not-a-uuid"), "device_id"));
    EXPECT_TRUE(names_argument(fails(400, "GET", "hubs/%zz"), "path"));
}

TEST_F(RouterTest, TrailingSlashAndEscapes) {
    const auto hub = new_hub();
    EXPECT_EQ(ok("GET", "hubs/").at("total_count"), 1);
    EXPECT_EQ(ok("GET", "hubs/" + hub.at("id").get<std::string>() + "/").at("id"), hub.at("id"));
}

// --- hubs ------------------------------------------------------------------------------------

TEST_F(RouterTest, HubLifecycle) {
    const auto hub = new_hub("first");
    const std::string id = hub.at("id");
    EXPECT_TRUE(hub::is_uuid(id));
    EXPECT_EQ(hub.at("name"), "first");
    EXPECT_EQ(hub.at("status"), "enabling");
    EXPECT_EQ(hub.at("product_plan"), "plan_shared");
    EXPECT_EQ(hub.at("endpoint"), "iot.example.net");
    EXPECT_EQ(hub.at("region"), "fr-par");
    EXPECT_EQ(hub.at("project_id"), env.key.project_id);
    EXPECT_EQ(hub.at("created_at"), "2025-01-23T10:26:24.158Z");
    EXPECT_EQ(hub.at("presence_events"), true);

    EXPECT_EQ(ok("GET", "hubs/" + id).at("name"), "first");

    env.now_ms += 1000;
    const auto upd = ok("PATCH", "hubs/" + id,
                        R"({"name":"renamed","disable_events":true,"presence_events":false})");
    EXPECT_EQ(upd.at("name"), "renamed");
    EXPECT_EQ(upd.at("disable_events"), true);
    EXPECT_EQ(upd.at("presence_events"), false);
    EXPECT_EQ(upd.at("events_topic_prefix"), "$SCW/events");
    EXPECT_EQ(upd.at("updated_at"), "2025-01-23T10:26:25.158Z");

    const auto off = ok("POST", "hubs/" + id + "/disable", "{}");
    EXPECT_EQ(off.at("enabled"), false);
    EXPECT_EQ(off.at("status"), "disabling");
    const auto on = ok("POST", "hubs/" + id + "/enable");
    EXPECT_EQ(on.at("enabled"), true);
    EXPECT_EQ(on.at("status"), "enabling");

    const auto del = call("DELETE", "hubs/" + id);
    EXPECT_EQ(del.status, 204u);
    EXPECT_TRUE(del.body.empty());
    const auto gone = fails(404, "GET", "hubs/" + id);
    EXPECT_EQ(gone.at("type"), "not_found");
    EXPECT_EQ(gone.at("resource"), "hub");
    EXPECT_EQ(gone.at("resource_id"), id);
}

TEST_F(RouterTest, CreateHubWithEverything) {
    const auto hub = ok("POST", "hubs", R"({"name":"x","product_plan":"plan_dedicated",
        "disable_events":true,"events_topic_prefix":"my/events","presence_events":false,
        "twins_graphite_config":{"push_uri":"tcp://graphite:2003"},"future":1})");
    EXPECT_EQ(hub.at("product_plan"), "plan_dedicated");
    EXPECT_EQ(hub.at("events_topic_prefix"), "my/events");
    EXPECT_EQ(hub.at("twins_graphite_config").at("push_uri"), "tcp://graphite:2003");
    const auto generated = ok("POST", "hubs", "");
    EXPECT_EQ(generated.at("name").get<std::string>().rfind("hub-", 0), 0u);
}

TEST_F(RouterTest, CreateHubBadRequests) {
    EXPECT_TRUE(names_argument(fails(400, "POST", "hubs", "{\"name\":"), "body"));
    EXPECT_TRUE(names_argument(fails(400, "POST", "hubs", "[1]"), "body"));
    EXPECT_TRUE(names_argument(fails(400, "POST", "hubs", R"({"name":1e999})"), "body"));
    const auto j = fails(400, "POST", "hubs", R"({"name":5,"disable_events":"yes"})");
    EXPECT_TRUE(names_argument(j, "name"));
    EXPECT_TRUE(names_argument(j, "disable_events"));
    EXPECT_EQ(ok("GET", "hubs").at("total_count"), 0);  // nothing half-made
}

TEST_F(RouterTest, CreateHubInAnotherProjectIsDenied) {
    const auto j =
        fails(403, "POST", "hubs", json{{"name", "x"}, {"project_id", hub::make_uuid()}}.dump());
    EXPECT_EQ(j.at("type"), "permissions_denied");
    ASSERT_EQ(j.at("details").size(), 1u);
    EXPECT_EQ(j.at("details")[0].at("action"), "write");
    EXPECT_TRUE(j.at("details")[0].at("resource").is_string());
}

TEST_F(RouterTest, DeleteHubWithDevices) {
    const std::string id = new_hub().at("id");
    new_device(id);
    const auto refused = fails(412, "DELETE", "hubs/" + id);
    EXPECT_EQ(refused.at("type"), "precondition_failed");
    EXPECT_TRUE(refused.at("precondition").is_string());
    EXPECT_TRUE(refused.at("help_message").is_string());
    EXPECT_EQ(fails(412, "DELETE", "hubs/" + id + "?delete_devices=false").at("type"),
              "precondition_failed");
    EXPECT_TRUE(names_argument(fails(400, "DELETE", "hubs/" + id + "?delete_devices=maybe"),
                               "delete_devices"));
    EXPECT_EQ(call("DELETE", "hubs/" + id + "?delete_devices=true").status, 204u);
    EXPECT_EQ(ok("GET", "devices").at("total_count"), 0);
}

TEST_F(RouterTest, ListHubsPagingFiltersOrder) {
    for (const char* n : {"c-hub", "a-hub", "b-hub", "other"}) new_hub(n);
    auto all = ok("GET", "hubs?order_by=name_asc");
    EXPECT_EQ(all.at("total_count"), 4);
    EXPECT_EQ(all.at("hubs").size(), 4u);
    EXPECT_EQ(all.at("hubs")[0].at("name"), "a-hub");

    auto page = ok("GET", "hubs?page_size=2&page=2&order_by=name_desc");
    EXPECT_EQ(page.at("total_count"), 4);
    ASSERT_EQ(page.at("hubs").size(), 2u);
    EXPECT_EQ(page.at("hubs")[0].at("name"), "b-hub");
    EXPECT_EQ(page.at("hubs")[1].at("name"), "a-hub");

    EXPECT_EQ(ok("GET", "hubs?name=-hub").at("total_count"), 3);
    EXPECT_EQ(ok("GET", "hubs?name=oth%65r").at("total_count"), 1);
    EXPECT_EQ(ok("GET", "hubs?project_id=" + env.key.project_id).at("total_count"), 4);
    EXPECT_EQ(ok("GET", "hubs?page=9").at("hubs").size(), 0u);

    EXPECT_TRUE(names_argument(fails(400, "GET", "hubs?page_size=101"), "page_size"));
    EXPECT_TRUE(names_argument(fails(400, "GET", "hubs?page_size=0"), "page_size"));
    EXPECT_TRUE(names_argument(fails(400, "GET", "hubs?page=x"), "page"));
    EXPECT_TRUE(names_argument(fails(400, "GET", "hubs?page=-1"), "page"));
    EXPECT_TRUE(names_argument(fails(400, "GET", "hubs?order_by=colour_asc"), "order_by"));
    EXPECT_TRUE(names_argument(fails(400, "GET", "hubs?project_id=p1"), "project_id"));
    EXPECT_TRUE(names_argument(fails(400, "GET", "hubs?name=%G1"), "query"));
}

TEST_F(RouterTest, ProjectsAreIsolated) {
    const std::string id = new_hub().at("id");
    const auto other = create_api_key(*env.db, "", "other");
    const auto res = call("GET", "hubs/" + id, "", other.secret_key);
    EXPECT_EQ(res.status, 404u);
    const auto list = call("GET", "hubs", "", other.secret_key);
    EXPECT_EQ(json::parse(list.body).at("total_count"), 0);
}

TEST_F(RouterTest, HubQuotaCarriesTheNumbers) {
    registry_env small;
    hub::registry limited(
        *small.db, [] { return std::uint64_t{1}; }, hub::registry_limits{10000, 2});
    router lr(limited, *small.db, opts);
    request req{"POST", base + "hubs", small.key.secret_key, "{}"};
    EXPECT_EQ(lr.handle(req).status, 200u);
    EXPECT_EQ(lr.handle(req).status, 200u);
    const auto res = lr.handle(req);
    EXPECT_EQ(res.status, 403u);
    const auto j = json::parse(res.body);
    EXPECT_EQ(j.at("type"), "quotas_exceeded");
    ASSERT_EQ(j.at("details").size(), 1u);
    EXPECT_EQ(j.at("details")[0].at("resource"), "hubs");
    EXPECT_EQ(j.at("details")[0].at("quota"), 2);
    EXPECT_EQ(j.at("details")[0].at("current"), 2);
    EXPECT_EQ(j.at("details")[0].at("project_id"), small.key.project_id);
}

// --- devices ---------------------------------------------------------------------------------

TEST_F(RouterTest, DeviceLifecycle) {
    const std::string hub_id = new_hub().at("id");
    const auto created = ok("POST", "devices",
                            json{{"hub_id", hub_id},
                                 {"name", "thermo"},
                                 {"allow_insecure", true},
                                 {"description", "attic"}}
                                .dump());
    EXPECT_TRUE(created.at("certificate").at("crt").is_string());  // see router_pki_test
    const auto dev = created.at("device");
    const std::string id = dev.at("id");
    EXPECT_EQ(dev.at("name"), "thermo");
    EXPECT_EQ(dev.at("hub_id"), hub_id);
    EXPECT_EQ(dev.at("status"), "enabled");
    EXPECT_EQ(dev.at("allow_insecure"), true);
    EXPECT_EQ(dev.at("last_activity_at"), "1970-01-01T00:00:00Z");
    EXPECT_EQ(dev.at("is_connected"), false);
    EXPECT_EQ(dev.at("message_filters").at("publish"),
              (json{{"policy", "reject"}, {"topics", json::array()}}));

    EXPECT_EQ(ok("GET", "devices/" + id).at("description"), "attic");
    EXPECT_EQ(ok("GET", "hubs/" + hub_id).at("device_count"), 1);

    const auto upd = ok("PATCH", "devices/" + id,
                        R"({"message_filters":{"publish":{"policy":"accept","topics":["t/#"]}}})");
    EXPECT_EQ(upd.at("message_filters").at("publish").at("policy"), "accept");
    EXPECT_EQ(upd.at("description"), "attic");
    const auto upd2 =
        ok("PATCH", "devices/" + id, R"({"message_filters":{"subscribe":{"policy":"accept"}}})");
    EXPECT_EQ(upd2.at("message_filters").at("publish").at("topics"), json::array({"t/#"}));
    EXPECT_EQ(upd2.at("message_filters").at("subscribe").at("policy"), "accept");

    EXPECT_EQ(ok("POST", "devices/" + id + "/disable").at("status"), "disabled");
    EXPECT_EQ(ok("POST", "devices/" + id + "/enable").at("status"), "enabled");

    const auto dup =
        fails(409, "POST", "devices", json{{"hub_id", hub_id}, {"name", "thermo"}}.dump());
    EXPECT_EQ(dup.at("type"), "already_exists");
    EXPECT_TRUE(dup.at("help_message").is_string());

    const auto del = call("DELETE", "devices/" + id);
    EXPECT_EQ(del.status, 204u);
    EXPECT_TRUE(del.body.empty());
    const auto gone = fails(404, "GET", "devices/" + id);
    EXPECT_EQ(gone.at("resource"), "device");
}

TEST_F(RouterTest, DeviceBadRequests) {
    const std::string hub_id = new_hub().at("id");
    EXPECT_TRUE(names_argument(fails(400, "POST", "devices", "{}"), "hub_id"));
    const auto j =
        fails(400, "POST", "devices", json{{"hub_id", hub_id}, {"allow_insecure", "yes"}}.dump());
    EXPECT_TRUE(names_argument(j, "allow_insecure"));
    json bad_body =
        json::parse(R"({"message_filters":{"publish":{"policy":"accept","topics":["a/#/b"]}}})");
    bad_body["hub_id"] = hub_id;
    const auto bad_topic = fails(400, "POST", "devices", bad_body.dump());
    EXPECT_EQ(bad_topic.at("type"), "invalid_arguments");
    const auto unknown_hub =
        fails(404, "POST", "devices", json{{"hub_id", hub::make_uuid()}}.dump());
    EXPECT_EQ(unknown_hub.at("resource"), "hub");
    EXPECT_EQ(ok("GET", "devices").at("total_count"), 0);
    EXPECT_EQ(fails(404, "PATCH", "devices/" + hub::make_uuid(),
                    R"({"message_filters":{"publish":{"policy":"accept"}}})")
                  .at("type"),
              "not_found");
}

TEST_F(RouterTest, ListDevicesFilters) {
    const std::string h1 = new_hub("h1").at("id");
    const std::string h2 = new_hub("h2").at("id");
    const std::string a = new_device(h1, {{"name", "a"}, {"allow_insecure", true}}).at("id");
    new_device(h1, {{"name", "b"}});
    new_device(h2, {{"name", "c"}});
    ok("POST", "devices/" + a + "/disable");
    EXPECT_EQ(ok("GET", "devices").at("total_count"), 3);
    EXPECT_EQ(ok("GET", "devices?hub_id=" + h1).at("total_count"), 2);
    EXPECT_EQ(ok("GET", "devices?allow_insecure=true").at("total_count"), 1);
    EXPECT_EQ(ok("GET", "devices?allow_insecure=false").at("total_count"), 2);
    EXPECT_EQ(ok("GET", "devices?status=disabled").at("devices")[0].at("id"), a);
    EXPECT_EQ(ok("GET", "devices?name=c").at("total_count"), 1);
    EXPECT_EQ(ok("GET", "devices?order_by=name_desc&page_size=1").at("devices")[0].at("name"), "c");
    EXPECT_TRUE(names_argument(fails(400, "GET", "devices?status=sleepy"), "status"));
    EXPECT_TRUE(names_argument(fails(400, "GET", "devices?allow_insecure=yes"), "allow_insecure"));
    EXPECT_TRUE(names_argument(fails(400, "GET", "devices?hub_id=h1"), "hub_id"));
    EXPECT_TRUE(names_argument(fails(400, "GET", "devices?order_by=product_plan_asc"), "order_by"));
}

// --- failures of the store: a JSON 500, never an exception ------------------------------------

class failing_store : public store::registry_store {
public:
    explicit failing_store(store::registry_store& inner) : inner_(inner) {}
    bool fail = false;
    using store::registry_store::load;  // the two-callback form
    void load(const std::function<void(store::hub_row&&)>& h,
              const std::function<void(store::device_row&&)>& d,
              const std::function<void(store::hub_ca_row&&)>& ca,
              const std::function<void(store::device_certificate_row&&)>& c) override {
        inner_.load(h, d, ca, c);
    }
    void put_hub(const store::hub_row& h) override {
        check();
        inner_.put_hub(h);
    }
    void erase_hub(const std::string& id) override {
        check();
        inner_.erase_hub(id);
    }
    void put_device(const store::device_row& d) override {
        check();
        inner_.put_device(d);
    }
    void put_devices(const std::vector<store::device_row>& ds) override {
        check();
        inner_.put_devices(ds);
    }
    void erase_device(const std::string& id) override {
        check();
        inner_.erase_device(id);
    }
    void put_hub_ca(const store::hub_row& h, const store::hub_ca_row& ca, bool drop) override {
        check();
        inner_.put_hub_ca(h, ca, drop);
    }
    void put_device_certificate(const store::device_row& d,
                                const store::device_certificate_row& c) override {
        check();
        inner_.put_device_certificate(d, c);
    }
    void put_api_key(const store::api_key_row& k) override { inner_.put_api_key(k); }
    bool erase_api_key(const std::string& a) override { return inner_.erase_api_key(a); }
    std::vector<store::api_key_row> list_api_keys() override { return inner_.list_api_keys(); }
    std::optional<store::api_key_row> find_api_key_by_hash(const std::string& h) override {
        check();
        return inner_.find_api_key_by_hash(h);
    }

private:
    void check() const {
        if (fail) throw std::runtime_error("disk on fire");
    }
    store::registry_store& inner_;
};

TEST(RouterFailures, StoreErrorsAre500AndLeaveNothing) {
    auto mem = store::make_memory_registry();
    failing_store db(*mem);
    const auto key = create_api_key(db, "", "");
    hub::registry reg(db, [] { return std::uint64_t{1}; });
    router r(reg, db, api_options{});
    db.fail = true;
    const auto res = r.handle(request{"POST", base + "hubs", key.secret_key, "{\"name\":\"x\"}"});
    EXPECT_EQ(res.status, 500u);
    EXPECT_EQ(json::parse(res.body).at("type"), "internal_error");
    db.fail = false;
    const auto list = r.handle(request{"GET", base + "hubs", key.secret_key, ""});
    EXPECT_EQ(list.status, 200u);
    EXPECT_EQ(json::parse(list.body).at("total_count"), 0);
}

// --- anything a client sends: a JSON answer with a known status, never a throw --------------

TEST_F(RouterTest, RandomRequestsAlwaysGetAJsonAnswer) {
    std::vector<std::string> paths;
    int generation = 0;
    auto fixtures = [&] {
        // Fresh ones after a successful DELETE, so every operation keeps being reached.
        const std::string hub_id = new_hub("fuzz-hub-" + std::to_string(generation++)).at("id");
        const std::string dev_id = new_device(hub_id).at("id");
        paths = {"hubs",
                 "hubs/" + hub_id,
                 "hubs/" + hub_id + "/enable",
                 "hubs/" + hub_id + "/disable",
                 "hubs/" + hub_id + "?delete_devices=true",
                 "devices",
                 "devices/" + dev_id,
                 "devices/" + dev_id + "/disable",
                 "devices/" + dev_id + "/enable",
                 "hubs/" + hub_id + "/ca",
                 "devices/" + dev_id + "/certificate",
                 "devices/" + dev_id + "/renew-certificate",
                 "server-ca",
                 "hubs/" + hub::make_uuid(),
                 "devices/%00",
                 "hubs//",
                 "/iot/v1/regions//hubs",
                 "/iot/v1/regions/fr-par/hubs?page=%",
                 "hubs?page_size=99999999999",
                 "devices?status=&hub_id=&allow_insecure=",
                 "hubs?order_by=name_asc&order_by=zzz"};
    };
    fixtures();
    const std::vector<std::string> methods = {"GET",  "POST", "PATCH", "DELETE", "PUT",
                                              "HEAD", "",     "get",   "OPTIONS"};
    const std::vector<std::string> values = {"null",
                                             "true",
                                             "1e300",
                                             "-0",
                                             "\"\"",
                                             "\"x\"",
                                             "[]",
                                             "{}",
                                             "[1,2]",
                                             "12345678901234567890",
                                             "\"6a1cf2c6-5d5b-4bd0-9e55-1d3c9e0d4a11\"",
                                             "\"\\u0000\"",
                                             "\"plan_ha\"",
                                             "\"accept\"",
                                             "{\"policy\":\"accept\",\"topics\":[\"#\"]}",
                                             "{\"push_uri\":1}",
                                             "\"\u00e9t\u00e9\""};
    const std::vector<std::string> fields = {"name",
                                             "hub_id",
                                             "project_id",
                                             "product_plan",
                                             "disable_events",
                                             "events_topic_prefix",
                                             "presence_events",
                                             "twins_graphite_config",
                                             "description",
                                             "allow_insecure",
                                             "allow_multiple_connections",
                                             "message_filters",
                                             "publish",
                                             "subscribe",
                                             "enable_device_auto_provisioning",
                                             "ca_cert_pem",
                                             "challenge_cert_pem",
                                             "certificate_pem"};
    const std::set<unsigned> statuses = {200, 204, 400, 401, 403, 404, 405, 409, 412, 501};
    std::mt19937 rng(20250123);
    auto pick = [&](const auto& v) { return v[rng() % v.size()]; };
    for (int i = 0; i < 3000; ++i) {
        std::string body;
        switch (rng() % 4) {
        case 0:
            break;
        case 1: {
            json j = json::object();
            const int n = static_cast<int>(rng() % 4);
            for (int k = 0; k < n; ++k) {
                j[pick(fields)] = json::parse(pick(values));
                if (rng() % 3 == 0)
                    j["message_filters"] = json{{pick(fields), json::parse(pick(values))}};
            }
            body = j.dump();
            break;
        }
        case 2: {
            body = json{{pick(fields), json::parse(pick(values))}}.dump();
            body = body.substr(0, rng() % (body.size() + 1));  // cut anywhere
            break;
        }
        default:
            for (int k = 0, n = static_cast<int>(rng() % 40); k < n; ++k) {
                body.push_back(static_cast<char>(rng() % 256));
            }
        }
        const std::string method = pick(methods);
        const std::string path = pick(paths);
        request req{method, path.front() == '/' ? path : base + path,
                    rng() % 10 == 0 ? std::optional<std::string>() : env.key.secret_key, body};
        const auto res = r.handle(req);
        EXPECT_TRUE(statuses.count(res.status))
            << method << " " << path << " " << body << " -> " << res.status << " " << res.body;
        if (res.status == 204) {
            EXPECT_TRUE(res.body.empty());
        } else {
            const auto j = json::parse(res.body, nullptr, false);
            ASSERT_FALSE(j.is_discarded()) << res.body;
            EXPECT_TRUE(j.is_object());
            if (res.status >= 400) {
                EXPECT_TRUE(j.at("type").is_string()) << res.body;
            }
        }
        if (method == "DELETE" && res.status == 204) fixtures();
    }
}

// --- helpers -----------------------------------------------------------------------------------

TEST(ParseQuery, DecodesAndKeepsOrder) {
    const auto q = parse_query("a=1&b=x%20y&c=p+q&&d&e=");
    ASSERT_TRUE(q);
    ASSERT_EQ(q->size(), 5u);
    EXPECT_EQ((*q)[1], (std::pair<std::string, std::string>{"b", "x y"}));
    EXPECT_EQ((*q)[2].second, "p q");
    EXPECT_EQ((*q)[3], (std::pair<std::string, std::string>{"d", ""}));
    EXPECT_FALSE(parse_query("a=%"));
    EXPECT_FALSE(parse_query("a=%4"));
    EXPECT_FALSE(parse_query("a=%zz"));
    EXPECT_EQ(percent_decode("a+b", false), "a+b");
}

}  // namespace
}  // namespace iothub::api
