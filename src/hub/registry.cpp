#include "hub/registry.hpp"

#include <algorithm>
#include <array>
#include <compare>
#include <map>
#include <mutex>
#include <random>
#include <utility>

#include "hub/registry_checks.hpp"
#include "hub/registry_internal.hpp"
#include "store/registry_store.hpp"

namespace iothub::hub {

namespace detail {

// ---------------------------------------------------------------------------------------
// Errors, with the messages of the IoT API (registry_internal.hpp).

registry_error not_found(std::string resource, std::string_view id) {
    registry_error e(error_kind::not_found, "resource is not found");
    e.resource = std::move(resource);
    e.resource_id = std::string(id);
    return e;
}

registry_error invalid(std::vector<argument_error> details) {
    registry_error e(error_kind::invalid_arguments, "invalid argument(s)");
    e.details = std::move(details);
    return e;
}

registry_error invalid(std::string argument, std::string reason, std::string help) {
    return invalid({{std::move(argument), std::move(reason), std::move(help)}});
}

registry_error precondition(std::string which, std::string help) {
    registry_error e(error_kind::precondition_failed, "precondition is not respected");
    e.precondition = std::move(which);
    e.help_message = std::move(help);
    return e;
}

registry_error already_exists(std::string resource, std::string_view id) {
    registry_error e(error_kind::already_exists, "resource already exists");
    e.resource = std::move(resource);
    e.resource_id = std::string(id);
    return e;
}

registry_error quota_exceeded(std::string resource, const std::string& what) {
    registry_error e(error_kind::quotas_exceeded, "quota exceeded: " + what);
    e.resource = std::move(resource);
    return e;
}

}  // namespace detail

using detail::already_exists;
using detail::invalid;
using detail::not_found;
using detail::precondition;
using detail::quota_exceeded;

namespace {

constexpr std::uint32_t max_page_size = 100;

// ---------------------------------------------------------------------------------------
// Names

std::string random_name(std::string_view prefix) {
    static constexpr std::array<std::string_view, 24> adjectives = {
        "amber",  "brave",  "bright", "calm",   "clever", "cosmic", "crisp", "eager",
        "fuzzy",  "gentle", "happy",  "jolly",  "keen",   "lively", "lucky", "mellow",
        "nimble", "quiet",  "rapid",  "silver", "sunny",  "swift",  "vivid", "witty"};
    static constexpr std::array<std::string_view, 24> nouns = {
        "antelope", "badger", "beacon", "comet",   "falcon", "fennec", "gecko",  "heron",
        "ibis",     "koala",  "lynx",   "meteor",  "nebula", "otter",  "panda",  "pulsar",
        "quasar",   "raven",  "robin",  "sparrow", "tiger",  "walrus", "wombat", "zebra"};
    // Names need not be secret, only varied: a per-thread engine seeded once is enough.
    thread_local std::mt19937 engine{std::random_device{}()};
    std::uniform_int_distribution<std::size_t> adjective(0, adjectives.size() - 1);
    std::uniform_int_distribution<std::size_t> noun(0, nouns.size() - 1);
    std::uniform_int_distribution<int> number(1000, 9999);
    std::string name(prefix);
    name += '-';
    name += adjectives[adjective(engine)];
    name += '-';
    name += nouns[noun(engine)];
    name += '-';
    name += std::to_string(number(engine));
    return name;
}

// ---------------------------------------------------------------------------------------
// Store rows

store::hub_row to_row(const hub_record& h) {
    store::hub_row r;
    r.id = h.id;
    r.project_id = h.project_id;
    r.organization_id = h.organization_id;
    r.name = h.name;
    r.product_plan = std::string(to_string(h.plan));
    r.enabled = h.enabled;
    r.disable_events = h.disable_events;
    r.events_topic_prefix = h.events_topic_prefix;
    r.enable_device_auto_provisioning = h.enable_device_auto_provisioning;
    r.has_custom_ca = h.has_custom_ca;
    r.presence_events = h.presence_events;
    r.twins_graphite_push_uri = h.twins_graphite_push_uri.value_or("");
    r.created_at_ms = h.created_at_ms;
    r.updated_at_ms = h.updated_at_ms;
    return r;
}

template <typename E>
E parse_stored(std::optional<E> value, const std::string& text, const std::string& id) {
    if (!value)
        throw std::runtime_error("registry: record " + id + " holds unknown value '" + text + "'");
    return *value;
}

hub_ptr from_row(store::hub_row&& r) {
    auto h = std::make_shared<hub_record>();
    h->plan = parse_stored(parse_product_plan(r.product_plan), r.product_plan, r.id);
    h->id = std::move(r.id);
    h->name = std::move(r.name);
    h->project_id = std::move(r.project_id);
    h->organization_id = std::move(r.organization_id);
    h->enabled = r.enabled;
    h->disable_events = r.disable_events;
    h->events_topic_prefix = std::move(r.events_topic_prefix);
    h->enable_device_auto_provisioning = r.enable_device_auto_provisioning;
    h->has_custom_ca = r.has_custom_ca;
    h->presence_events = r.presence_events;
    if (!r.twins_graphite_push_uri.empty())
        h->twins_graphite_push_uri = std::move(r.twins_graphite_push_uri);
    h->created_at_ms = r.created_at_ms;
    h->updated_at_ms = r.updated_at_ms;
    return h;
}

store::device_row to_row(const device_record& d, std::uint64_t last_activity_ms) {
    store::device_row r;
    r.id = d.id;
    r.hub_id = d.hub_id;
    r.name = d.name;
    r.description = d.description;
    r.enabled = d.enabled;
    r.allow_insecure = d.allow_insecure;
    r.allow_multiple_connections = d.allow_multiple_connections;
    r.publish_policy = std::string(to_string(d.filters.publish.policy));
    r.publish_topics = d.filters.publish.topics;
    r.subscribe_policy = std::string(to_string(d.filters.subscribe.policy));
    r.subscribe_topics = d.filters.subscribe.topics;
    r.has_custom_certificate = d.has_custom_certificate;
    r.created_at_ms = d.created_at_ms;
    r.updated_at_ms = d.updated_at_ms;
    r.last_activity_at_ms = last_activity_ms;
    return r;
}

device_ptr from_row(store::device_row&& r) {
    auto d = std::make_shared<device_record>();
    d->filters.publish.policy =
        parse_stored(parse_filter_policy(r.publish_policy), r.publish_policy, r.id);
    d->filters.subscribe.policy =
        parse_stored(parse_filter_policy(r.subscribe_policy), r.subscribe_policy, r.id);
    d->filters.publish.topics = std::move(r.publish_topics);
    d->filters.subscribe.topics = std::move(r.subscribe_topics);
    d->id = std::move(r.id);
    d->hub_id = std::move(r.hub_id);
    d->name = std::move(r.name);
    d->description = std::move(r.description);
    d->enabled = r.enabled;
    d->allow_insecure = r.allow_insecure;
    d->allow_multiple_connections = r.allow_multiple_connections;
    d->has_custom_certificate = r.has_custom_certificate;
    d->created_at_ms = r.created_at_ms;
    d->updated_at_ms = r.updated_at_ms;
    return d;
}

// ---------------------------------------------------------------------------------------
// Lists: paging and the order_by values of the SDK (ListHubsRequestOrderBy,
// ListDevicesRequestOrderBy). Its default is creation date, ascending.

constexpr std::string_view default_order = "created_at_asc";

hub_status status_of(const hub_record& h) {
    return h.enabled ? hub_status::ready : hub_status::disabled;
}
device_status status_of(const device_record& d) {
    return d.enabled ? device_status::enabled : device_status::disabled;
}

template <typename R>
struct sort_key {
    std::string_view name;
    std::weak_ordering (*compare)(const R&, const R&);
};

template <auto member>
std::weak_ordering by_field(const auto& a, const auto& b) {
    return a.*member <=> b.*member;
}

// Enum columns sort in the enum's declared order, as the API's database does.
template <typename E>
std::weak_ordering by_enum(E a, E b) {
    return static_cast<int>(a) <=> static_cast<int>(b);
}

std::weak_ordering by_status(const auto& a, const auto& b) {
    return by_enum(status_of(a), status_of(b));
}

std::weak_ordering by_plan(const hub_record& a, const hub_record& b) {
    return by_enum(a.plan, b.plan);
}

constexpr std::array<sort_key<hub_record>, 5> hub_keys{{
    {"name", by_field<&hub_record::name>},
    {"status", by_status},
    {"product_plan", by_plan},
    {"created_at", by_field<&hub_record::created_at_ms>},
    {"updated_at", by_field<&hub_record::updated_at_ms>},
}};

constexpr std::array<sort_key<device_record>, 6> device_keys{{
    {"name", by_field<&device_record::name>},
    {"status", by_status},
    {"hub_id", by_field<&device_record::hub_id>},
    {"created_at", by_field<&device_record::created_at_ms>},
    {"updated_at", by_field<&device_record::updated_at_ms>},
    {"allow_insecure", by_field<&device_record::allow_insecure>},
}};

template <typename R>
struct ordering {
    sort_key<R> key;
    bool descending = false;

