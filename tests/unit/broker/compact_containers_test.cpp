// The small containers an idle connection and its session are made of: each holds nothing
// (a null pointer) until used, and must behave as the standard container it replaces.

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "broker/broker.hpp"
#include "broker/input_buffer.hpp"
#include "broker/output_queue.hpp"
#include "broker/packet_id_set.hpp"
#include "broker/session_table.hpp"
#include "broker/worker.hpp"

namespace iothub::broker {
namespace {

std::vector<std::uint16_t> contents(const packet_id_set& s) {
    return {s.begin(), s.end()};
}

TEST(packet_id_set, starts_empty_and_keeps_ids_sorted) {
    packet_id_set s;
    EXPECT_TRUE(s.empty());
    EXPECT_EQ(s.begin(), s.end());
    EXPECT_EQ(s.count(7), 0u);
    EXPECT_EQ(s.erase(7), 0u);
    EXPECT_TRUE(s.insert(9));
    EXPECT_TRUE(s.insert(1));
    EXPECT_TRUE(s.insert(65535));
    EXPECT_FALSE(s.insert(9));
    EXPECT_EQ(contents(s), (std::vector<std::uint16_t>{1, 9, 65535}));
    EXPECT_EQ(s.erase(9), 1u);
    EXPECT_EQ(s.count(9), 0u);
    EXPECT_EQ(s.count(65535), 1u);
    EXPECT_EQ(s.size(), 2u);
}

TEST(packet_id_set, matches_a_std_set_under_random_operations) {
    std::mt19937 rng(11);
    packet_id_set s;
    std::set<std::uint16_t> ref;
    for (int step = 0; step < 50000; ++step) {
        // Few distinct ids, so inserts and erases hit present and absent ids alike; bursts
        // of inserts grow the array past the size it gives back when emptied.
        const auto id = static_cast<std::uint16_t>(rng() % (step % 5000 < 2500 ? 300 : 40));
        switch (rng() % 3) {
        case 0:
        case 1:
            ASSERT_EQ(s.insert(id), ref.insert(id).second);
            break;
        default:
            ASSERT_EQ(s.erase(id), ref.erase(id));
        }
        ASSERT_EQ(s.count(id), ref.count(id));
        ASSERT_EQ(s.size(), ref.size());
    }
    EXPECT_TRUE(std::equal(s.begin(), s.end(), ref.begin(), ref.end()));
}

TEST(input_buffer, keeps_an_incomplete_tail_and_frees_it_when_used) {
    const std::uint8_t bytes[] = {1, 2, 3, 4, 5, 6, 7, 8};
    input_buffer in;
    EXPECT_TRUE(in.empty());
    EXPECT_TRUE(in.bytes().empty());
    in.append(std::span<const std::uint8_t>(bytes, 3));
    in.append(std::span<const std::uint8_t>(bytes + 3, 5));
    EXPECT_EQ(std::vector<std::uint8_t>(in.bytes().begin(), in.bytes().end()),
              (std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6, 7, 8}));
    in.consume(6);
    EXPECT_EQ(std::vector<std::uint8_t>(in.bytes().begin(), in.bytes().end()),
              (std::vector<std::uint8_t>{7, 8}));
    in.consume(2);
    EXPECT_TRUE(in.empty());

    // Large appends grow it; take() hands everything over and leaves it empty.
    std::vector<std::uint8_t> big(100000);
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 7);
    for (std::size_t at = 0; at < big.size(); at += 999)
        in.append(std::span<const std::uint8_t>(big).subspan(
            at, std::min<std::size_t>(999, big.size() - at)));
    in.consume(0);
    EXPECT_EQ(in.take(), big);
    EXPECT_TRUE(in.empty());
}

