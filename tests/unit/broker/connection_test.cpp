// The protocol state machine driven without sockets: packets in, packets out, a fake clock.

#include "connection_harness.hpp"

namespace iothub::broker {
namespace {

using namespace iothub::broker::testing;

TEST_F(fixture, connect_311_gets_connack_accepted) {
    client a(*b, protocol_version::v311);
    auto ack = a.connect("a");
    EXPECT_EQ(ack.reason, mqtt::reason_code::success);
    EXPECT_FALSE(ack.session_present);
    EXPECT_TRUE(a.c->connected());
}

TEST_F(fixture, empty_id_with_persistent_session_is_refused_on_311) {
    client a(*b, protocol_version::v311);
    auto ack = a.connect("", false);
    EXPECT_EQ(ack.reason, mqtt::reason_code::client_identifier_not_valid);
    EXPECT_TRUE(a.t.closed);
}

TEST_F(fixture, empty_id_is_assigned_on_v5) {
    client a(*b, protocol_version::v5);
    auto ack = a.connect("");
    ASSERT_TRUE(ack.props.assigned_client_identifier.has_value());
    EXPECT_FALSE(ack.props.assigned_client_identifier->empty());
    EXPECT_EQ(*ack.props.receive_maximum, lim.receive_maximum);
    EXPECT_EQ(*ack.props.topic_alias_maximum, lim.topic_alias_maximum);
}

TEST_F(fixture, first_packet_not_connect_closes) {
    client a(*b, protocol_version::v311);
    a.send(mqtt::pingreq{});
    EXPECT_TRUE(a.t.closed);
    EXPECT_TRUE(a.received().empty());
}

TEST_F(fixture, publish_reaches_subscriber_once_at_highest_qos) {
    client sub(*b, protocol_version::v311), pub(*b, protocol_version::v311);
    sub.connect("sub");
    pub.connect("pub");
    sub.subscribe("a/+", 0, 1);
    sub.subscribe("a/#", 1, 2);
    sub.received();
    pub.publish("a/b", "hello", 1, false, 7);
    auto acks = pub.received();
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(std::get<mqtt::ack>(acks[0]).packet_id, 7);
    auto got = publishes(sub.received());
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].payload, "hello");
    EXPECT_EQ(got[0].qos, 1);
    EXPECT_FALSE(got[0].retain);
}

TEST_F(fixture, keep_alive_timeout_publishes_will) {
    client watcher(*b, protocol_version::v311), dying(*b, protocol_version::v311);
    watcher.connect("watcher");
    watcher.subscribe("status/#", 0);
    watcher.received();
    dying.connect("dying", true, 10, mqtt::will_message{"status/dying", "gone", 0, false, {}});
    now += 14'000;  // under 1.5 x 10 s
    b->worker_at(0).tick(now);
    EXPECT_FALSE(dying.t.closed);
    now += 2'000;
    b->worker_at(0).tick(now);
    EXPECT_TRUE(dying.t.closed);
    auto got = publishes(watcher.received());
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].topic, "status/dying");
}

TEST_F(fixture, normal_disconnect_discards_will) {
    client watcher(*b, protocol_version::v311), leaving(*b, protocol_version::v311);
    watcher.connect("watcher");
    watcher.subscribe("status/#", 0);
    watcher.received();
    leaving.connect("leaving", true, 0, mqtt::will_message{"status/leaving", "gone", 0, false, {}});
    leaving.send(mqtt::disconnect{});
    leaving.c->on_transport_closed();
    EXPECT_TRUE(publishes(watcher.received()).empty());
}

TEST_F(fixture, unacknowledged_qos1_is_resent_with_dup_after_reconnect) {
    client pub(*b, protocol_version::v311);
    pub.connect("pub");
    auto sub = std::make_unique<client>(*b, protocol_version::v311);
    sub->connect("sub", false);
    sub->subscribe("t", 1);
    sub->received();
    pub.publish("t", "one", 1, false, 1);
    auto first = publishes(sub->received());
    ASSERT_EQ(first.size(), 1u);
    EXPECT_FALSE(first[0].dup);
    sub->c->on_transport_closed();
    sub.reset();
    pub.publish("t", "two", 1, false, 2);  // queued while offline

    client again(*b, protocol_version::v311);
    auto ack = again.connect("sub", false);
    EXPECT_TRUE(ack.session_present);
    auto got = publishes(again.received());
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].payload, "one");
    EXPECT_TRUE(got[0].dup);
    EXPECT_EQ(got[0].packet_id, first[0].packet_id);
    EXPECT_EQ(got[1].payload, "two");
    EXPECT_FALSE(got[1].dup);
}