    // Ties go by id, ascending either way, so pages neither repeat nor skip an item.
    bool before(const R& a, const R& b) const {
        const std::weak_ordering c = descending ? key.compare(b, a) : key.compare(a, b);
        if (c != 0) return c < 0;
        return a.id < b.id;
    }
};

// Validates the paging arguments and finds the ordering "<key>_asc" / "<key>_desc".
template <typename R, std::size_t N>
ordering<R> parse_paging(const paging& p, const std::array<sort_key<R>, N>& keys) {
    std::vector<argument_error> errors;
    if (p.page < 1) errors.push_back({"page", "constraint", "must be at least 1"});
    if (p.page_size < 1 || p.page_size > max_page_size) {
        errors.push_back({"page_size", "constraint", "must be between 1 and 100"});
    }
    const std::string_view order =
        p.order_by.empty() ? default_order : std::string_view(p.order_by);
    std::optional<ordering<R>> found;
    const auto underscore = order.rfind('_');
    if (underscore != std::string_view::npos) {
        const auto direction = order.substr(underscore + 1);
        const auto name = order.substr(0, underscore);
        for (const auto& key : keys) {
            if (key.name == name && (direction == "asc" || direction == "desc")) {
                found = ordering<R>{key, direction == "desc"};
            }
        }
    }
    if (!found)
        errors.push_back({"order_by", "format", "unknown ordering '" + std::string(order) + "'"});
    if (!errors.empty()) throw invalid(std::move(errors));
    return *found;
}

template <typename Item, typename View, typename R, typename MakeView>
page<View> page_of(std::vector<Item>& items, const paging& p, const ordering<R>& order,
                   const R& (*record)(const Item&), MakeView&& make_view) {
    std::sort(items.begin(), items.end(),
              [&](const Item& a, const Item& b) { return order.before(record(a), record(b)); });
    page<View> out;
    out.total_count = items.size();
    const std::uint64_t first = static_cast<std::uint64_t>(p.page - 1) * p.page_size;
    for (std::uint64_t i = first; i < items.size() && i < first + p.page_size; ++i) {
        out.items.push_back(make_view(items[i]));
    }
    return out;
}

void check_plan_change(const hub_record& hub, product_plan plan, bool multiple_connections) {
    if (hub.enabled) {
        throw precondition("resource_not_usable",
                           "the hub must be disabled to change its product plan");
    }
    if (plan == product_plan::plan_shared && multiple_connections) {
        throw precondition("resource_still_in_use",
                           "devices of the hub allow multiple connections, which plan_shared "
                           "does not offer; change them first");
    }
}

template <typename T>
bool assign(T& field, const std::optional<T>& value) {
    if (!value || *value == field) return false;
    field = *value;
    return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Lifetime and lookups

registry::registry(store::registry_store& db, clock_fn clock, registry_limits limits)
    : db_(db), clock_(std::move(clock)), limits_(limits), idx_(std::make_unique<indexes>()) {}

registry::~registry() = default;

void registry::load() {
    std::unordered_map<std::string, hub_ptr> hubs;
    std::unordered_map<std::string, device_ptr> devices;
    std::vector<store::hub_ca_row> ca_rows;
    std::vector<store::device_certificate_row> certificate_rows;
    indexes fresh;
    std::unique_lock writes(idx_->write_mutex);
    db_.load(
        [&](store::hub_row&& r) {
            hub_ptr h = from_row(std::move(r));
            hubs.emplace(h->id, h);
        },
        [&](store::device_row&& r) {
            const std::uint64_t activity = r.last_activity_at_ms;
            device_ptr d = from_row(std::move(r));
            fresh.activity_of[d->id] = {activity, activity};
            devices.emplace(d->id, std::move(d));
        },
        [&](store::hub_ca_row&& r) { ca_rows.push_back(std::move(r)); },
        [&](store::device_certificate_row&& r) { certificate_rows.push_back(std::move(r)); });
    for (auto& r : ca_rows) {
        if (hubs.contains(r.hub_id)) fresh.put_ca(r.hub_id, detail::ca_entry_of(r));
    }
    for (auto& r : certificate_rows) {
        const auto it = devices.find(r.device_id);
        if (it == devices.end()) continue;
        auto d = std::make_shared<device_record>(*it->second);
        d->certificate_fingerprint = r.fingerprint;
        it->second = std::move(d);
        fresh.put_certificate(
            r.device_id, {std::move(r.cert_pem), std::move(r.fingerprint), r.kind == "issued"});
    }
    for (const auto& [id, d] : devices) fresh.by_hub[d->hub_id].emplace(d->name, d);
    // Hubs made before the PKI existed get their CA now.
    for (const auto& [id, h] : hubs) {
        if (fresh.cas.contains(id)) continue;
        const store::hub_ca_row ca = detail::make_hub_ca(id);
        db_.put_hub_ca(to_row(*h), ca, false);
        fresh.put_ca(id, detail::ca_entry_of(ca));
    }
    std::unique_lock lock(mutex_);
    hubs_ = std::move(hubs);
    devices_ = std::move(devices);
    idx_->by_hub = std::move(fresh.by_hub);
    idx_->cas = std::move(fresh.cas);
    idx_->ca_by_subject = std::move(fresh.ca_by_subject);
    idx_->certificates = std::move(fresh.certificates);
    idx_->device_by_fingerprint = std::move(fresh.device_by_fingerprint);
    std::lock_guard activity_lock(idx_->activity_mutex);
    idx_->activity_of = std::move(fresh.activity_of);
}

hub_ptr registry::find_hub(std::string_view id) const {
    std::shared_lock lock(mutex_);
    const auto it = hubs_.find(std::string(id));
    return it == hubs_.end() ? nullptr : it->second;
}

device_ptr registry::find_device(std::string_view id) const {
    std::shared_lock lock(mutex_);
    const auto it = devices_.find(std::string(id));
    return it == devices_.end() ? nullptr : it->second;
}

device_ptr registry::find_device_by_name(std::string_view hub_id, std::string_view name) const {
    std::shared_lock lock(mutex_);
    const auto hub = idx_->by_hub.find(std::string(hub_id));
    if (hub == idx_->by_hub.end()) return nullptr;
    const auto it = hub->second.find(std::string(name));
    return it == hub->second.end() ? nullptr : it->second;
}

std::vector<device_ptr> registry::devices_of(std::string_view hub_id) const {
    std::shared_lock lock(mutex_);
    std::vector<device_ptr> out;
    const auto hub = idx_->by_hub.find(std::string(hub_id));
    if (hub == idx_->by_hub.end()) return out;
    out.reserve(hub->second.size());
    for (const auto& [name, d] : hub->second) out.push_back(d);
    return out;
}

hub_ptr registry::hub_in_scope(const scope& sc, std::string_view id) const {
    const auto it = hubs_.find(std::string(id));
    if (it == hubs_.end() || it->second->project_id != sc.project_id) throw not_found("hub", id);
    return it->second;
}

device_ptr registry::device_in_scope(const scope& sc, std::string_view id) const {
    const auto it = devices_.find(std::string(id));
    if (it != devices_.end()) {
        const auto hub = hubs_.find(it->second->hub_id);
        if (hub != hubs_.end() && hub->second->project_id == sc.project_id) return it->second;
    }
    throw not_found("device", id);
}

std::uint64_t registry::device_count(const std::string& hub_id) const {
    const auto it = idx_->by_hub.find(hub_id);
    return it == idx_->by_hub.end() ? 0 : it->second.size();
}

hub_view registry::hub_view_of(hub_ptr h, hub_status status, std::uint64_t devices) const {
    hub_view v;
    v.connected_device_count = presence_ != nullptr ? presence_->connected_devices(h->id) : 0;
    v.hub = std::move(h);
    v.status = status;
    v.device_count = devices;
    return v;
}

device_view registry::device_view_of(device_ptr d) const {
    device_view v;
    if (presence_ != nullptr) {
        v.is_connected = presence_->is_connected(d->id);
        v.last_activity_at_ms = presence_->last_activity_ms(d->id);
    }
    if (v.last_activity_at_ms == 0) {
        // Presence knows only what happened since start-up; the store remembers before.
        std::lock_guard lock(idx_->activity_mutex);
        const auto it = idx_->activity_of.find(d->id);
        if (it != idx_->activity_of.end()) v.last_activity_at_ms = it->second.latest;
    }
    v.device = std::move(d);
    return v;
}

// ---------------------------------------------------------------------------------------
// Writes

void registry::commit_hub(const hub_ptr& after) {
    db_.put_hub(to_row(*after));
    std::unique_lock lock(mutex_);
    hubs_[after->id] = after;
}

void registry::commit_device(const device_ptr& before, const device_ptr& after) {
    std::uint64_t activity = 0;
    {
        std::lock_guard lock(idx_->activity_mutex);
        if (const auto it = idx_->activity_of.find(after->id); it != idx_->activity_of.end()) {
            activity = it->second.latest;
        }
    }
    db_.put_device(to_row(*after, activity));
    {
        std::unique_lock lock(mutex_);
        if (before != nullptr) idx_->by_hub[before->hub_id].erase(before->name);
        idx_->by_hub[after->hub_id][after->name] = after;
        devices_[after->id] = after;
    }
    std::lock_guard lock(idx_->activity_mutex);
    if (const auto it = idx_->activity_of.find(after->id); it != idx_->activity_of.end()) {
        it->second.persisted = std::max(it->second.persisted, activity);
    }
}

void registry::commit_hub_ca(const hub_ptr& after, const store::hub_ca_row& ca, bool drop_issued,
                             const std::vector<std::pair<device_ptr, device_ptr>>& changed) {
    auto entry = detail::ca_entry_of(ca);
    db_.put_hub_ca(to_row(*after), ca, drop_issued);
    std::unique_lock lock(mutex_);
    hubs_[after->id] = after;
    idx_->put_ca(after->id, std::move(entry));
    for (const auto& [before, next] : changed) {
        idx_->drop_certificate(before->id);
        idx_->by_hub[next->hub_id][next->name] = next;
        devices_[next->id] = next;
    }
}

void registry::commit_device_certificate(const device_ptr& before, const device_ptr& after,
                                         const std::string& pem, bool issued) {
    std::uint64_t activity = 0;
    {
        std::lock_guard lock(idx_->activity_mutex);
        if (const auto it = idx_->activity_of.find(after->id); it != idx_->activity_of.end()) {
            activity = it->second.latest;
        }
    }
    store::device_certificate_row row{after->id, pem, after->certificate_fingerprint,
                                      issued ? "issued" : "custom"};
    db_.put_device_certificate(to_row(*after, activity), row);
    {
        std::unique_lock lock(mutex_);
        if (before != nullptr) idx_->by_hub[before->hub_id].erase(before->name);
        idx_->by_hub[after->hub_id][after->name] = after;
        devices_[after->id] = after;
        idx_->put_certificate(after->id, {pem, after->certificate_fingerprint, issued});
    }
    std::lock_guard lock(idx_->activity_mutex);
    if (const auto it = idx_->activity_of.find(after->id); it != idx_->activity_of.end()) {
        it->second.persisted = std::max(it->second.persisted, activity);
    }
}

void registry::notify(const hub_ptr& before, const hub_ptr& after) const {
    if (listener_ != nullptr) listener_->hub_changed(before, after);
}

void registry::notify(const device_ptr& before, const device_ptr& after) const {
    if (listener_ != nullptr) listener_->device_changed(before, after);
}

std::string registry::unused_device_name(const std::string& hub_id) const {
    const auto hub = idx_->by_hub.find(hub_id);
    for (;;) {
        std::string name = random_name("device");
        if (hub == idx_->by_hub.end() || !hub->second.contains(name)) return name;
    }
}

// ---------------------------------------------------------------------------------------
// Hubs

hub_view registry::create_hub(const scope& sc, const hub_create& req) {
    if (!req.project_id.empty() && req.project_id != sc.project_id) {
        throw registry_error(error_kind::permissions_denied, "insufficient permissions");
    }
    auto h = std::make_shared<hub_record>();
    h->id = make_uuid();
    h->name = req.name.empty() ? random_name("hub") : req.name;
    h->project_id = sc.project_id;
    h->organization_id = sc.project_id;  // single-project organisations, as Scaleway's default
    h->plan = req.plan == product_plan::plan_unknown ? product_plan::plan_shared : req.plan;
    h->disable_events = req.disable_events.value_or(false);
    h->events_topic_prefix =
        req.events_topic_prefix.value_or(std::string(default_events_topic_prefix));
    h->presence_events = req.presence_events.value_or(true);
    if (req.twins_graphite_push_uri && !req.twins_graphite_push_uri->empty()) {
        h->twins_graphite_push_uri = req.twins_graphite_push_uri;
    }

    std::vector<argument_error> errors;
    if (auto e = checks::hub_name(h->name)) errors.push_back(std::move(*e));
    if (auto e = checks::events_topic_prefix(h->events_topic_prefix))
        errors.push_back(std::move(*e));
    if (!errors.empty()) throw invalid(std::move(errors));

    const store::hub_ca_row ca = detail::make_hub_ca(h->id);  // before the lock: a key pair
    {
        std::unique_lock writes(idx_->write_mutex);
        const auto owned = std::count_if(hubs_.begin(), hubs_.end(), [&](const auto& entry) {
            return entry.second->project_id == sc.project_id;
        });
        if (static_cast<std::uint64_t>(owned) >= limits_.max_hubs_per_project) {
            throw quota_exceeded(
                "hub", std::to_string(limits_.max_hubs_per_project) + " hubs per project");
        }
        h->created_at_ms = h->updated_at_ms = clock_();
        commit_hub_ca(h, ca, false);
    }
    notify(nullptr, h);
    return hub_view_of(h, hub_status::enabling, 0);
}

hub_view registry::get_hub(const scope& sc, std::string_view id) const {
    hub_ptr h;
    std::uint64_t devices = 0;
    {
        std::shared_lock lock(mutex_);
        h = hub_in_scope(sc, id);
        devices = device_count(h->id);
    }
    const hub_status status = status_of(*h);
    return hub_view_of(std::move(h), status, devices);
}

page<hub_view> registry::list_hubs(const scope& sc, const hub_filter& f, const paging& p) const {
    const auto order = parse_paging(p, hub_keys);
    using item = std::pair<hub_ptr, std::uint64_t>;  // the hub and its device count
    std::vector<item> items;
    // Another project's id in a filter matches nothing: its hubs are not the caller's to see.
    const bool other_project = (f.project_id && *f.project_id != sc.project_id) ||
                               (f.organization_id && *f.organization_id != sc.project_id);
    if (!other_project) {
        std::shared_lock lock(mutex_);
        for (const auto& [id, h] : hubs_) {
            if (h->project_id != sc.project_id) continue;
            if (f.name && h->name.find(*f.name) == std::string::npos) continue;
            items.emplace_back(h, device_count(id));
        }
    }
    const auto record = +[](const item& i) -> const hub_record& { return *i.first; };
    return page_of<item, hub_view>(items, p, order, record, [this](const item& i) {
        return hub_view_of(i.first, status_of(*i.first), i.second);
    });
}

hub_view registry::update_hub(const scope& sc, std::string_view id, const hub_update& req) {
    std::vector<argument_error> errors;
    if (req.name) {
        if (req.name->empty())
            errors.push_back({"name", "required", "must not be empty"});
        else if (auto e = checks::hub_name(*req.name))
            errors.push_back(std::move(*e));
    }
    if (req.events_topic_prefix) {
        if (auto e = checks::events_topic_prefix(*req.events_topic_prefix))
            errors.push_back(std::move(*e));
    }
    if (!errors.empty()) throw invalid(std::move(errors));

    hub_ptr before;
    hub_ptr after;
    std::uint64_t devices = 0;
    {
        std::unique_lock writes(idx_->write_mutex);
        before = hub_in_scope(sc, id);
        devices = device_count(before->id);
        hub_record next = *before;
        bool changed = assign(next.name, req.name);
        changed |= assign(next.disable_events, req.disable_events);
        changed |= assign(next.events_topic_prefix, req.events_topic_prefix);
        changed |= assign(next.presence_events, req.presence_events);
        if (req.twins_graphite_push_uri) {
            std::optional<std::string> uri;  // empty: none
            if (!req.twins_graphite_push_uri->empty()) uri = req.twins_graphite_push_uri;
            changed |= uri != next.twins_graphite_push_uri;
            next.twins_graphite_push_uri = std::move(uri);
        }
        // plan_unknown is the API's "not set".
        if (req.plan && *req.plan != product_plan::plan_unknown && *req.plan != next.plan) {
            check_plan_change(next, *req.plan, idx_->any_multiple_connections(next.id));
            next.plan = *req.plan;
            changed = true;
        }
        if (req.enable_device_auto_provisioning && *req.enable_device_auto_provisioning &&
            !next.has_custom_ca) {
            throw precondition("resource_not_usable",
                               "auto-provisioning needs a custom certificate authority on the hub");
        }
        changed |=
            assign(next.enable_device_auto_provisioning, req.enable_device_auto_provisioning);
        after = before;
        if (changed) {
            next.updated_at_ms = clock_();
            after = std::make_shared<const hub_record>(std::move(next));
            commit_hub(after);
        }
    }
    if (after != before) notify(before, after);
    return hub_view_of(after, status_of(*after), devices);
}

hub_view registry::enable_hub(const scope& sc, std::string_view id) {
    return set_hub_enabled(sc, id, true);
}

hub_view registry::disable_hub(const scope& sc, std::string_view id) {
    return set_hub_enabled(sc, id, false);
}

// The change is complete at once, but the response reports the transient status, as the
// API does; every later read reports ready / disabled.
hub_view registry::set_hub_enabled(const scope& sc, std::string_view id, bool enabled) {
    const hub_status reported = enabled ? hub_status::enabling : hub_status::disabling;
    hub_ptr before;
    hub_ptr after;
    std::uint64_t devices = 0;
    {
        std::unique_lock writes(idx_->write_mutex);
        before = hub_in_scope(sc, id);
        devices = device_count(before->id);
        after = before;
        if (before->enabled != enabled) {  // enabling an enabled hub is fine: nothing to do
            auto next = std::make_shared<hub_record>(*before);
            next->enabled = enabled;
            next->updated_at_ms = clock_();
            after = std::move(next);
            commit_hub(after);
        }
    }
    if (after != before) notify(before, after);
    return hub_view_of(after, reported, devices);
}

void registry::delete_hub(const scope& sc, std::string_view id, bool delete_devices) {
    hub_ptr before;
    std::vector<device_ptr> gone;
    {
        std::unique_lock writes(idx_->write_mutex);
        before = hub_in_scope(sc, id);
        if (const auto it = idx_->by_hub.find(before->id); it != idx_->by_hub.end()) {
            for (const auto& [name, d] : it->second) gone.push_back(d);
        }
        if (!gone.empty() && !delete_devices) {
            throw precondition(
                "resource_still_in_use",
                "the hub still has devices; delete them or pass delete_devices=true");
        }
        db_.erase_hub(before->id);  // the hub and its devices in one transaction
        std::unique_lock lock(mutex_);
        for (const auto& d : gone) {
            devices_.erase(d->id);
            idx_->drop_certificate(d->id);
        }
        idx_->by_hub.erase(before->id);
        idx_->drop_ca(before->id);
        hubs_.erase(before->id);
        std::lock_guard activity_lock(idx_->activity_mutex);
        for (const auto& d : gone) idx_->activity_of.erase(d->id);
    }
    for (const auto& d : gone) notify(d, nullptr);
    notify(before, nullptr);
}

// ---------------------------------------------------------------------------------------
// Devices

std::vector<argument_error> registry::check_filters(const message_filters& f,
                                                    const std::string& field) {
    std::vector<argument_error> errors;
    checks::message_filters_of(f, field, errors);
    return errors;
}

namespace {

registry_error multiple_connections_refused() {
    return invalid("allow_multiple_connections", "constraint", "not available on plan_shared hubs");
}

}  // namespace

device_created registry::create_device(const scope& sc, const device_create& req) {
    if (req.hub_id.empty()) throw invalid("hub_id", "required", "must not be empty");
    auto d = std::make_shared<device_record>();
    d->id = make_uuid();
    d->hub_id = req.hub_id;
    d->name = req.name;
    d->description = req.description;
    d->allow_insecure = req.allow_insecure;
    d->allow_multiple_connections = req.allow_multiple_connections;

    std::vector<argument_error> errors;
    if (!req.name.empty()) {
        if (auto e = checks::device_name(req.name)) errors.push_back(std::move(*e));
    }
    if (req.filters) {
        auto bad = check_filters(*req.filters, "message_filters");
        errors.insert(errors.end(), bad.begin(), bad.end());
        d->filters = checks::normalized(*req.filters);
    }
    if (!errors.empty()) throw invalid(std::move(errors));

    // The certificate is made before the write lock, as a key pair takes a while (RSA), for
    // the name and the CA seen now; both are checked again under the lock.
    detail::hub_ca_entry_ptr ca;
    pki::key_type key_type = pki::key_type::rsa_2048;
    {
        std::shared_lock lock(mutex_);
        key_type = idx_->device_key;
        const hub_ptr hub = hub_in_scope(sc, req.hub_id);
        if (d->name.empty()) d->name = unused_device_name(hub->id);
        // What would refuse the request anyway is refused before a key pair is made.
        if (d->allow_multiple_connections && hub->plan == product_plan::plan_shared) {
            throw multiple_connections_refused();
        }
        if (idx_->has_device_named(hub->id, d->name)) throw already_exists("device", d->name);
        if (device_count(hub->id) >= limits_.max_devices_per_hub) {
            throw quota_exceeded("device",
                                 std::to_string(limits_.max_devices_per_hub) + " devices per hub");
        }
        if (const auto it = idx_->cas.find(hub->id);
            it != idx_->cas.end() && !it->second->pub->custom)
            ca = it->second;
    }
    std::optional<device_credentials> credentials;
    if (ca) credentials = detail::issue_device_certificate(*ca, d->name, key_type);

    {
        std::unique_lock writes(idx_->write_mutex);
        const hub_ptr hub = hub_in_scope(sc, req.hub_id);
        if (d->allow_multiple_connections && hub->plan == product_plan::plan_shared) {
            throw multiple_connections_refused();
        }
        if (idx_->has_device_named(hub->id, d->name)) throw already_exists("device", d->name);
        if (device_count(hub->id) >= limits_.max_devices_per_hub) {
            throw quota_exceeded("device",
                                 std::to_string(limits_.max_devices_per_hub) + " devices per hub");
        }
        const auto now_ca = idx_->cas.find(hub->id);
        const bool custom_now = now_ca != idx_->cas.end() && now_ca->second->pub->custom;
        if (ca && (now_ca == idx_->cas.end() || now_ca->second != ca)) {
            throw precondition("resource_not_usable",
                               "the hub's certificate authority changed meanwhile; try again");
        }
        d->created_at_ms = d->updated_at_ms = clock_();
        if (credentials && !custom_now) {
            d->certificate_fingerprint = pki::parse_pem(credentials->crt)->fingerprint;
            commit_device_certificate(nullptr, d, credentials->crt, true);
        } else {
            commit_device(nullptr, d);
        }
        std::lock_guard activity_lock(idx_->activity_mutex);
        idx_->activity_of[d->id] = {};
    }
    notify(nullptr, d);
    device_created out;
    static_cast<device_view&>(out) = device_view_of(d);
    out.certificate = std::move(credentials);
    return out;
}

device_view registry::get_device(const scope& sc, std::string_view id) const {
    device_ptr d;
    {
        std::shared_lock lock(mutex_);
        d = device_in_scope(sc, id);
    }
    return device_view_of(std::move(d));
}

page<device_view> registry::list_devices(const scope& sc, const device_filter& f,
                                         const paging& p) const {
    const auto order = parse_paging(p, device_keys);
    // `unknown` is the API's "not set"; `error` is a status no device of ours has.
    const std::optional<device_status> status =
        f.status == device_status::unknown ? std::nullopt : f.status;
    std::vector<device_ptr> items;
    const auto collect = [&](const std::string& hub_id,
                             const std::map<std::string, device_ptr>& devices) {
        const auto hub = hubs_.find(hub_id);
        if (hub == hubs_.end() || hub->second->project_id != sc.project_id) return;
        for (const auto& [name, d] : devices) {
            if (f.name && name.find(*f.name) == std::string::npos) continue;
            if (f.allow_insecure && *f.allow_insecure != d->allow_insecure) continue;
            if (status && *status != status_of(*d)) continue;
            items.push_back(d);
        }
    };
    {
        std::shared_lock lock(mutex_);
        if (f.hub_id) {
            if (const auto it = idx_->by_hub.find(*f.hub_id); it != idx_->by_hub.end()) {
                collect(it->first, it->second);
            }
        } else {
            for (const auto& [hub_id, devices] : idx_->by_hub) collect(hub_id, devices);
        }
    }
    const auto record = +[](const device_ptr& d) -> const device_record& { return *d; };
    return page_of<device_ptr, device_view>(
        items, p, order, record, [this](const device_ptr& d) { return device_view_of(d); });
}

device_view registry::update_device(const scope& sc, std::string_view id,
                                    const device_update& req) {
    std::vector<argument_error> errors;
    if (req.filters) errors = check_filters(*req.filters, "message_filters");
    if (req.hub_id && req.hub_id->empty())
        errors.push_back({"hub_id", "required", "must not be empty"});
    if (!errors.empty()) throw invalid(std::move(errors));

    device_ptr before;
    device_ptr after;
    {
        std::unique_lock writes(idx_->write_mutex);
        before = device_in_scope(sc, id);
        device_record next = *before;
        const hub_ptr hub = hub_in_scope(sc, req.hub_id.value_or(before->hub_id));
        bool changed = false;
        if (hub->id != before->hub_id) {
            if (idx_->has_device_named(hub->id, next.name))
                throw already_exists("device", next.name);
            if (device_count(hub->id) >= limits_.max_devices_per_hub) {
                throw quota_exceeded(
                    "device", std::to_string(limits_.max_devices_per_hub) + " devices per hub");
            }
            next.hub_id = hub->id;
            changed = true;
        }
        changed |= assign(next.description, req.description);
        changed |= assign(next.allow_insecure, req.allow_insecure);
        changed |= assign(next.allow_multiple_connections, req.allow_multiple_connections);
        if (req.filters)
            changed |= assign(next.filters, std::optional(checks::normalized(*req.filters)));
        if (next.allow_multiple_connections && hub->plan == product_plan::plan_shared) {
            throw multiple_connections_refused();
        }
        after = before;
        if (changed) {
            next.updated_at_ms = clock_();
            after = std::make_shared<const device_record>(std::move(next));
            commit_device(before, after);
        }
    }
    if (after != before) notify(before, after);
    return device_view_of(after);
}

device_view registry::enable_device(const scope& sc, std::string_view id) {
    return set_device_enabled(sc, id, true);
}

device_view registry::disable_device(const scope& sc, std::string_view id) {
    return set_device_enabled(sc, id, false);
}

device_view registry::set_device_enabled(const scope& sc, std::string_view id, bool enabled) {
    device_ptr before;
    device_ptr after;
    {
        std::unique_lock writes(idx_->write_mutex);
        before = device_in_scope(sc, id);
        after = before;
        if (before->enabled != enabled) {
            auto next = std::make_shared<device_record>(*before);
            next->enabled = enabled;
            next->updated_at_ms = clock_();
            after = std::move(next);
            commit_device(before, after);
        }
    }
    if (after != before) notify(before, after);
    return device_view_of(after);
}

void registry::delete_device(const scope& sc, std::string_view id) {
    device_ptr before;
    {
        std::unique_lock writes(idx_->write_mutex);
        before = device_in_scope(sc, id);
        db_.erase_device(before->id);
        std::unique_lock lock(mutex_);
        idx_->by_hub[before->hub_id].erase(before->name);
        devices_.erase(before->id);
        idx_->drop_certificate(before->id);
        std::lock_guard activity_lock(idx_->activity_mutex);
        idx_->activity_of.erase(before->id);
    }
    notify(before, nullptr);
}

// ---------------------------------------------------------------------------------------
// Activity

void registry::record_activity(std::string_view device_id, std::uint64_t ms) noexcept {
    // Memory only: workers never wait for the database. flush_activity() writes it.
    if (ms == 0) return;  // "never": nothing to remember
    try {
        std::lock_guard lock(idx_->activity_mutex);
        const auto it = idx_->activity_of.find(std::string(device_id));
        if (it == idx_->activity_of.end()) return;  // not (or no longer) a device
        it->second.latest = std::max(it->second.latest, ms);
    } catch (...) {
        // Out of memory for the key: the value is lost, nothing else.
    }
}

std::size_t registry::flush_activity() noexcept {
    try {
        std::lock_guard writes(idx_->write_mutex);
        std::vector<store::device_row> rows;
        std::vector<std::pair<std::string, std::uint64_t>> written;
        {
            std::lock_guard lock(idx_->activity_mutex);
            for (const auto& [id, a] : idx_->activity_of) {
                if (a.latest <= a.persisted) continue;
                const auto d = devices_.find(id);  // the write lock is enough to read it
                if (d == devices_.end()) continue;
                rows.push_back(to_row(*d->second, a.latest));
                written.emplace_back(id, a.latest);
            }
        }
        if (rows.empty()) return 0;
        db_.put_devices(rows);  // one transaction for all of them
        std::lock_guard lock(idx_->activity_mutex);
        for (const auto& [id, ms] : written) {
            if (auto a = idx_->activity_of.find(id); a != idx_->activity_of.end())
                a->second.persisted = std::max(a->second.persisted, ms);
        }
        return rows.size();
    } catch (...) {
        return 0;  // kept in memory; the next flush retries
    }
}

}  // namespace iothub::hub
