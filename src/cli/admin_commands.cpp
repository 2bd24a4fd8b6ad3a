#include "cli/admin_commands.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "api/client.hpp"
#include "api/json_mapping.hpp"
#include "api/keys.hpp"
#include "pki/pki.hpp"
#include "store/registry_store.hpp"

namespace iothub::cli {

using nlohmann::json;

namespace {

constexpr const char* default_data_dir = "./data";
constexpr const char* default_api_url = "http://127.0.0.1:8080";
constexpr const char* default_region = "fr-par";

// An error already worded for the user; run() prints it and exits 1.
struct command_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

bool want_json(const std::string& output) {
    if (output == "json") return true;
    if (output == "table") return false;
    return ::isatty(STDOUT_FILENO) == 0;  // a table for people, JSON for pipes
}

// --- tables ------------------------------------------------------------------------------

std::string cell(const json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_null()) return "-";
    return v.dump();
}

void print_table(const std::vector<std::string>& headers,
                 const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> width(headers.size());
    for (std::size_t i = 0; i < headers.size(); ++i) width[i] = headers[i].size();
    for (const auto& r : rows) {
        for (std::size_t i = 0; i < r.size() && i < width.size(); ++i) {
            width[i] = std::max(width[i], r[i].size());
        }
    }
    auto line = [&](const std::vector<std::string>& r) {
        std::string out;
        for (std::size_t i = 0; i < r.size(); ++i) {
            out += r[i];
            if (i + 1 < r.size()) out += std::string(width[i] - r[i].size() + 2, ' ');
        }
        std::printf("%s\n", out.c_str());
    };
    line(headers);
    for (const auto& r : rows) line(r);
}

// One resource as "FIELD  value" lines, in the given order, then any other fields.
void print_fields(const json& obj, const std::vector<std::string>& order) {
    std::vector<std::vector<std::string>> rows;
    auto render = [](const json& v) -> std::string {
        if (v.is_object() && v.contains("publish")) {  // message_filters
            std::string out;
            for (const char* rule : {"publish", "subscribe"}) {
                const json& r = v.value(rule, json::object());
                std::string topics;
                for (const auto& t : r.value("topics", json::array())) {
                    topics += (topics.empty() ? "" : ", ") + cell(t);
                }
                out += std::string(out.empty() ? "" : "; ") + rule + ": " +
                       cell(r.value("policy", json("-"))) + " [" + topics + "]";
            }
            return out;
        }
        return cell(v);
    };
    for (const auto& k : order) {
        if (obj.contains(k)) rows.push_back({k, render(obj.at(k))});
    }
    for (const auto& [k, v] : obj.items()) {
        if (std::find(order.begin(), order.end(), k) == order.end()) rows.push_back({k, render(v)});
    }
    std::size_t w = 0;
    for (const auto& r : rows) w = std::max(w, r[0].size());
    for (const auto& r : rows) {
        std::printf("%s%s  %s\n", r[0].c_str(), std::string(w - r[0].size(), ' ').c_str(),
                    r[1].c_str());
    }
}

const std::vector<std::string> hub_field_order = {"id",
                                                  "name",
                                                  "status",
                                                  "product_plan",
                                                  "enabled",
                                                  "device_count",
                                                  "connected_device_count",
                                                  "endpoint",
                                                  "region",
                                                  "project_id",
                                                  "organization_id",
                                                  "disable_events",
                                                  "events_topic_prefix",
                                                  "presence_events",
                                                  "enable_device_auto_provisioning",
                                                  "has_custom_ca",
                                                  "created_at",
                                                  "updated_at"};
const std::vector<std::string> device_field_order = {"id",
                                                     "name",
                                                     "description",
                                                     "status",
                                                     "hub_id",
                                                     "is_connected",
                                                     "last_activity_at",
                                                     "allow_insecure",
                                                     "allow_multiple_connections",
                                                     "message_filters",
                                                     "has_custom_certificate",
                                                     "region",
                                                     "created_at",
                                                     "updated_at"};

void print_hub_rows(const json& hubs) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& h : hubs) {
        rows.push_back({cell(h.value("id", json())), cell(h.value("name", json())),
                        cell(h.value("status", json())), cell(h.value("product_plan", json())),
                        cell(h.value("device_count", json())),
                        cell(h.value("connected_device_count", json())),
                        cell(h.value("created_at", json()))});
    }
    print_table({"ID", "NAME", "STATUS", "PLAN", "DEVICES", "CONNECTED", "CREATED AT"}, rows);
}