TEST_F(fixture, qos2_duplicate_publish_is_routed_once) {
    client sub(*b, protocol_version::v311), pub(*b, protocol_version::v311);
    sub.connect("sub");
    sub.subscribe("t", 2);
    sub.received();
    pub.connect("pub");
    pub.publish("t", "x", 2, false, 5);
    pub.publish("t", "x", 2, false, 5);  // re-sent before PUBREL
    auto acks = pub.received();
    ASSERT_EQ(acks.size(), 2u);
    EXPECT_EQ(std::get<mqtt::ack>(acks[1]).type, mqtt::packet_type::pubrec);
    EXPECT_EQ(publishes(sub.received()).size(), 1u);
    mqtt::ack rel;
    rel.type = mqtt::packet_type::pubrel;
    rel.packet_id = 5;
    pub.send(rel);
    auto comp = pub.received();
    ASSERT_EQ(comp.size(), 1u);
    EXPECT_EQ(std::get<mqtt::ack>(comp[0]).type, mqtt::packet_type::pubcomp);
}

TEST_F(fixture, take_over_closes_the_old_connection_with_0x8e) {
    client first(*b, protocol_version::v5);
    first.connect("same");
    client second(*b, protocol_version::v5);
    second.connect("same");
    auto got = first.received();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(std::get<mqtt::disconnect>(got[0]).reason, mqtt::reason_code::session_taken_over);
    EXPECT_TRUE(first.t.closed);
    EXPECT_TRUE(second.c->connected());
}

TEST_F(fixture, retained_message_delivered_on_subscribe_and_deleted_by_empty_payload) {
    client pub(*b, protocol_version::v311);
    pub.connect("pub");
    pub.publish("r/1", "kept", 0, true);
    client sub(*b, protocol_version::v311);
    sub.connect("sub");
    sub.subscribe("r/#", 1);
    auto got = publishes(sub.received());
    ASSERT_EQ(got.size(), 1u);
    EXPECT_TRUE(got[0].retain);
    EXPECT_EQ(got[0].qos, 0);
    pub.publish("r/1", "", 0, true);
    client late(*b, protocol_version::v311);
    late.connect("late");
    late.subscribe("r/#", 1);
    EXPECT_TRUE(publishes(late.received()).empty());
}

TEST_F(fixture, wildcard_in_publish_topic_is_topic_name_invalid_on_v5) {
    client a(*b, protocol_version::v5);
    a.connect("a");
    a.publish("a/+", "x");
    auto got = a.received();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(std::get<mqtt::disconnect>(got[0]).reason, mqtt::reason_code::topic_name_invalid);
    EXPECT_TRUE(a.t.closed);
}

TEST_F(fixture, offline_queue_is_bounded) {
    lim.max_queued_messages = 3;
    make();
    client pub(*b, protocol_version::v311);
    pub.connect("pub");
    {
        client sub(*b, protocol_version::v311);
        sub.connect("sub", false);
        sub.subscribe("t", 1);
        sub.received();
        sub.c->on_transport_closed();
    }
    for (int i = 0; i < 10; ++i) pub.publish("t", std::to_string(i), 1, false, static_cast<std::uint16_t>(i + 1));
    client again(*b, protocol_version::v311);
    again.connect("sub", false);
    auto got = publishes(again.received());
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0].payload, "0");
    EXPECT_EQ(got[2].payload, "2");
    EXPECT_EQ(b->drops().queue_full.load(), 7u);
}