TEST(output_queue, keeps_large_payloads_by_reference_in_order) {
    auto big = std::make_shared<message>();
    big->payload.assign(output_queue::share_threshold, 'x');
    auto small = std::make_shared<message>();
    small->payload = "tiny";

    output_queue q;
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.size(), 0u);
    q.bytes() += "a";
    q.append_payload(big);
    q.bytes() += "b";
    q.append_payload(small);
    q.append_payload(big);
    EXPECT_FALSE(q.empty());
    EXPECT_EQ(q.size(), 2 + 4 + 2 * big->payload.size());
    EXPECT_EQ(q.flatten(), "a" + big->payload + "btiny" + big->payload);
    EXPECT_EQ(big.use_count(), 3);

    output_queue other;
    other.swap(q);
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(other.flatten(), "a" + big->payload + "btiny" + big->payload);
    other.clear();
    EXPECT_TRUE(other.empty());
    EXPECT_EQ(other.size(), 0u);
    EXPECT_EQ(big.use_count(), 1);
    other.append_payload(big);  // only a shared payload: no owned bytes
    EXPECT_FALSE(other.empty());
    EXPECT_EQ(other.flatten(), big->payload);
    other.clear();
    other.trim();
    EXPECT_TRUE(other.empty());
}

TEST(session_table, finds_sessions_by_id_and_by_key_until_they_end) {
    hub_space a;
    a.name = "a";
    hub_space b;
    b.name = "b";
    session_table t(3);
    auto& s1 = t.create(a, "dev");
    auto& s2 = t.create(b, "dev");  // same client id, another hub
    auto& s3 = t.create(a, "a-client-id-longer-than-any-small-string-buffer");
    EXPECT_EQ(t.size(), 3u);
    EXPECT_NE(s1.id, 0u);
    EXPECT_NE(s1.id, s2.id);
    EXPECT_EQ(worker_of(s1.id), 3u);
    EXPECT_EQ(s1.client_id, "dev");
    EXPECT_EQ(s3.client_id, "a-client-id-longer-than-any-small-string-buffer");
    EXPECT_EQ(t.find(s1.id), &s1);
    EXPECT_EQ(t.find(s3.id), &s3);
    EXPECT_EQ(t.find("a", "dev"), &s1);
    EXPECT_EQ(t.find("b", "dev"), &s2);
    EXPECT_EQ(t.find("c", "dev"), nullptr);
    EXPECT_EQ(t.find("a", "de"), nullptr);

    const session_id old = s1.id;
    t.destroy(s1);
    EXPECT_EQ(t.find(old), nullptr);
    EXPECT_EQ(t.find("a", "dev"), nullptr);
    // The slot is reused by the next session, under another id: an old delivery misses it.
    auto& again = t.create(a, "dev");
    EXPECT_NE(again.id, old);
    EXPECT_EQ(t.find(old), nullptr);
    EXPECT_EQ(t.find(again.id), &again);
    EXPECT_EQ(t.find("a", "dev"), &again);
    EXPECT_EQ(t.find(session_id{12345} << session_table::worker_bits | 3), nullptr);

    int visited = 0;
    t.for_each([&](session&) { ++visited; });
    EXPECT_EQ(visited, 3);
}

TEST(session_table, matches_a_map_under_random_creates_and_destroys) {
    std::mt19937 rng(5);
    hub_space hubs[2];
    hubs[0].name = "h0";
    hubs[1].name = "h1";
    session_table t(0);
    std::map<std::pair<int, std::string>, session*> ref;
    std::set<session_id> ids_seen;
    for (int step = 0; step < 40000; ++step) {
        const int h = static_cast<int>(rng() % 2);
        const std::string id = "c" + std::to_string(rng() % 3000);
        auto it = ref.find({h, id});
        ASSERT_EQ(t.find(hubs[h].name, id), it == ref.end() ? nullptr : it->second);
        if (it == ref.end()) {
            auto& s = t.create(hubs[h], id);
            ASSERT_TRUE(ids_seen.insert(s.id).second);  // never an id given before
            ref.emplace(std::make_pair(h, id), &s);
        } else if (rng() % 2 == 0) {
            const session_id sid = it->second->id;
            t.destroy(*it->second);
            ref.erase(it);
            ASSERT_EQ(t.find(sid), nullptr);
        }
        ASSERT_EQ(t.size(), ref.size());
    }
    for (const auto& [key, s] : ref) {
        ASSERT_EQ(t.find(s->id), s);
        ASSERT_EQ(t.find(hubs[key.first].name, key.second), s);
    }
    std::size_t visited = 0;
    t.for_each([&](session&) { ++visited; });
    EXPECT_EQ(visited, ref.size());
}

}  // namespace
}  // namespace iothub::broker
