#include "broker/ring.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <random>
#include <string>

namespace iothub::broker {
namespace {

std::vector<int> contents(const ring<int>& r) { return {r.begin(), r.end()}; }

TEST(ring, starts_empty_and_keeps_order_across_wrap) {
    ring<int> r;
    EXPECT_TRUE(r.empty());
    for (int i = 0; i < 3; ++i) r.push_back(int{i});
    r.pop_front();
    r.pop_front();
    for (int i = 3; i < 9; ++i) r.push_back(int{i});  // wraps, then grows
    r.push_front(1);
    EXPECT_EQ(contents(r), (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8}));
    EXPECT_EQ(r.front(), 1);
    EXPECT_EQ(r.back(), 8);
}

TEST(ring, erase_and_erase_if_keep_the_others_in_order) {
    ring<int> r;
    for (int i = 0; i < 10; ++i) r.push_back(int{i});
    auto it = std::find(r.begin(), r.end(), 4);
    it = r.erase(it);
    EXPECT_EQ(*it, 5);
    r.erase_if([](int v) { return v % 3 == 0; });
    EXPECT_EQ(contents(r), (std::vector<int>{1, 2, 5, 7, 8}));
}

TEST(ring, matches_a_deque_under_random_operations) {
    std::mt19937 rng(7);
    ring<std::string> r;
    std::deque<std::string> d;
    for (int step = 0; step < 20000; ++step) {
        const int op = static_cast<int>(rng() % 6);
        const std::string v = std::to_string(step);
        if (op <= 1) {
            r.push_back(std::string(v));
            d.push_back(v);
        } else if (op == 2) {
            r.push_front(std::string(v));
            d.push_front(v);
        } else if (op == 3 && !d.empty()) {
            r.pop_front();
            d.pop_front();
        } else if (op == 4 && !d.empty()) {
            r.pop_back();
            d.pop_back();
        } else if (op == 5 && !d.empty()) {
            const std::size_t at = rng() % d.size();
            auto it = r.begin();
            for (std::size_t i = 0; i < at; ++i) ++it;
            r.erase(it);
            d.erase(d.begin() + static_cast<std::ptrdiff_t>(at));
        }
        ASSERT_EQ(r.size(), d.size());
    }
    EXPECT_TRUE(std::equal(r.begin(), r.end(), d.begin(), d.end()));
}

}  // namespace
}  // namespace iothub::broker