TEST_F(fixture, connect_for_a_session_of_another_worker_asks_to_migrate) {
    make(4);
    // Find an id owned by a worker other than 0.
    std::string id;
    for (int i = 0; id.empty(); ++i)
        if (b->owner_of("default", "c" + std::to_string(i)) != 0) id = "c" + std::to_string(i);
    client a(*b, protocol_version::v311, 0);
    mqtt::connect p;
    p.client_id = id;
    p.protocol_name = "MQTT";
    a.send(p);
    EXPECT_EQ(a.t.migrate_to, static_cast<int>(b->owner_of("default", id)));
    EXPECT_TRUE(a.received().empty());
    // The CONNECT is still unread, to be replayed on the owner.
    EXPECT_FALSE(a.c->take_input().empty());
}

TEST_F(fixture, topic_alias_maps_topic_on_v5) {
    client sub(*b, protocol_version::v5), pub(*b, protocol_version::v5);
    sub.connect("sub");
    sub.subscribe("alias/t", 0);
    sub.received();
    pub.connect("pub");
    mqtt::publish p;
    p.topic = "alias/t";
    p.payload = "1";
    p.props.topic_alias = 3;
    pub.send(p);
    p.topic.clear();
    p.payload = "2";
    pub.send(p);
    auto got = publishes(sub.received());
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[1].topic, "alias/t");
    EXPECT_EQ(got[1].payload, "2");
}

// Each worker decodes every PUBLISH into one reused object: nothing of one packet may
// reach the next, whichever client sent it and whatever size its payload had.
TEST_F(fixture, one_publish_leaves_nothing_to_the_next) {
    client sub(*b, protocol_version::v5), a(*b, protocol_version::v5), c(*b, protocol_version::v311);
    sub.connect("sub");
    sub.subscribe("reuse/#", 1);
    sub.received();
    a.connect("a");
    c.connect("c");
    mqtt::publish p;
    p.topic = "reuse/a/with/a/topic/longer/than/a/short/string";
    p.payload.assign(10000, 'x');  // large: taken, not copied
    p.qos = 1;
    p.packet_id = 7;
    p.retain = true;
    p.props.user_properties.push_back({"origin", "a"});
    p.props.content_type = "text/plain";
    a.send(p);
    mqtt::publish q;
    q.topic = "reuse/a";
    q.payload = "small";
    a.send(q);
    mqtt::publish r;
    r.topic = "reuse/c";
    r.payload.assign(100, 'y');
    c.send(r);
    a.send(q);
    auto got = publishes(sub.received());
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got[0].payload, p.payload);
    EXPECT_EQ(got[0].props.user_properties.size(), 1u);
    EXPECT_EQ(got[0].props.content_type, std::optional<std::string>("text/plain"));
    for (std::size_t i = 1; i < got.size(); ++i) {
        EXPECT_EQ(got[i].qos, 0) << i;
        EXPECT_FALSE(got[i].retain) << i;
        EXPECT_TRUE(got[i].props.user_properties.empty()) << i;
        EXPECT_FALSE(got[i].props.content_type.has_value()) << i;
    }
    EXPECT_EQ(got[1].topic, "reuse/a");
    EXPECT_EQ(got[1].payload, "small");
    EXPECT_EQ(got[2].topic, "reuse/c");
    EXPECT_EQ(got[2].payload, r.payload);
    EXPECT_EQ(got[3].payload, "small");
}

