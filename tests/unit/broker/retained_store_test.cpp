#include "broker/retained_store.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace iothub::broker {
namespace {

message_ptr make_message(std::string topic, std::string payload = "x", std::uint64_t expires_at_ms = 0) {
    auto m = std::make_shared<message>();
    m->topic = std::move(topic);
    m->payload = std::move(payload);
    m->retain = true;
    m->expires_at_ms = expires_at_ms;
    return m;
}

std::vector<std::string_view> split_levels(std::string_view s) {
    std::vector<std::string_view> out;
    for (;;) {
        const auto slash = s.find('/');
        out.push_back(s.substr(0, slash));
        if (slash == std::string_view::npos) {
            return out;
        }
        s.remove_prefix(slash + 1);
    }
}

bool naive_matches(const std::vector<std::string_view>& f, const std::vector<std::string_view>& t) {
    if (!t[0].empty() && t[0][0] == '$' && (f[0] == "+" || f[0] == "#")) {
        return false;
    }
    for (std::size_t i = 0; i < f.size(); ++i) {
        if (f[i] == "#") {
            return true;
        }
        if (i >= t.size() || (f[i] != "+" && f[i] != t[i])) {
            return false;
        }
    }
    return f.size() == t.size();
}

std::multiset<std::string> matched(const retained_store& store, std::string_view filter) {
    std::multiset<std::string> out;
    store.match(filter, [&](const message_ptr& m) { out.insert(m->topic); });
    return out;
}

using topics = std::multiset<std::string>;

TEST(retained_store, set_find_replace_erase) {
    retained_store store;
    EXPECT_EQ(store.find("a/b"), nullptr);
    store.set(make_message("a/b", "1"));
    store.set(make_message("a", "2"));
    EXPECT_EQ(store.size(), 2u);
    EXPECT_EQ(store.find("a/b")->payload, "1");
    EXPECT_EQ(store.find("a")->payload, "2");
    EXPECT_EQ(store.find("a/b/c"), nullptr);
    EXPECT_EQ(store.find("b"), nullptr);

    store.set(make_message("a/b", "3"));
    EXPECT_EQ(store.size(), 2u);
    EXPECT_EQ(store.find("a/b")->payload, "3");

    // An empty payload clears the topic.
    store.set(make_message("a/b", ""));
    EXPECT_EQ(store.find("a/b"), nullptr);
    EXPECT_EQ(store.size(), 1u);
    store.set(make_message("nothing/here", ""));
    EXPECT_EQ(store.size(), 1u);
    EXPECT_EQ(store.node_count(), 1u);

    EXPECT_FALSE(store.erase("a/b"));
    EXPECT_FALSE(store.erase("zzz"));
    EXPECT_TRUE(store.erase("a"));
    EXPECT_FALSE(store.erase("a"));
    EXPECT_EQ(store.size(), 0u);
    EXPECT_EQ(store.node_count(), 0u);
}

TEST(retained_store, messages_are_shared_not_copied) {
    retained_store store;
    const message_ptr m = make_message("t");
    store.set(m);
    EXPECT_EQ(store.find("t").get(), m.get());
}

TEST(retained_store, match_wildcards) {
    retained_store store;
    for (const char* t : {"sport", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking",
                          "sport/tennis/player2", "sport/", "/finance", "finance", "a//b", "/", "$SYS/uptime",
                          "$SYS", "a/$b"}) {
        store.set(make_message(t));
    }
    EXPECT_EQ(matched(store, "sport/tennis/player1/#"),
              (topics{"sport/tennis/player1", "sport/tennis/player1/ranking"}));
    EXPECT_EQ(matched(store, "sport/#"), (topics{"sport", "sport/tennis", "sport/tennis/player1",
                                                 "sport/tennis/player1/ranking", "sport/tennis/player2", "sport/"}));
    EXPECT_EQ(matched(store, "sport/tennis/+"), (topics{"sport/tennis/player1", "sport/tennis/player2"}));
    EXPECT_EQ(matched(store, "sport/+"), (topics{"sport/tennis", "sport/"}));
    EXPECT_EQ(matched(store, "+/+"), (topics{"sport/tennis", "sport/", "/finance", "/", "a/$b"}));
    EXPECT_EQ(matched(store, "/+"), (topics{"/finance", "/"}));
    EXPECT_EQ(matched(store, "+"), (topics{"sport", "finance"}));
    EXPECT_EQ(matched(store, "a/+/b"), (topics{"a//b"}));
    EXPECT_EQ(matched(store, "/finance"), (topics{"/finance"}));
    EXPECT_EQ(matched(store, "sport/tennis/player1"), (topics{"sport/tennis/player1"}));
    EXPECT_EQ(matched(store, "nope"), (topics{}));
    EXPECT_EQ(matched(store, "#").size(), 11u);
    EXPECT_EQ(matched(store, "#").count("$SYS"), 0u);
    EXPECT_EQ(matched(store, "+/uptime"), (topics{}));
    EXPECT_EQ(matched(store, "+/#").count("$SYS/uptime"), 0u);
    EXPECT_EQ(matched(store, "$SYS/#"), (topics{"$SYS", "$SYS/uptime"}));
    EXPECT_EQ(matched(store, "$SYS/+"), (topics{"$SYS/uptime"}));
    EXPECT_EQ(matched(store, "a/#"), (topics{"a//b", "a/$b"}));

    std::size_t all = 0;
    store.for_each([&](const message_ptr&) { ++all; });
    EXPECT_EQ(all, store.size());
    EXPECT_EQ(all, 13u);
}

TEST(retained_store, erase_expired) {
    retained_store store;
    store.set(make_message("a/b", "1", 100));
    store.set(make_message("a", "2", 200));
    store.set(make_message("a/b/c", "3", 0));
    store.set(make_message("z/y", "4", 50));
    EXPECT_EQ(store.erase_expired(99), 1u);
    EXPECT_EQ(store.find("z/y"), nullptr);
    EXPECT_EQ(store.erase_expired(1000), 2u);
    EXPECT_EQ(store.size(), 1u);
    EXPECT_NE(store.find("a/b/c"), nullptr);
    EXPECT_EQ(store.node_count(), 3u);
    EXPECT_TRUE(store.erase("a/b/c"));
    EXPECT_EQ(store.node_count(), 0u);
}

TEST(retained_store, hash_over_many_topics) {
    retained_store store;
    constexpr int n = 20000;
    for (int i = 0; i < n; ++i) {
        store.set(make_message("dev/" + std::to_string(i) + "/state"));
        store.set(make_message("other/" + std::to_string(i)));
    }
    EXPECT_EQ(store.size(), 2u * n);
    EXPECT_EQ(matched(store, "dev/#").size(), static_cast<std::size_t>(n));
    EXPECT_EQ(matched(store, "dev/+/state").size(), static_cast<std::size_t>(n));
    EXPECT_EQ(matched(store, "dev/123/state"), (topics{"dev/123/state"}));
    for (int i = 0; i < n; ++i) {
        EXPECT_TRUE(store.erase("dev/" + std::to_string(i) + "/state"));
    }
    EXPECT_EQ(matched(store, "dev/#").size(), 0u);
    EXPECT_EQ(matched(store, "#").size(), static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        EXPECT_TRUE(store.erase("other/" + std::to_string(i)));
    }
    EXPECT_EQ(store.node_count(), 0u);
}

TEST(retained_store, deep_topics) {
    retained_store store;
    std::string topic = "x";
    for (int i = 0; i < 5000; ++i) {
        topic += "/";
    }
    store.set(make_message(topic));
    EXPECT_EQ(matched(store, "#").size(), 1u);
    EXPECT_EQ(matched(store, topic).size(), 1u);
    EXPECT_TRUE(store.erase(topic));
    EXPECT_EQ(store.node_count(), 0u);
}

std::string random_text(std::mt19937& rng, bool filter) {
    static const std::vector<std::string> words = {"a", "b", "c", "", "$s", "dd"};
    const int levels = std::uniform_int_distribution<int>(1, 5)(rng);
    std::string out;
    for (int i = 0; i < levels; ++i) {
        if (i != 0) {
            out += '/';
        }
        const int pick = std::uniform_int_distribution<int>(0, filter ? 9 : 5)(rng);
        if (pick < 6) {
            out += words[static_cast<std::size_t>(pick)];
        } else if (pick < 9) {
            out += '+';
        } else {
            out += '#';
            break;
        }
    }
    return out.empty() ? std::string("a") : out;
}

TEST(retained_store, random_topics_agree_with_naive_matcher) {
    std::mt19937 rng(4242);
    retained_store store;
    std::map<std::string, const message*> live;
    for (int i = 0; i < 10000; ++i) {
        const std::string topic = random_text(rng, false);
        if (std::uniform_int_distribution<int>(0, 4)(rng) == 0) {
            EXPECT_EQ(store.erase(topic), live.erase(topic) == 1);
        } else {
            const message_ptr m = make_message(topic);
            store.set(m);
            live[topic] = m.get();
        }
    }
    ASSERT_EQ(store.size(), live.size());
    std::vector<std::vector<std::string_view>> live_levels;
    for (const auto& entry : live) {
        live_levels.push_back(split_levels(entry.first));
    }
    std::vector<const message*> want;
    std::vector<const message*> got;
    for (int i = 0; i < 1000; ++i) {
        const std::string filter = random_text(rng, true);
        const auto filter_levels = split_levels(filter);
        want.clear();
        got.clear();
        std::size_t k = 0;
        for (const auto& entry : live) {
            if (naive_matches(filter_levels, live_levels[k++])) {
                want.push_back(entry.second);
            }
        }
        store.match(filter, [&](const message_ptr& m) { got.push_back(m.get()); });
        std::sort(want.begin(), want.end());
        std::sort(got.begin(), got.end());
        ASSERT_EQ(got, want) << filter;
    }
    for (const auto& entry : live) {
        EXPECT_TRUE(store.erase(entry.first));
    }
    EXPECT_EQ(store.size(), 0u);
    EXPECT_EQ(store.node_count(), 0u);
}

}  // namespace
}  // namespace iothub::broker
