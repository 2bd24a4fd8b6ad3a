#include "broker/subscription_index.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace iothub::broker {
namespace {

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

// Straight from the specification's wording, independent of the trie.
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

bool naive_matches(std::string_view filter, std::string_view topic) {
    return naive_matches(split_levels(filter), split_levels(topic));
}

std::multiset<session_id> matched(const subscription_index& index, std::string_view topic) {
    std::multiset<session_id> out;
    index.match(topic, [&](session_id sid, const subscription_options&) { out.insert(sid); });
    return out;
}

bool matches_one(std::string_view filter, std::string_view topic) {
    subscription_index index;
    index.subscribe(filter, "", 7, {});
    const auto got = matched(index, topic);
    EXPECT_EQ(got.size() <= 1, true);
    EXPECT_EQ(!got.empty(), naive_matches(filter, topic)) << filter << " vs " << topic;
    return !got.empty();
}

TEST(subscription_index, spec_multi_level_wildcard) {
    EXPECT_TRUE(matches_one("sport/tennis/player1/#", "sport/tennis/player1"));
    EXPECT_TRUE(matches_one("sport/tennis/player1/#", "sport/tennis/player1/ranking"));
    EXPECT_TRUE(matches_one("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"));
    EXPECT_FALSE(matches_one("sport/tennis/player1/#", "sport/tennis/player2"));
    EXPECT_FALSE(matches_one("sport/tennis/player1/#", "sport/tennis"));
    EXPECT_TRUE(matches_one("sport/#", "sport"));
    EXPECT_TRUE(matches_one("#", "sport/tennis/player1"));
    EXPECT_TRUE(matches_one("#", "/"));
}

TEST(subscription_index, spec_single_level_wildcard) {
    EXPECT_TRUE(matches_one("sport/tennis/+", "sport/tennis/player1"));
    EXPECT_TRUE(matches_one("sport/tennis/+", "sport/tennis/player2"));
    EXPECT_FALSE(matches_one("sport/tennis/+", "sport/tennis/player1/ranking"));
    EXPECT_FALSE(matches_one("sport/+", "sport"));
    EXPECT_TRUE(matches_one("sport/+", "sport/"));
    EXPECT_TRUE(matches_one("+/+", "/finance"));
    EXPECT_TRUE(matches_one("/+", "/finance"));
    EXPECT_FALSE(matches_one("+", "/finance"));
    EXPECT_TRUE(matches_one("/finance", "/finance"));
    EXPECT_FALSE(matches_one("finance", "/finance"));
    EXPECT_TRUE(matches_one("+/tennis/#", "sport/tennis/player1"));
    EXPECT_TRUE(matches_one("sport/+/player1", "sport/tennis/player1"));
}

TEST(subscription_index, dollar_topics) {
    EXPECT_FALSE(matches_one("#", "$SYS/monitor/Clients"));
    EXPECT_FALSE(matches_one("+/monitor/Clients", "$SYS/monitor/Clients"));
    EXPECT_FALSE(matches_one("+/#", "$SYS/monitor/Clients"));
    EXPECT_FALSE(matches_one("+", "$SYS"));
    EXPECT_TRUE(matches_one("$SYS/#", "$SYS/monitor/Clients"));
    EXPECT_TRUE(matches_one("$SYS/#", "$SYS"));
    EXPECT_TRUE(matches_one("$SYS/monitor/+", "$SYS/monitor/Clients"));
    EXPECT_TRUE(matches_one("$SYS/monitor/Clients", "$SYS/monitor/Clients"));
    EXPECT_TRUE(matches_one("a/+", "a/$b"));
    EXPECT_TRUE(matches_one("a/#", "a/$b/c"));
}

TEST(subscription_index, empty_levels) {
    EXPECT_TRUE(matches_one("a//b", "a//b"));
    EXPECT_TRUE(matches_one("a/+/b", "a//b"));
    EXPECT_TRUE(matches_one("+/+/+", "a//b"));
    EXPECT_TRUE(matches_one("a/#", "a//b"));
    EXPECT_FALSE(matches_one("a/b", "a//b"));
    EXPECT_FALSE(matches_one("a/+", "a//b"));
    EXPECT_TRUE(matches_one("+/+", "/"));
    EXPECT_TRUE(matches_one("/", "/"));
    EXPECT_TRUE(matches_one("/+", "/"));
    EXPECT_TRUE(matches_one("+/", "/"));
    EXPECT_TRUE(matches_one("/#", "/"));
    EXPECT_FALSE(matches_one("+", "/"));
    EXPECT_FALSE(matches_one("+/+/+", "/"));
    EXPECT_TRUE(matches_one("+/+/+", "//"));
    EXPECT_TRUE(matches_one("a/", "a/"));
    EXPECT_FALSE(matches_one("a", "a/"));
}

TEST(subscription_index, many_subscribers_and_filters_in_one_table) {
    subscription_index index;
    index.subscribe("sport/tennis/player1/#", "", 1, {});
    index.subscribe("sport/tennis/+", "", 2, {});
    index.subscribe("sport/#", "", 3, {});
    index.subscribe("#", "", 4, {});
    index.subscribe("+/+", "", 5, {});
    index.subscribe("/finance", "", 6, {});
    index.subscribe("$SYS/#", "", 7, {});
    EXPECT_EQ(index.size(), 7u);
    EXPECT_EQ(matched(index, "sport/tennis/player1"), (std::multiset<session_id>{1, 2, 3, 4}));
    EXPECT_EQ(matched(index, "sport"), (std::multiset<session_id>{3, 4}));
    EXPECT_EQ(matched(index, "sport/tennis"), (std::multiset<session_id>{3, 4, 5}));
    EXPECT_EQ(matched(index, "/finance"), (std::multiset<session_id>{4, 5, 6}));
    EXPECT_EQ(matched(index, "$SYS/broker/uptime"), (std::multiset<session_id>{7}));
    EXPECT_EQ(matched(index, "other"), (std::multiset<session_id>{4}));
}

TEST(subscription_index, session_reported_once_per_matching_filter) {
    subscription_index index;
    index.subscribe("a/b", "", 1, {});
    index.subscribe("a/+", "", 1, {});
    index.subscribe("a/#", "", 1, {});
    index.subscribe("a/c", "", 1, {});
    EXPECT_EQ(matched(index, "a/b"), (std::multiset<session_id>{1, 1, 1}));
}

TEST(subscription_index, subscribe_replaces_options) {
    subscription_index index;
    subscription_options o;
    o.qos = 1;
    o.identifier = 10;
    EXPECT_FALSE(index.subscribe("a/+", "", 5, o));
    o.qos = 2;
    o.no_local = true;
    o.retain_as_published = true;
    o.retain_handling = 2;
    o.identifier = 11;
    EXPECT_TRUE(index.subscribe("a/+", "", 5, o));
    EXPECT_EQ(index.size(), 1u);
    int calls = 0;
    index.match("a/x", [&](session_id sid, const subscription_options& got) {
        ++calls;
        EXPECT_EQ(sid, 5u);
        EXPECT_EQ(got.qos, 2);
        EXPECT_TRUE(got.no_local);
        EXPECT_TRUE(got.retain_as_published);
        EXPECT_EQ(got.retain_handling, 2);
        EXPECT_EQ(got.identifier, 11u);
    });
    EXPECT_EQ(calls, 1);
    // The same filter shared is another subscription.
    EXPECT_FALSE(index.subscribe("a/+", "g", 5, o));
    EXPECT_TRUE(index.subscribe("a/+", "g", 5, o));
    EXPECT_EQ(index.size(), 2u);
}

TEST(subscription_index, unsubscribe_unknown) {
    subscription_index index;
    EXPECT_FALSE(index.unsubscribe("a/b", "", 1));
    index.subscribe("a/b", "", 1, {});
    EXPECT_FALSE(index.unsubscribe("a/b", "", 2));
    EXPECT_FALSE(index.unsubscribe("a", "", 1));
    EXPECT_FALSE(index.unsubscribe("a/b/c", "", 1));
    EXPECT_FALSE(index.unsubscribe("a/+", "", 1));
    EXPECT_FALSE(index.unsubscribe("a/#", "", 1));
    EXPECT_FALSE(index.unsubscribe("a/b", "g", 1));
    EXPECT_EQ(index.size(), 1u);
    EXPECT_EQ(index.node_count(), 2u);
    EXPECT_TRUE(index.unsubscribe("a/b", "", 1));
    EXPECT_FALSE(index.unsubscribe("a/b", "", 1));
    EXPECT_EQ(index.size(), 0u);
    EXPECT_EQ(index.node_count(), 0u);
}

TEST(subscription_index, frees_empty_nodes) {
    subscription_index index;
    const std::vector<std::string> filters = {"a/b/c/d", "a/b", "a/+/c", "a/#", "#", "+", "/", "//",
                                              "x/y/z/#", "$SYS/+/q", "a/b/c/d/e/f"};
    session_id sid = 1;
    for (const auto& f : filters) {
        index.subscribe(f, "", sid, {});
        index.subscribe(f, "", sid + 100, {});
        index.subscribe(f, "grp", sid, {});
        ++sid;
    }
    EXPECT_EQ(index.size(), filters.size() * 3);
    EXPECT_GT(index.node_count(), 0u);

    // Removing a deep filter keeps the nodes its neighbours still use.
    EXPECT_TRUE(index.unsubscribe("a/b/c/d/e/f", "", 11));
    EXPECT_TRUE(index.unsubscribe("a/b/c/d/e/f", "", 111));
    const std::size_t before = index.node_count();
    EXPECT_TRUE(index.unsubscribe("a/b/c/d/e/f", "grp", 11));
    EXPECT_EQ(index.node_count(), before - 2);
    EXPECT_EQ(matched(index, "a/b/c/d"), (std::multiset<session_id>{1, 101, 1, 4, 104, 4, 5, 105, 5}));

    sid = 1;
    for (const auto& f : filters) {
        if (f != "a/b/c/d/e/f") {
            EXPECT_TRUE(index.unsubscribe(f, "grp", sid));
            EXPECT_TRUE(index.unsubscribe(f, "", sid + 100));
            EXPECT_TRUE(index.unsubscribe(f, "", sid));
        }
        ++sid;
    }
    EXPECT_EQ(index.size(), 0u);
    EXPECT_EQ(index.node_count(), 0u);
    EXPECT_TRUE(matched(index, "a/b/c/d").empty());
}

TEST(subscription_index, shared_group_round_robin) {
    subscription_index index;
    index.subscribe("jobs/+", "workers", 1, {});
    index.subscribe("jobs/+", "workers", 2, {});
    index.subscribe("jobs/+", "workers", 3, {});
    index.subscribe("jobs/+", "", 9, {});
    EXPECT_EQ(index.size(), 4u);

    std::map<session_id, int> counts;
    std::vector<session_id> order;
    for (int i = 0; i < 30; ++i) {
        int workers = 0;
        int plain = 0;
        index.match("jobs/" + std::to_string(i), [&](session_id sid, const subscription_options&) {
            if (sid == 9) {
                ++plain;
            } else {
                ++workers;
                ++counts[sid];
                order.push_back(sid);
            }
        });
        EXPECT_EQ(workers, 1);
        EXPECT_EQ(plain, 1);
    }
    EXPECT_EQ(counts, (std::map<session_id, int>{{1, 10}, {2, 10}, {3, 10}}));
    for (std::size_t i = 1; i < order.size(); ++i) {
        EXPECT_NE(order[i], order[i - 1]);
    }

    // Members leave; the rest keep sharing; the last one takes the group with it.
    EXPECT_TRUE(index.unsubscribe("jobs/+", "workers", 2));
    counts.clear();
    for (int i = 0; i < 10; ++i) {
        index.match("jobs/x", [&](session_id sid, const subscription_options&) { ++counts[sid]; });
    }
    EXPECT_EQ(counts, (std::map<session_id, int>{{1, 5}, {3, 5}, {9, 10}}));
    EXPECT_TRUE(index.unsubscribe("jobs/+", "workers", 1));
    EXPECT_TRUE(index.unsubscribe("jobs/+", "workers", 3));
    EXPECT_FALSE(index.unsubscribe("jobs/+", "workers", 3));
    EXPECT_EQ(matched(index, "jobs/x"), (std::multiset<session_id>{9}));
    EXPECT_TRUE(index.unsubscribe("jobs/+", "", 9));
    EXPECT_EQ(index.size(), 0u);
    EXPECT_EQ(index.node_count(), 0u);
}

TEST(subscription_index, shared_groups_are_per_filter_and_name) {
    subscription_index index;
    index.subscribe("a/+", "g1", 1, {});
    index.subscribe("a/+", "g2", 2, {});
    index.subscribe("a/#", "g1", 3, {});
    index.subscribe("#", "g1", 4, {});
    EXPECT_EQ(matched(index, "a/b"), (std::multiset<session_id>{1, 2, 3, 4}));
    EXPECT_EQ(matched(index, "$x/b"), (std::multiset<session_id>{}));
    EXPECT_TRUE(index.unsubscribe("a/+", "g1", 1));
    EXPECT_EQ(matched(index, "a/b"), (std::multiset<session_id>{2, 3, 4}));
}

TEST(subscription_index, wide_tables_grow_and_shrink) {
    subscription_index index;
    constexpr int n = 3000;
    for (int i = 0; i < n; ++i) {
        index.subscribe("dev/" + std::to_string(i) + "/cmd", "", static_cast<session_id>(i + 1), {});
        index.subscribe("all/cmd", "", static_cast<session_id>(i + 1), {});
        index.subscribe("all/cmd", "pool", static_cast<session_id>(i + 1), {});
    }
    EXPECT_EQ(index.size(), 3u * n);
    EXPECT_TRUE(index.subscribe("all/cmd", "", 17, {}));
    for (int i = 0; i < n; i += 7) {
        EXPECT_EQ(matched(index, "dev/" + std::to_string(i) + "/cmd"),
                  (std::multiset<session_id>{static_cast<session_id>(i + 1)}));
    }
    EXPECT_EQ(matched(index, "all/cmd").size(), static_cast<std::size_t>(n) + 1);
    for (int i = 0; i < n; i += 2) {
        EXPECT_TRUE(index.unsubscribe("dev/" + std::to_string(i) + "/cmd", "", static_cast<session_id>(i + 1)));
        EXPECT_TRUE(index.unsubscribe("all/cmd", "", static_cast<session_id>(i + 1)));
        EXPECT_TRUE(index.unsubscribe("all/cmd", "pool", static_cast<session_id>(i + 1)));
    }
    for (int i = 0; i < n; ++i) {
        const auto got = matched(index, "dev/" + std::to_string(i) + "/cmd");
        EXPECT_EQ(got.size(), i % 2 == 0 ? 0u : 1u) << i;
    }
    std::set<session_id> plain;
    index.match("all/cmd", [&](session_id sid, const subscription_options&) { plain.insert(sid); });
    EXPECT_EQ(plain.size(), static_cast<std::size_t>(n) / 2);
    std::size_t remaining = n / 2;
    for (int i = 1; i < n; i += 2) {
        EXPECT_TRUE(index.unsubscribe("dev/" + std::to_string(i) + "/cmd", "", static_cast<session_id>(i + 1)));
        EXPECT_TRUE(index.unsubscribe("all/cmd", "", static_cast<session_id>(i + 1)));
        EXPECT_TRUE(index.unsubscribe("all/cmd", "pool", static_cast<session_id>(i + 1)));
        --remaining;
        if (i % 101 == 0) {
            EXPECT_EQ(matched(index, "dev/" + std::to_string(n - 1) + "/cmd").size(), 1u);
            EXPECT_EQ(matched(index, "all/cmd").size(), remaining + 1);
        }
    }
    EXPECT_EQ(index.size(), 0u);
    EXPECT_EQ(index.node_count(), 0u);
}

TEST(subscription_index, deep_wildcard_filters) {
    subscription_index index;
    std::string filter = "+";
    std::string topic = "x";
    for (int i = 1; i < 2000; ++i) {
        filter += "/+";
        topic += "/x";
    }
    index.subscribe(filter, "", 1, {});
    index.subscribe(topic, "", 2, {});
    EXPECT_EQ(matched(index, topic), (std::multiset<session_id>{1, 2}));
    EXPECT_TRUE(index.unsubscribe(filter, "", 1));
    EXPECT_TRUE(index.unsubscribe(topic, "", 2));
    EXPECT_EQ(index.node_count(), 0u);
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

TEST(subscription_index, random_topics_agree_with_naive_matcher) {
    std::mt19937 rng(20240611);
    subscription_index index;
    std::set<std::tuple<std::string, std::string, session_id>> live;
    for (int i = 0; i < 600; ++i) {
        const std::string filter = random_text(rng, true);
        const session_id sid = std::uniform_int_distribution<session_id>(1, 40)(rng);
        const std::string group = std::uniform_int_distribution<int>(0, 5)(rng) == 0 ? "g" : "";
        const bool fresh = live.emplace(filter, group, sid).second;
        EXPECT_EQ(index.subscribe(filter, group, sid, {}), !fresh);
    }
    // Drop a third to exercise removal paths before matching.
    for (auto it = live.begin(); it != live.end();) {
        if (std::uniform_int_distribution<int>(0, 2)(rng) == 0) {
            EXPECT_TRUE(index.unsubscribe(std::get<0>(*it), std::get<1>(*it), std::get<2>(*it)));
            it = live.erase(it);
        } else {
            ++it;
        }
    }
    ASSERT_EQ(index.size(), live.size());
    std::vector<std::vector<std::string_view>> live_levels;
    for (const auto& entry : live) {
        live_levels.push_back(split_levels(std::get<0>(entry)));
    }

    for (int i = 0; i < 10000; ++i) {
        const std::string topic = random_text(rng, false);
        const auto topic_levels = split_levels(topic);
        std::multiset<session_id> want_plain;
        std::map<std::string, std::set<session_id>> want_groups;  // filter -> members
        std::size_t k = 0;
        for (const auto& [filter, group, sid] : live) {
            if (naive_matches(live_levels[k++], topic_levels)) {
                if (group.empty()) {
                    want_plain.insert(sid);
                } else {
                    want_groups[filter].insert(sid);
                }
            }
        }
        std::multiset<session_id> got;
        index.match(topic, [&](session_id sid, const subscription_options&) { got.insert(sid); });
        ASSERT_EQ(got.size(), want_plain.size() + want_groups.size()) << topic;
        std::multiset<session_id> rest = got;
        for (session_id sid : want_plain) {
            auto it = rest.find(sid);
            ASSERT_NE(it, rest.end()) << topic;
            rest.erase(it);
        }
        // Each matching group picked one of its members.
        std::set<session_id> any_member;
        for (const auto& [filter, members] : want_groups) {
            any_member.insert(members.begin(), members.end());
        }
        for (session_id sid : rest) {
            ASSERT_EQ(any_member.count(sid), 1u) << topic;
        }
    }

    for (const auto& [filter, group, sid] : live) {
        EXPECT_TRUE(index.unsubscribe(filter, group, sid));
    }
    EXPECT_EQ(index.size(), 0u);
    EXPECT_EQ(index.node_count(), 0u);
}

}  // namespace
}  // namespace iothub::broker