// A worker fills the message of its last PUBLISH again when nothing kept it. Whatever keeps
// one (an offline queue, the in-flight window, the retained store, an output buffer holding a
// large payload by reference) must see it unchanged by the PUBLISH packets that follow.
TEST_F(fixture, kept_messages_are_not_overwritten_by_later_ones) {
    client pub(*b, protocol_version::v311);
    pub.connect("pub");
    pub.publish("keep/retained", "retained-one", 0, true);

    auto offline = std::make_unique<client>(*b, protocol_version::v311);
    offline->connect("offline", false);
    offline->subscribe("keep/q", 1);
    offline->received();
    offline->c->on_transport_closed();
    offline.reset();

    client live(*b, protocol_version::v311);
    live.connect("live");
    live.subscribe("keep/big", 0);
    live.received();
    const std::string big(8192, 'B');
    pub.publish("keep/big", big);  // held in live's output by reference, not yet read

    for (int i = 0; i < 5; ++i) {
        pub.publish("keep/q", "queued-" + std::to_string(i), 1, false, static_cast<std::uint16_t>(i + 1));
        pub.publish("keep/other", std::string(100, static_cast<char>('a' + i)));
        pub.publish("keep/big", std::string(8192, static_cast<char>('c' + i)));
    }

    auto got_live = publishes(live.received());
    ASSERT_EQ(got_live.size(), 6u);
    EXPECT_EQ(got_live[0].payload, big);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(got_live[i + 1].payload, std::string(8192, static_cast<char>('c' + i)));

    client again(*b, protocol_version::v311);
    again.connect("offline", false);
    auto queued = publishes(again.received());
    ASSERT_EQ(queued.size(), 5u);
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(queued[i].topic, "keep/q");
        EXPECT_EQ(queued[i].payload, "queued-" + std::to_string(i));
    }

    client late(*b, protocol_version::v311);
    late.connect("late");
    late.subscribe("keep/#", 0);
    auto retained = publishes(late.received());
    ASSERT_EQ(retained.size(), 1u);
    EXPECT_EQ(retained[0].topic, "keep/retained");
    EXPECT_EQ(retained[0].payload, "retained-one");
}

TEST_F(fixture, message_too_large_for_subscriber_is_not_sent) {
    client sub(*b, protocol_version::v5), pub(*b, protocol_version::v5);
    mqtt::properties props;
    props.maximum_packet_size = 64;
    sub.connect("sub", true, 0, std::nullopt, props);
    sub.subscribe("big", 1);
    sub.received();
    pub.connect("pub");
    pub.publish("big", std::string(100, 'x'), 1, false, 1);
    pub.publish("big", "small", 1, false, 2);
    auto got = publishes(sub.received());
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].payload, "small");
}

TEST_F(fixture, packets_split_at_every_byte_are_handled) {
    client sub(*b, protocol_version::v311);
    sub.connect("sub");
    sub.subscribe("t", 0);
    sub.received();
    client pub(*b, protocol_version::v5);
    std::string bytes;
    mqtt::connect c;
    c.client_id = "pub";
    mqtt::encode(c, protocol_version::v5, bytes);
    mqtt::publish p;
    p.topic = "t";
    p.payload = std::string(300, 'p');
    mqtt::encode(p, protocol_version::v5, bytes);
    mqtt::encode(p, protocol_version::v5, bytes);
    for (char ch : bytes) pub.send_raw(std::string_view(&ch, 1));
    EXPECT_TRUE(pub.c->connected());
    EXPECT_EQ(publishes(sub.received()).size(), 2u);
}

TEST_F(fixture, a_large_payload_is_shared_not_copied_per_subscriber) {
    std::vector<std::unique_ptr<client>> subs;
    for (int i = 0; i < 3; ++i) {
        subs.push_back(std::make_unique<client>(*b, i == 2 ? protocol_version::v5 : protocol_version::v311));
        subs.back()->connect("sub" + std::to_string(i));
        subs.back()->subscribe("big", 1);
        subs.back()->received();
    }
    client pub(*b, protocol_version::v311);
    pub.connect("pub");
    const std::string payload(5000, 'z');
    pub.publish("big", payload, 1, false, 1);
    for (auto& s : subs) {
        // Headers are owned, the payload is referenced.
        EXPECT_LT(s->c->output().bytes().size(), 100u);
        EXPECT_EQ(s->c->output().size(), s->c->output().bytes().size() + payload.size());
        auto got = publishes(s->received());
        ASSERT_EQ(got.size(), 1u);
        EXPECT_EQ(got[0].payload, payload);
    }
}

TEST_F(fixture, message_too_large_does_not_take_a_window_slot) {
    client sub(*b, protocol_version::v5), pub(*b, protocol_version::v5);
    mqtt::properties props;
    props.maximum_packet_size = 64;
    props.receive_maximum = 2;
    sub.connect("sub", true, 0, std::nullopt, props);
    sub.subscribe("big", 1);
    sub.received();
    pub.connect("pub");
    for (std::uint16_t i = 1; i <= 3; ++i) pub.publish("big", std::string(100, 'x'), 1, false, i);
    pub.publish("big", "small", 1, false, 4);
    auto got = publishes(sub.received());
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].payload, "small");
    EXPECT_EQ(b->drops().too_large.load(), 3u);
}