void print_device_rows(const json& devices) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& d : devices) {
        rows.push_back({cell(d.value("id", json())), cell(d.value("name", json())),
                        cell(d.value("hub_id", json())), cell(d.value("status", json())),
                        cell(d.value("is_connected", json())),
                        cell(d.value("allow_insecure", json())),
                        cell(d.value("last_activity_at", json()))});
    }
    print_table({"ID", "NAME", "HUB ID", "STATUS", "CONNECTED", "INSECURE", "LAST ACTIVITY"}, rows);
}

// --- talking to the API ------------------------------------------------------------------

std::string url_encode(const std::string& s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (const unsigned char c : s) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    std::size_t i = 0;
    while (i < s.size() && s[i] == ' ') ++i;
    return s.substr(i);
}

struct api_flags {
    std::string api_url;
    std::string token;
    std::string data_dir = default_data_dir;
    std::string region = default_region;
    std::string output;
};

class api_caller {
public:
    explicit api_caller(const api_flags& f) : region_(f.region) {
        std::string url = f.api_url;
        if (url.empty()) {
            const char* env = std::getenv("IOTHUB_API_URL");
            url = env != nullptr && *env != '\0' ? env : default_api_url;
        }
        auto parsed = api::parse_base_url(url);
        if (!parsed) {
            throw command_error("bad API URL '" + url + "': expected http://HOST[:PORT]");
        }
        url_ = std::move(*parsed);
        token_ = f.token;
        if (token_.empty()) {
            const char* env = std::getenv("IOTHUB_TOKEN");
            if (env != nullptr) token_ = env;
        }
        if (token_.empty()) {
            const auto path = std::filesystem::path(f.data_dir) / api::admin_token_file;
            std::ifstream in(path);
            std::string line;
            if (in && std::getline(in, line)) token_ = trim(line);
            if (token_.empty()) {
                throw command_error(
                    "no API token: pass --token, set IOTHUB_TOKEN, or point "
                    "--data-dir at the server's data directory (" +
                    path.string() + " was not readable)");
            }
        }
    }

    // The JSON answer of a successful call (null for 204); an API error becomes a
    // command_error holding the API's message.
    json call(const std::string& method, const std::string& resource_path,
              const std::string& body = {}) const {
        const std::string target = "/iot/v1/regions/" + url_encode(region_) + "/" + resource_path;
        const auto reply = api::http_call(url_, method, target, token_, body);
        json parsed;
        if (!reply.body.empty()) {
            parsed = json::parse(reply.body, nullptr, false);
        }
        if (reply.status >= 200 && reply.status < 300) {
            if (reply.body.empty()) return json();
            if (parsed.is_discarded()) {
                throw command_error("the API answered with something that is not JSON: " +
                                    reply.body.substr(0, 200));
            }
            return parsed;
        }
        throw command_error(describe_error(reply.status, parsed, reply.body));
    }

private:
    static std::string describe_error(unsigned status, const json& body, const std::string& raw) {
        if (!body.is_object()) {
            return "the API answered HTTP " + std::to_string(status) +
                   (raw.empty() ? "" : ": " + raw.substr(0, 200));
        }
        std::string out = body.value("message", std::string("HTTP " + std::to_string(status)));
        const auto resource = body.find("resource");
        const auto resource_id = body.find("resource_id");
        if (resource != body.end() && resource->is_string() && resource_id != body.end() &&
            resource_id->is_string()) {
            out += ": " + resource->get<std::string>() + " " + resource_id->get<std::string>();
        }
        if (const auto d = body.find("details"); d != body.end() && d->is_array()) {
            for (const auto& item : *d) {
                if (!item.is_object()) continue;
                if (item.contains("argument_name")) {
                    out += "\n  " + cell(item.value("argument_name", json())) + ": " +
                           cell(item.value("help_message", json())) + " (" +
                           cell(item.value("reason", json())) + ")";
                }
            }
        }
        if (const auto h = body.find("help_message");
            h != body.end() && h->is_string() && h->get<std::string>() != out) {
            out += " (" + h->get<std::string>() + ")";
        }
        return out;
    }

