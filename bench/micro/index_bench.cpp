// Micro benchmarks of the subscription index and the retained store: SUBSCRIBE and
// UNSUBSCRIBE cost against table size, match throughput for exact, '+' and '#' heavy tables,
// and resident memory per subscription.
//
// Build it Release, without sanitizers; the bytes_per_sub counters are meaningful only then.

#include <benchmark/benchmark.h>
#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "broker/retained_store.hpp"
#include "broker/subscription_index.hpp"

namespace {

using iothub::broker::message;
using iothub::broker::message_ptr;
using iothub::broker::retained_store;
using iothub::broker::session_id;
using iothub::broker::subscription_index;
using iothub::broker::subscription_options;

enum shape : int {
    exact = 0,      // dev/<i>/cmd
    deep_plus = 1,  // +/<i % 1000>/+/<i / 1000>
    deep_hash = 2,  // dev/<i>/#
    fan_in = 3,     // everyone on broadcast/cmd
    mixed = 4,      // site/<i % 100>/dev/<i>/{state,+,#}
};

const char* shape_name(int s) {
    static const char* names[] = {"exact", "plus", "hash", "fan_in", "mixed"};
    return names[s];
}

std::string filter_of(int s, std::size_t i) {
    switch (s) {
    case exact:
        return "dev/" + std::to_string(i) + "/cmd";
    case deep_plus:
        return "+/" + std::to_string(i % 1000) + "/+/" + std::to_string(i / 1000);
    case deep_hash:
        return "dev/" + std::to_string(i) + "/#";
    case fan_in:
        return "broadcast/cmd";
    default: {
        static const char* tails[] = {"state", "+", "#"};
        return "site/" + std::to_string(i % 100) + "/dev/" + std::to_string(i) + "/" + tails[i % 3];
    }
    }
}

// A topic matched by exactly one filter of the table (all of them for fan_in).
std::string topic_of(int s, std::size_t i) {
    switch (s) {
    case exact:
        return "dev/" + std::to_string(i) + "/cmd";
    case deep_plus:
        return "x/" + std::to_string(i % 1000) + "/y/" + std::to_string(i / 1000);
    case deep_hash:
        return "dev/" + std::to_string(i) + "/a/b/c";
    case fan_in:
        return "broadcast/cmd";
    default:
        return "site/" + std::to_string(i % 100) + "/dev/" + std::to_string(i) + "/state";
    }
}

std::vector<std::string> filters(int s, std::size_t n) {
    std::vector<std::string> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back(filter_of(s, i));
    }
    return out;
}

subscription_options options() {
    subscription_options o;
    o.qos = 1;
    return o;
}

double ns_since(std::chrono::steady_clock::time_point t0, std::size_t n) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0);
    return static_cast<double>(ns.count()) / static_cast<double>(n);
}

// SUBSCRIBE and UNSUBSCRIBE cost per call, for a table that grows to range(1) entries.
void bm_subscribe_unsubscribe(benchmark::State& state) {
    const int s = static_cast<int>(state.range(0));
    const auto n = static_cast<std::size_t>(state.range(1));
    const auto fs = filters(s, n);
    const auto o = options();
    double sub_ns = 0;
    double unsub_ns = 0;
    for (auto _ : state) {
        subscription_index index;
        auto t0 = std::chrono::steady_clock::now();
        for (std::size_t i = 0; i < n; ++i) {
            index.subscribe(fs[i], {}, i + 1, o);
        }
        sub_ns += ns_since(t0, n);
        t0 = std::chrono::steady_clock::now();
        for (std::size_t i = 0; i < n; ++i) {
            index.unsubscribe(fs[i], {}, i + 1);
        }
        unsub_ns += ns_since(t0, n);
        if (index.node_count() != 0) {
            state.SkipWithError("nodes left behind");
        }
    }
    state.SetLabel(shape_name(s));
    state.counters["subscribe_ns"] = benchmark::Counter(sub_ns, benchmark::Counter::kAvgIterations);
    state.counters["unsubscribe_ns"] = benchmark::Counter(unsub_ns, benchmark::Counter::kAvgIterations);
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n * 2));
}

// One match per iteration over a table of range(1) subscriptions; topics cycle through the table.
void bm_match(benchmark::State& state) {
    const int s = static_cast<int>(state.range(0));
    const auto n = static_cast<std::size_t>(state.range(1));
    subscription_index index;
    for (std::size_t i = 0; i < n; ++i) {
        index.subscribe(filter_of(s, i), {}, i + 1, options());
    }
    std::vector<std::string> topics;
    std::mt19937_64 rng(7);
    for (int i = 0; i < 4096; ++i) {
        topics.push_back(topic_of(s, rng() % n));
    }
    std::size_t k = 0;
    std::uint64_t checksum = 0;
    std::uint64_t deliveries = 0;
    for (auto _ : state) {
        index.match(topics[k++ & 4095], [&](session_id sid, const subscription_options& o) {
            checksum += sid + o.qos;
            ++deliveries;
        });
    }
    benchmark::DoNotOptimize(checksum);
    state.SetLabel(shape_name(s));
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.counters["deliveries_per_match"] =
        static_cast<double>(deliveries) / static_cast<double>(state.iterations());
}