TEST_F(fixture, v5_disconnect_with_error_reason_publishes_will) {
    client watcher(*b, protocol_version::v5), leaving(*b, protocol_version::v5);
    watcher.connect("watcher");
    watcher.subscribe("status/#", 0);
    watcher.received();
    leaving.connect("leaving", true, 0, mqtt::will_message{"status/leaving", "gone", 0, false, {}});
    mqtt::disconnect d;
    d.reason = mqtt::reason_code::unspecified_error;
    leaving.send(d);
    ASSERT_EQ(publishes(watcher.received()).size(), 1u);
}

TEST_F(fixture, delayed_will_expiry_starts_when_it_is_published) {
    client watcher(*b, protocol_version::v5);
    watcher.connect("watcher");
    watcher.subscribe("status/#", 1);
    watcher.received();
    mqtt::will_message will{"status/late", "gone", 1, false, {}};
    will.props.will_delay_interval = 30;
    will.props.message_expiry_interval = 10;
    mqtt::properties props;
    props.session_expiry_interval = 3600;
    {
        client dying(*b, protocol_version::v5);
        dying.connect("dying", true, 0, will, props);
        dying.c->on_transport_closed();
    }
    now += 20'000;
    b->worker_at(0).tick(now);
    EXPECT_TRUE(publishes(watcher.received()).empty());
    now += 11'000;
    b->worker_at(0).tick(now);
    auto got = publishes(watcher.received());
    ASSERT_EQ(got.size(), 1u);
    ASSERT_TRUE(got[0].props.message_expiry_interval.has_value());
    EXPECT_EQ(*got[0].props.message_expiry_interval, 10u);
}

TEST_F(fixture, qos2_over_the_retained_limit_is_still_exactly_once) {
    lim.max_retained = 1;
    make();
    client sub(*b, protocol_version::v311), pub(*b, protocol_version::v311);
    sub.connect("sub");
    sub.subscribe("r/#", 2);
    sub.received();
    pub.connect("pub");
    pub.publish("r/1", "first", 0, true);
    pub.publish("r/2", "second", 2, true, 9);
    pub.publish("r/2", "second", 2, true, 9);  // re-sent before PUBREL
    auto acks = pub.received();
    ASSERT_EQ(acks.size(), 2u);
    EXPECT_EQ(std::get<mqtt::ack>(acks[0]).reason, mqtt::reason_code::success);
    EXPECT_EQ(publishes(sub.received()).size(), 2u);  // "first" and one "second"
    EXPECT_EQ(b->drops().retained_refused.load(), 1u);
}

TEST_F(fixture, reconnect_resends_only_what_the_new_window_allows) {
    client pub(*b, protocol_version::v311);
    pub.connect("pub");
    mqtt::properties props;
    props.session_expiry_interval = 3600;
    {
        client sub(*b, protocol_version::v5);
        sub.connect("sub", true, 0, std::nullopt, props);
        sub.subscribe("t", 1);
        sub.received();
        for (std::uint16_t i = 1; i <= 5; ++i) pub.publish("t", std::to_string(i), 1, false, i);
        EXPECT_EQ(publishes(sub.received()).size(), 5u);  // unacknowledged
        sub.c->on_transport_closed();
    }
    props.receive_maximum = 2;
    client again(*b, protocol_version::v5);
    auto ack = again.connect("sub", false, 0, std::nullopt, props);
    EXPECT_TRUE(ack.session_present);
    auto got = publishes(again.received());
    ASSERT_EQ(got.size(), 2u);
    EXPECT_TRUE(got[0].dup);
    EXPECT_EQ(got[0].payload, "1");
    EXPECT_EQ(got[1].payload, "2");
    // Acknowledging one lets the next through, as a new send.
    mqtt::ack a;
    a.type = mqtt::packet_type::puback;
    a.packet_id = got[0].packet_id;
    again.send(a);
    auto next = publishes(again.received());
    ASSERT_EQ(next.size(), 1u);
    EXPECT_EQ(next[0].payload, "3");
    EXPECT_FALSE(next[0].dup);
}

}  // namespace
}  // namespace iothub::broker