    api::base_url url_;
    std::string token_;
    std::string region_;
};

// Every page of a listing, as one {"total_count", key: [...]}.
json list_all(const api_caller& api, const std::string& resource, const std::string& query) {
    json all = json::array();
    std::uint64_t total = 0;
    for (int page = 1;; ++page) {
        std::string target = resource + "?page_size=100&page=" + std::to_string(page);
        if (!query.empty()) target += "&" + query;
        const json got = api.call("GET", target);
        total = got.value("total_count", std::uint64_t{0});
        const json items = got.value(resource, json::array());
        for (const auto& i : items) all.push_back(i);
        if (items.empty() || all.size() >= total) break;
    }
    return json{{"total_count", total}, {resource, std::move(all)}};
}

void print_json(const json& j) {
    std::printf("%s\n", j.dump(2).c_str());
}

std::string read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw command_error("cannot read " + path);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// PEM text as it is (it ends with a newline already).
void print_pem(const std::string& pem) {
    std::fputs(pem.c_str(), stdout);
    if (!pem.empty() && pem.back() != '\n') std::fputc('\n', stdout);
}

}  // namespace

// ---------------------------------------------------------------------------------------

struct admin_commands::state {
    // apikey
    CLI::App* apikey = nullptr;
    CLI::App* key_create = nullptr;
    CLI::App* key_list = nullptr;
    CLI::App* key_delete = nullptr;
    std::string key_data_dir = default_data_dir;
    std::string key_project;
    std::string key_description;
    std::string key_output;
    std::string key_access;

    // hub / device: only one leaf runs, so they share their storage.
    CLI::App* hub = nullptr;
    CLI::App* device = nullptr;
    CLI::App* leaf = nullptr;  // the parsed leaf, found in run()
    api_flags flags;
    std::string id;
    std::string name;
    std::string plan;
    std::string events_prefix;
    std::string description;
    std::string hub_ref;
    std::string filters_json;
    bool disable_events = false;
    bool presence_events = true;
    bool auto_provisioning = false;
    bool allow_insecure = false;
    bool allow_multiple = false;
    bool delete_devices = false;
    std::string ca_cert_file;
    std::string challenge_cert_file;
    std::string cert_file;

    // ca server
    CLI::App* ca = nullptr;
    CLI::App* ca_server = nullptr;
    std::string ca_data_dir = default_data_dir;

    std::vector<std::pair<CLI::App*, int (state::*)(CLI::App&) const>> leaves;

    void add_api_flags(CLI::App* sub) {
        sub->add_option("--api-url", flags.api_url,
                        "API base URL (default: $IOTHUB_API_URL or http://127.0.0.1:8080)");
        sub->add_option("--token", flags.token,
                        "secret key (default: $IOTHUB_TOKEN or <data-dir>/api-token)");
        sub->add_option("--data-dir", flags.data_dir, "where to find api-token")
            ->capture_default_str();
        sub->add_option("--region", flags.region, "region of the API")->capture_default_str();
        sub->add_option("-o,--output", flags.output,
                        "table or json (default: a table on a terminal, JSON otherwise)")
            ->check(CLI::IsMember({"table", "json"}));
    }

    CLI::App* leaf_cmd(CLI::App* parent, const char* name, const char* help,
                       int (state::*fn)(CLI::App&) const, bool takes_id) {
        auto* sub = parent->add_subcommand(name, help);
        if (takes_id) sub->add_option("ID", id, "the resource's id")->required();
        add_api_flags(sub);
        leaves.emplace_back(sub, fn);
        return sub;
    }