std::size_t resident_bytes() {
    unsigned long size = 0;
    unsigned long resident = 0;
    if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%lu %lu", &size, &resident) != 2) {
            resident = 0;
        }
        std::fclose(f);
    }
    return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

// Memory per subscription: resident set growth (statm) and heap bytes in use (mallinfo2)
// while range(1) subscriptions are in the table, and the resident growth left after removing
// them all and trimming the allocator.
void bm_memory(benchmark::State& state) {
    const int s = static_cast<int>(state.range(0));
    const auto n = static_cast<std::size_t>(state.range(1));
    const auto fs = filters(s, n);  // the filter strings are the caller's, not the index's
    const auto o = options();
    double rss = 0;
    double heap = 0;
    double left = 0;
    for (auto _ : state) {
        ::malloc_trim(0);
        const std::size_t rss0 = resident_bytes();
        const std::size_t heap0 = ::mallinfo2().uordblks;
        auto index = std::make_unique<subscription_index>();
        for (std::size_t i = 0; i < n; ++i) {
            index->subscribe(fs[i], {}, i + 1, o);
        }
        rss = static_cast<double>(resident_bytes()) - static_cast<double>(rss0);
        heap = static_cast<double>(::mallinfo2().uordblks) - static_cast<double>(heap0);
        for (std::size_t i = 0; i < n; ++i) {
            index->unsubscribe(fs[i], {}, i + 1);
        }
        if (index->node_count() != 0) {
            state.SkipWithError("nodes left behind");
        }
        ::malloc_trim(0);
        left = static_cast<double>(resident_bytes()) - static_cast<double>(rss0);
    }
    state.SetLabel(shape_name(s));
    state.counters["rss_bytes_per_sub"] = rss / static_cast<double>(n);
    state.counters["heap_bytes_per_sub"] = heap / static_cast<double>(n);
    // Resident growth still there once every subscription is gone (the index itself alive).
    state.counters["rss_kib_left_after_unsub"] = left / 1024.0;
}

message_ptr retained(std::string topic) {
    auto m = std::make_shared<message>();
    m->topic = std::move(topic);
    m->payload = "21.5";
    m->retain = true;
    return m;
}

retained_store& retained_100k() {
    static retained_store store;
    return store;
}

void fill_retained(retained_store& store) {
    if (store.size() == 0) {
        for (std::size_t i = 0; i < 100000; ++i) {
            store.set(retained("site/" + std::to_string(i % 100) + "/dev/" + std::to_string(i) + "/state"));
        }
    }
}

void bm_retained_find(benchmark::State& state) {
    auto& store = retained_100k();
    fill_retained(store);
    std::vector<std::string> topics;
    for (std::size_t i = 0; i < 4096; ++i) {
        const std::size_t d = (i * 7919) % 100000;
        topics.push_back("site/" + std::to_string(d % 100) + "/dev/" + std::to_string(d) + "/state");
    }
    std::size_t k = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(store.find(topics[k++ & 4095]));
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// Every retained message under a wildcard filter; items are messages delivered.
void bm_retained_match(benchmark::State& state) {
    auto& store = retained_100k();
    fill_retained(store);
    static const char* filters[] = {"#", "site/+/dev/+/state", "site/42/#", "site/42/dev/4242/state"};
    const char* filter = filters[state.range(0)];
    std::size_t found = 0;
    for (auto _ : state) {
        store.match(filter, [&](const message_ptr&) { ++found; });
    }
    state.SetLabel(filter);
    state.SetItemsProcessed(static_cast<std::int64_t>(found));
}

void shapes(benchmark::internal::Benchmark* b, std::vector<std::int64_t> sizes) {
    for (int s = exact; s <= mixed; ++s) {
        for (auto n : sizes) {
            b->Args({s, n});
        }
    }
}

}  // namespace

BENCHMARK(bm_memory)->Apply([](auto* b) { shapes(b, {100000}); })->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(bm_subscribe_unsubscribe)
    ->Apply([](auto* b) { shapes(b, {1000, 100000, 1000000}); })
    ->Unit(benchmark::kMillisecond);
BENCHMARK(bm_match)->Apply([](auto* b) { shapes(b, {100000}); });
BENCHMARK(bm_retained_find);
BENCHMARK(bm_retained_match)->DenseRange(0, 3)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
