// The IoT API's request handling (router, JSON mapping, registry) fed with arbitrary
// requests. Each input is a sequence of requests separated by NUL bytes:
//   byte 0: method (GET, POST, PATCH, PUT, DELETE, or a made-up one)
//   byte 1: token (valid, missing, unknown, not a UUID)
//   then the target, a 0x01 byte, and the body.
// "{hub}" and "{dev}" in a target or body stand for the last hub / device the input
// created, so the fuzzer reaches the handlers behind an id. A target that does not start
// with '/' gets "/iot/v1/regions/fr-par/" in front of it.
// Properties checked: handle() returns, with a status in 200..599 and a JSON body (or an
// empty one for 204).

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api/keys.hpp"
#include "api/router.hpp"
#include "hub/registry.hpp"
#include "store/registry_store.hpp"

using namespace iothub;

namespace {

void replace_all(std::string& s, std::string_view what, const std::string& with) {
    if (with.empty()) return;
    for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + with.size()))
        s.replace(at, what.size(), with);
}

std::string remember(const api::response& r, const char* key) {
    if (r.status != 200 || r.body.empty()) return {};
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return {};
    if (j.contains(key) && j[key].is_object()) j = j[key];
    if (j.contains("id") && j["id"].is_string() && j.contains(key == std::string("device") ? "hub_id" : "events_topic_prefix"))
        return j["id"].get<std::string>();
    return {};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::uint64_t now = 1'700'000'000'000;
    auto db = store::make_memory_registry();
    hub::registry reg(*db, [&now] { return now++; });
    reg.set_device_key_type(pki::key_type::ec_p256);  // an RSA key per device is too slow here
    const auto key = api::create_api_key(*db, "", "fuzz");
    api::router router(reg, *db, api::api_options{});

    static const char* const methods[] = {"GET", "POST", "PATCH", "PUT", "DELETE", "BREW"};
    std::string hub_id, device_id;
    std::string_view input(reinterpret_cast<const char*>(data), size);
    while (!input.empty()) {
        const auto end = input.find('\0');
        std::string_view one = input.substr(0, end);
        input = end == std::string_view::npos ? std::string_view{} : input.substr(end + 1);
        if (one.size() < 2) continue;
        api::request req;
        req.method = methods[static_cast<unsigned char>(one[0]) % 6];
        switch (static_cast<unsigned char>(one[1]) % 4) {
        case 0: req.token = key.secret_key; break;
        case 1: break;
        case 2: req.token = "0f3c6a9e-3d7a-4c55-9a43-4d4a0b6d2f11"; break;
        default: req.token = std::string(one.substr(2, 4)); break;
        }
        one.remove_prefix(2);
        const auto split = one.find('\x01');
        std::string target(one.substr(0, split));
        req.body = split == std::string_view::npos ? std::string() : std::string(one.substr(split + 1));
        if (target.empty() || target[0] != '/') target = "/iot/v1/regions/fr-par/" + target;
        replace_all(target, "{hub}", hub_id);
        replace_all(target, "{dev}", device_id);
        replace_all(req.body, "{hub}", hub_id);
        req.target = std::move(target);

        const auto r = router.handle(req);
        if (r.status < 200 || r.status > 599) std::abort();
        if (r.status != 204 && nlohmann::json::parse(r.body, nullptr, false).is_discarded()) std::abort();
        if (auto id = remember(r, "device"); !id.empty()) device_id = id;
        else if (auto h = remember(r, "hub"); !h.empty()) hub_id = h;
    }
    return 0;
}