    // --- apikey ---
    int key_create_run(CLI::App&) const {
        auto db = store::open_sqlite_registry(key_data_dir);
        api::created_key k;
        try {
            k = api::create_api_key(*db, key_project, key_description);
        } catch (const std::invalid_argument& e) {
            throw command_error(e.what());
        }
        if (want_json(key_output)) {
            print_json(json{{"access_key", k.access_key},
                            {"secret_key", k.secret_key},
                            {"project_id", k.project_id}});
        } else {
            print_table({"ACCESS KEY", "SECRET KEY", "PROJECT ID"},
                        {{k.access_key, k.secret_key, k.project_id}});
            std::fprintf(stderr, "The secret key is shown only now: keep it somewhere safe.\n");
        }
        return 0;
    }

    void require_data_dir() const {
        if (!std::filesystem::is_directory(key_data_dir)) {
            throw command_error("no data directory " + key_data_dir);
        }
    }

    int key_list_run(CLI::App&) const {
        require_data_dir();
        auto db = store::open_sqlite_registry(key_data_dir);
        const auto keys = db->list_api_keys();
        if (want_json(key_output)) {
            json arr = json::array();
            for (const auto& k : keys) {
                arr.push_back(json{{"access_key", k.access_key},
                                   {"project_id", k.project_id},
                                   {"description", k.description},
                                   {"created_at", api::format_time(k.created_at_ms)}});
            }
            print_json(json{{"api_keys", std::move(arr)}});
        } else {
            std::vector<std::vector<std::string>> rows;
            for (const auto& k : keys) {
                rows.push_back(
                    {k.access_key, k.project_id, api::format_time(k.created_at_ms), k.description});
            }
            print_table({"ACCESS KEY", "PROJECT ID", "CREATED AT", "DESCRIPTION"}, rows);
        }
        return 0;
    }

    int key_delete_run(CLI::App&) const {
        require_data_dir();
        auto db = store::open_sqlite_registry(key_data_dir);
        if (!db->erase_api_key(key_access)) throw command_error("no API key " + key_access);
        std::printf("deleted API key %s\n", key_access.c_str());
        return 0;
    }

    // --- hub ---
    static std::string bool_text(bool b) { return b ? "true" : "false"; }

    void show(const json& j, bool is_hub) const {
        if (want_json(flags.output)) return print_json(j);
        print_fields(j, is_hub ? hub_field_order : device_field_order);
    }

    void show_deleted(const char* what) const {
        if (!want_json(flags.output)) std::printf("deleted %s %s\n", what, id.c_str());
    }

    int hub_list_run(CLI::App&) const {
        const api_caller api(flags);
        std::string q;
        if (!name.empty()) q = "name=" + url_encode(name);
        const json all = list_all(api, "hubs", q);
        if (want_json(flags.output)) return print_json(all), 0;
        print_hub_rows(all["hubs"]);
        return 0;
    }

    int hub_get_run(CLI::App&) const {
        show(api_caller(flags).call("GET", "hubs/" + url_encode(id)), true);
        return 0;
    }

    json hub_body(CLI::App& app, bool create) const {
        json body = json::object();
        if (app.count("--name") != 0) body["name"] = name;
        if (app.count("--plan") != 0) body["product_plan"] = plan;
        if (app.count("--disable-events") != 0) body["disable_events"] = disable_events;
        if (app.count("--events-topic-prefix") != 0) body["events_topic_prefix"] = events_prefix;
        if (app.count("--presence-events") != 0) body["presence_events"] = presence_events;
        if (!create && app.count("--auto-provisioning") != 0) {
            body["enable_device_auto_provisioning"] = auto_provisioning;
        }
        return body;
    }

    int hub_create_run(CLI::App& app) const {
        show(api_caller(flags).call("POST", "hubs", hub_body(app, true).dump()), true);
        return 0;
    }

    int hub_update_run(CLI::App& app) const {
        show(api_caller(flags).call("PATCH", "hubs/" + url_encode(id), hub_body(app, false).dump()),
             true);
        return 0;
    }

    int hub_enable_run(CLI::App&) const {
        show(api_caller(flags).call("POST", "hubs/" + url_encode(id) + "/enable", "{}"), true);
        return 0;
    }

    int hub_disable_run(CLI::App&) const {
        show(api_caller(flags).call("POST", "hubs/" + url_encode(id) + "/disable", "{}"), true);
        return 0;
    }

