#include "broker/guarded.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "broker/subscription_index.hpp"

namespace iothub::broker {
namespace {

// The value has no public path but through a handle.
template <class G>
concept exposes_value = requires(G& g) { g.value_; };
template <class G>
concept exposes_mutex = requires(G& g) { g.mutex_; };
static_assert(!exposes_value<guarded<int>>);
static_assert(!exposes_mutex<guarded<int>>);
static_assert(!std::is_copy_constructible_v<guarded<int>>);
static_assert(!std::is_convertible_v<guarded<int>&, int&>);

// Reads hand out const access only; handles cannot be copied (each owns its lock).
using read_handle = guarded<std::string>::read_handle;
using write_handle = guarded<std::string>::write_handle;
static_assert(std::is_same_v<decltype(*std::declval<read_handle&>()), const std::string&>);
static_assert(std::is_same_v<decltype(*std::declval<write_handle&>()), std::string&>);
static_assert(!std::is_copy_constructible_v<read_handle>);
static_assert(!std::is_copy_constructible_v<write_handle>);
static_assert(std::is_move_constructible_v<write_handle>);
// A const guarded can only be read.
template <class G>
concept writable = requires(G& g) { g.write(); };
static_assert(writable<guarded<int>>);
static_assert(!writable<const guarded<int>>);

TEST(guarded, read_and_write_through_handles) {
    guarded<std::string> g("abc");
    {
        auto w = g.write();
        w->append("def");
        *w += "!";
    }
    EXPECT_EQ(*g.read(), "abcdef!");
    EXPECT_EQ(g.read()->size(), 7u);
    EXPECT_EQ(g.with_read([](const std::string& s) { return s.size(); }), 7u);
    g.with_write([](std::string& s) { s.clear(); });
    EXPECT_TRUE(g.read()->empty());
}

TEST(guarded, works_with_a_plain_mutex) {
    guarded<std::vector<int>, std::mutex> g;
    g.with_write([](std::vector<int>& v) { v.push_back(1); });
    EXPECT_EQ(g.with_read([](const std::vector<int>& v) { return v.size(); }), 1u);
}

TEST(guarded, write_excludes_other_writers) {
    guarded<long> counter(0L);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 10000; ++i) {
                auto w = counter.write();
                *w += 1;
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    EXPECT_EQ(*counter.read(), 40000);
}

TEST(guarded, readers_share_the_lock) {
    guarded<int> g(5);
    auto first = g.read();
    std::atomic<bool> second_read{false};
    std::thread other([&] {
        auto again = g.read();
        second_read = *again == 5;
    });
    other.join();
    EXPECT_TRUE(second_read);
    EXPECT_EQ(*first, 5);
}

TEST(guarded, subscription_index_matched_from_several_threads) {
    guarded<subscription_index> index;
    index.with_write([](subscription_index& i) {
        for (session_id s = 1; s <= 4; ++s) {
            i.subscribe("work/+", "pool", s, {});
        }
        i.subscribe("work/#", "", 99, {});
    });
    std::atomic<int> pool_hits{0};
    std::atomic<int> plain_hits{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i) {
                auto r = index.read();
                r->match("work/item", [&](session_id sid, const subscription_options&) {
                    (sid == 99 ? plain_hits : pool_hits).fetch_add(1);
                });
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    EXPECT_EQ(pool_hits.load(), 4000);
    EXPECT_EQ(plain_hits.load(), 4000);
}

}  // namespace
}  // namespace iothub::broker