    int hub_delete_run(CLI::App&) const {
        api_caller(flags).call(
            "DELETE", "hubs/" + url_encode(id) + "?delete_devices=" + bool_text(delete_devices));
        show_deleted("hub");
        return 0;
    }

    // --- device ---
    int device_list_run(CLI::App&) const {
        const api_caller api(flags);
        std::string q;
        if (!hub_ref.empty()) q = "hub_id=" + url_encode(hub_ref);
        if (!name.empty()) q += (q.empty() ? "" : "&") + std::string("name=") + url_encode(name);
        const json all = list_all(api, "devices", q);
        if (want_json(flags.output)) return print_json(all), 0;
        print_device_rows(all["devices"]);
        return 0;
    }

    int device_get_run(CLI::App&) const {
        show(api_caller(flags).call("GET", "devices/" + url_encode(id)), false);
        return 0;
    }

    json device_body(CLI::App& app, bool create) const {
        json body = json::object();
        if (app.count("--hub") != 0) body["hub_id"] = hub_ref;
        if (create && app.count("--name") != 0) body["name"] = name;
        if (app.count("--description") != 0) body["description"] = description;
        if (app.count("--allow-insecure") != 0) body["allow_insecure"] = allow_insecure;
        if (app.count("--allow-multiple-connections") != 0) {
            body["allow_multiple_connections"] = allow_multiple;
        }
        if (app.count("--message-filters") != 0) {
            json f = json::parse(filters_json, nullptr, false);
            if (f.is_discarded() || !f.is_object()) {
                throw command_error(
                    "--message-filters must be a JSON object such as "
                    R"({"publish":{"policy":"accept","topics":["a/#"]}})");
            }
            body["message_filters"] = std::move(f);
        }
        return body;
    }

    // A device and, when the hub issued one, its certificate and key: shown only now.
    void show_with_certificate(const json& got) const {
        if (want_json(flags.output)) return print_json(got);
        show(got.value("device", json::object()), false);
        const auto cert = got.find("certificate");
        if (cert == got.end() || !cert->is_object()) return;
        std::printf("\n");
        print_pem(cert->value("crt", std::string()));
        print_pem(cert->value("key", std::string()));
        std::fprintf(stderr, "The private key is shown only now: keep it somewhere safe.\n");
    }

    int device_create_run(CLI::App& app) const {
        show_with_certificate(
            api_caller(flags).call("POST", "devices", device_body(app, true).dump()));
        return 0;
    }

    int device_get_certificate_run(CLI::App&) const {
        const json got =
            api_caller(flags).call("GET", "devices/" + url_encode(id) + "/certificate");
        if (want_json(flags.output)) return print_json(got), 0;
        print_pem(got.value("certificate_pem", std::string()));
        return 0;
    }

    int device_renew_certificate_run(CLI::App&) const {
        show_with_certificate(api_caller(flags).call(
            "POST", "devices/" + url_encode(id) + "/renew-certificate", "{}"));
        return 0;
    }

    int device_set_certificate_run(CLI::App&) const {
        const json body{{"certificate_pem", read_text_file(cert_file)}};
        const json got = api_caller(flags).call("PUT", "devices/" + url_encode(id) + "/certificate",
                                                body.dump());
        if (want_json(flags.output)) return print_json(got), 0;
        show(got.value("device", json::object()), false);
        return 0;
    }

    int hub_get_ca_run(CLI::App&) const {
        const json got = api_caller(flags).call("GET", "hubs/" + url_encode(id) + "/ca");
        if (want_json(flags.output)) return print_json(got), 0;
        print_pem(got.value("ca_cert_pem", std::string()));
        return 0;
    }

    int hub_set_ca_run(CLI::App&) const {
        const json body{{"ca_cert_pem", read_text_file(ca_cert_file)},
                        {"challenge_cert_pem", read_text_file(challenge_cert_file)}};
        show(api_caller(flags).call("POST", "hubs/" + url_encode(id) + "/ca", body.dump()), true);
        return 0;
    }

    // --- ca ---
    int ca_server_run() const {
        try {
            print_pem(pki::load_or_create_server_ca(ca_data_dir).cert_pem);
        } catch (const pki::error& e) {
            throw command_error(e.what());
        }
        return 0;
    }

    int device_update_run(CLI::App& app) const {
        show(api_caller(flags).call("PATCH", "devices/" + url_encode(id),
                                    device_body(app, false).dump()),
             false);
        return 0;
    }

    int device_enable_run(CLI::App&) const {
        show(api_caller(flags).call("POST", "devices/" + url_encode(id) + "/enable", "{}"), false);
        return 0;
    }

    int device_disable_run(CLI::App&) const {
        show(api_caller(flags).call("POST", "devices/" + url_encode(id) + "/disable", "{}"), false);
        return 0;
    }

    int device_delete_run(CLI::App&) const {
        api_caller(flags).call("DELETE", "devices/" + url_encode(id));
        show_deleted("device");
        return 0;
    }
};

admin_commands::admin_commands(CLI::App& app) : state_(std::make_unique<state>()) {
    state& s = *state_;

    // apikey
    s.apikey = app.add_subcommand("apikey", "Manage API keys (works on <data-dir>/iothub.db)");
    s.apikey->require_subcommand(1);
    s.key_create = s.apikey->add_subcommand("create", "Create a key; prints its secret once");
    s.key_create->add_option("--data-dir", s.key_data_dir, "data directory")->capture_default_str();
    s.key_create->add_option("--project", s.key_project,
                             "project of the key (UUID; default: a new project)");
    s.key_create->add_option("--description", s.key_description, "what the key is for");
    s.key_create->add_option("-o,--output", s.key_output, "table or json")
        ->check(CLI::IsMember({"table", "json"}));
    s.key_list = s.apikey->add_subcommand("list", "List the keys (never their secrets)");
    s.key_list->add_option("--data-dir", s.key_data_dir, "data directory")->capture_default_str();
    s.key_list->add_option("-o,--output", s.key_output, "table or json")
        ->check(CLI::IsMember({"table", "json"}));
    s.key_delete = s.apikey->add_subcommand(
        "delete", "Delete a key (a running server may accept it for up to 30 s more)");
    s.key_delete->add_option("ACCESS_KEY", s.key_access, "the key's access key (SCW…)")->required();
    s.key_delete->add_option("--data-dir", s.key_data_dir, "data directory")->capture_default_str();

    // hub
    s.hub = app.add_subcommand("hub", "Manage hubs through the management API");
    s.hub->require_subcommand(1);
    auto* hl = s.leaf_cmd(s.hub, "list", "List hubs", &state::hub_list_run, false);
    hl->add_option("--name", s.name, "only hubs whose name contains this");
    s.leaf_cmd(s.hub, "get", "Show a hub", &state::hub_get_run, true);
    auto hub_fields = [&s](CLI::App* c, bool update) {
        c->add_option("--name", s.name, "hub name");
        c->add_option("--plan", s.plan, "product plan")
            ->check(CLI::IsMember({"plan_shared", "plan_dedicated", "plan_ha"}));
        c->add_flag("--disable-events", s.disable_events,
                    "publish no hub events (--disable-events=false to publish them)");
        c->add_option("--events-topic-prefix", s.events_prefix, "topic prefix of hub events");
        c->add_flag("--presence-events", s.presence_events,
                    "publish device connected/disconnected events (=false to stop)");
        if (update) {
            c->add_flag("--auto-provisioning", s.auto_provisioning,
                        "enable device auto-provisioning (=false to disable)");
        }
    };
    hub_fields(s.leaf_cmd(s.hub, "create", "Create a hub", &state::hub_create_run, false), false);
    hub_fields(s.leaf_cmd(s.hub, "update", "Change a hub", &state::hub_update_run, true), true);
    s.leaf_cmd(s.hub, "enable", "Enable a hub", &state::hub_enable_run, true);
    s.leaf_cmd(s.hub, "disable", "Disable a hub (disconnects its devices)", &state::hub_disable_run,
               true);
    auto* hd = s.leaf_cmd(s.hub, "delete", "Delete a hub", &state::hub_delete_run, true);
    hd->add_flag("--delete-devices", s.delete_devices, "also delete the hub's devices");
    s.leaf_cmd(s.hub, "get-ca", "Print the hub's certificate authority (PEM)",
               &state::hub_get_ca_run, true);
    auto* hs = s.leaf_cmd(s.hub, "set-ca",
                          "Give the hub your own certificate authority (the hub must be "
                          "disabled; irreversible)",
                          &state::hub_set_ca_run, true);
    hs->add_option("--ca-cert", s.ca_cert_file, "PEM file of the CA certificate")->required();
    hs->add_option("--challenge-cert", s.challenge_cert_file,
                   "PEM file of a certificate that CA signed, common name = the hub id")
        ->required();

    // device
    s.device = app.add_subcommand("device", "Manage devices through the management API");
    s.device->require_subcommand(1);
    auto* dl = s.leaf_cmd(s.device, "list", "List devices", &state::device_list_run, false);
    dl->add_option("--hub", s.hub_ref, "only the devices of this hub");
    dl->add_option("--name", s.name, "only devices whose name contains this");
    s.leaf_cmd(s.device, "get", "Show a device", &state::device_get_run, true);
    auto device_fields = [&s](CLI::App* c, bool create) {
        if (create) {
            c->add_option("--hub", s.hub_ref, "the device's hub")->required();
            c->add_option("--name", s.name, "device name (unique in its hub; read-only later)");
        } else {
            c->add_option("--hub", s.hub_ref, "move the device to this hub");
        }
        c->add_option("--description", s.description, "free text");
        c->add_flag("--allow-insecure", s.allow_insecure,
                    "allow connections without a client certificate (=false to forbid)");
        c->add_flag("--allow-multiple-connections", s.allow_multiple,
                    "allow several connections at once (=false to forbid)");
        c->add_option("--message-filters", s.filters_json,
                      R"(JSON such as {"publish":{"policy":"accept","topics":["a/#"]}})");
    };
    device_fields(
        s.leaf_cmd(s.device, "create", "Create a device", &state::device_create_run, false), true);
    device_fields(
        s.leaf_cmd(s.device, "update", "Change a device", &state::device_update_run, true), false);
    s.leaf_cmd(s.device, "enable", "Enable a device", &state::device_enable_run, true);
    s.leaf_cmd(s.device, "disable", "Disable a device (disconnects it)", &state::device_disable_run,
               true);
    s.leaf_cmd(s.device, "delete", "Delete a device", &state::device_delete_run, true);
    s.leaf_cmd(s.device, "get-certificate", "Print the device's certificate (PEM)",
               &state::device_get_certificate_run, true);
    s.leaf_cmd(s.device, "renew-certificate",
               "Issue a new certificate and key (disconnects the device)",
               &state::device_renew_certificate_run, true);
    auto* dc = s.leaf_cmd(s.device, "set-certificate",
                          "Give the device your own certificate (disconnects the device)",
                          &state::device_set_certificate_run, true);
    dc->add_option("--cert", s.cert_file, "PEM file of the certificate")->required();

    // ca
    s.ca = app.add_subcommand("ca", "Certificate authorities of this server");
    s.ca->require_subcommand(1);
    s.ca_server = s.ca->add_subcommand(
        "server",
        "Print the server CA certificate (PEM) devices use to verify the hub; made in the data "
        "directory if missing");
    s.ca_server->add_option("--data-dir", s.ca_data_dir, "data directory")->capture_default_str();
}

admin_commands::~admin_commands() = default;

bool admin_commands::parsed() const {
    return state_->apikey->parsed() || state_->hub->parsed() || state_->device->parsed() ||
           state_->ca->parsed();
}

int admin_commands::run() const {
    const state& s = *state_;
    try {
        if (s.key_create->parsed()) return s.key_create_run(*s.key_create);
        if (s.key_list->parsed()) return s.key_list_run(*s.key_list);
        if (s.key_delete->parsed()) return s.key_delete_run(*s.key_delete);
        if (s.ca_server->parsed()) return s.ca_server_run();
        for (const auto& [app, fn] : s.leaves) {
            if (app->parsed()) return (s.*fn)(*app);
        }
        std::fprintf(stderr, "iothub: no command\n");
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "iothub: %s\n", e.what());
        return 1;
    }
}

}  // namespace iothub::cli
