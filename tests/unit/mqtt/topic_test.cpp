// Topic names, topic filters, shared subscriptions, matching and UTF-8 validation.

#include <gtest/gtest.h>

#include <string>

#include "mqtt/topic.hpp"

namespace iothub::mqtt {
namespace {

using namespace std::string_literals;

TEST(ValidUtf8, AcceptsWellFormed) {
    for (const std::string& s : {""s, "ascii"s, "caf\xC3\xA9"s, "\xE2\x82\xAC"s, "\xED\x9F\xBF"s,
                                "\xEE\x80\x80"s, "\xF0\x9F\x98\x80"s, "\xF4\x8F\xBF\xBF"s,
                                "\xEF\xBF\xBF"s})
        EXPECT_TRUE(valid_utf8(s)) << s;
}

TEST(ValidUtf8, RejectsIllFormed) {
    const struct {
        std::string text;
        const char* why;
    } cases[] = {
        {"a\0b"s, "U+0000"},
        {"\x80"s, "lone continuation"},
        {"\xC3"s, "truncated two-byte"},
        {"\xE2\x82"s, "truncated three-byte"},
        {"\xF0\x9F\x98"s, "truncated four-byte"},
        {"\xC0\x80"s, "overlong U+0000"},
        {"\xC1\xBF"s, "overlong two-byte"},
        {"\xE0\x9F\xBF"s, "overlong three-byte"},
        {"\xF0\x8F\xBF\xBF"s, "overlong four-byte"},
        {"\xED\xA0\x80"s, "high surrogate U+D800"},
        {"\xED\xBF\xBF"s, "low surrogate U+DFFF"},
        {"\xF4\x90\x80\x80"s, "above U+10FFFF"},
        {"\xF5\x80\x80\x80"s, "lead byte F5"},
        {"\xFF"s, "byte FF"},
        {"\xC3\x28"s, "bad continuation"},
        {"\xE2\x28\xA1"s, "bad second byte"},
        {"\xE2\x82\x28"s, "bad third byte"},
    };
    for (const auto& c : cases) EXPECT_FALSE(valid_utf8(c.text)) << c.why;
}

TEST(TopicName, Valid) {
    for (const char* t : {"a", "a/b", "/", "/a", "a/", "a//b", "$SYS/x", "sport/tennis/player1",
                          " ", "caf\xC3\xA9"})
        EXPECT_TRUE(valid_topic_name(t)) << t;
}

TEST(TopicName, Invalid) {
    for (const char* t : {"", "+", "#", "a/+", "a/#", "a+b", "a#", "\xFF"})
        EXPECT_FALSE(valid_topic_name(t)) << t;
}

TEST(TopicName, Limits) {
    EXPECT_TRUE(valid_topic_name("abcd", 4));
    EXPECT_FALSE(valid_topic_name("abcde", 4));
    EXPECT_TRUE(valid_topic_name("a/b/c", 0, 3));
    EXPECT_FALSE(valid_topic_name("a/b/c/d", 0, 3));
    EXPECT_FALSE(valid_topic_name("///", 0, 3));
}

// valid_topic_name and valid_utf8 look at eight bytes at a time: a wildcard, NUL, non-ASCII
// byte or bad sequence must be seen at every offset, and '/' counted at every offset.
TEST(TopicName, EveryOffsetOfLongTopics) {
    for (std::size_t len = 1; len <= 40; ++len) {
        const std::string base(len, 'a');
        EXPECT_TRUE(valid_topic_name(base, 0, 0)) << len;
        for (std::size_t at = 0; at < len; ++at) {
            for (const char bad : {'+', '#', '\0'}) {
                std::string t = base;
                t[at] = bad;
                EXPECT_FALSE(valid_topic_name(t, 0, 0)) << len << " " << at << " " << int(bad);
            }
            std::string lone = base;
            lone[at] = '\xC3';  // a lead byte without its continuation (unless one follows)
            EXPECT_EQ(valid_topic_name(lone, 0, 0), false) << len << " " << at;
            EXPECT_FALSE(valid_utf8(lone)) << len << " " << at;
            std::string nul = base;
            nul[at] = '\0';
            EXPECT_FALSE(valid_utf8(nul)) << len << " " << at;
            if (at + 1 < len) {
                std::string two = base;
                two[at] = '\xC3';
                two[at + 1] = '\xA9';
                EXPECT_TRUE(valid_topic_name(two, 0, 0)) << len << " " << at;
                EXPECT_TRUE(valid_utf8(two)) << len << " " << at;
            }
            // Levels: one '/' at `at` makes two; the limit sees it wherever it is.
            std::string slash = base;
            slash[at] = '/';
            EXPECT_TRUE(valid_topic_name(slash, 0, 2)) << len << " " << at;
            EXPECT_FALSE(valid_topic_name(slash, 0, 1)) << len << " " << at;
        }
        std::string all(len, '/');
        EXPECT_TRUE(valid_topic_name(all, 0, len + 1)) << len;
        EXPECT_FALSE(valid_topic_name(all, 0, len)) << len;
    }
}

TEST(TopicFilter, Valid) {
    for (const char* f : {"a", "#", "+", "a/#", "a/+", "+/+", "+/a/#", "/#", "a//b", "/", "+/",
                          "a/+/b", "$SYS/#", "$share/g/a"})
        EXPECT_TRUE(valid_topic_filter(f)) << f;
}

TEST(TopicFilter, Invalid) {
    for (const char* f : {"", "a#", "#/a", "a/#/b", "a+", "+a", "a/b+/c", "##", "++", "a/#/",
                          "\xC0\x80"})
        EXPECT_FALSE(valid_topic_filter(f)) << f;
}

TEST(TopicFilter, Limits) {
    EXPECT_FALSE(valid_topic_filter("a/b/#", 4));
    EXPECT_TRUE(valid_topic_filter("a/b/#", 5));
    EXPECT_FALSE(valid_topic_filter("a/b/#", 0, 2));
    EXPECT_TRUE(valid_topic_filter("a/b/#", 0, 3));
}

TEST(SharedFilter, Parses) {
    shared_filter s;
    ASSERT_TRUE(parse_shared("$share/group/a/+/c", s));
    EXPECT_EQ(s.group, "group");
    EXPECT_EQ(s.filter, "a/+/c");
    ASSERT_TRUE(parse_shared("$share/g/#", s));
    EXPECT_EQ(s.group, "g");
    EXPECT_EQ(s.filter, "#");
}

TEST(SharedFilter, NotSharedPassesThrough) {
    shared_filter s;
    for (const char* f : {"a/b", "$share", "$sharegroup/a", "$SYS/#", "share/g/a"}) {
        ASSERT_TRUE(parse_shared(f, s)) << f;
        EXPECT_EQ(s.group, "") << f;
        EXPECT_EQ(s.filter, f);
    }
}

TEST(SharedFilter, Invalid) {
    shared_filter s;
    for (const char* f : {"$share/", "$share/g", "$share//a", "$share/g/", "$share/g+/a",
                          "$share/#/a", "$share/+/a", "$share/g/a#", "$share/g/#/a"})
        EXPECT_FALSE(parse_shared(f, s)) << f;
}

TEST(TopicMatches, Table) {
    const struct {
        const char* filter;
        const char* topic;
        bool match;
    } cases[] = {
        {"a", "a", true},
        {"a", "b", false},
        {"a", "a/b", false},
        {"a/b", "a", false},
        {"a/b", "a/b", true},
        {"a/b", "a/b/", false},
        {"#", "a", true},
        {"#", "a/b/c", true},
        {"#", "/", true},
        {"#", "/a", true},
        {"a/#", "a", true},  // '#' also matches the parent level
        {"a/#", "a/", true},
        {"a/#", "a/b", true},
        {"a/#", "a/b/c", true},
        {"a/#", "b", false},
        {"a/#", "ab", false},
        {"a/b/#", "a", false},
        {"+", "a", true},
        {"+", "", true},
        {"+", "a/b", false},
        {"+", "/", false},
        {"+/+", "/", true},  // '+' matches empty levels
        {"/+", "/", true},
        {"+/", "/", true},
        {"+/a", "/a", true},
        {"a/+", "a/", true},
        {"a/+", "a", false},
        {"a/+", "a/b", true},
        {"a/+", "a/b/c", false},
        {"a/+/c", "a/b/c", true},
        {"a/+/c", "a//c", true},
        {"a/+/c", "a/b/d", false},
        {"+/#", "a", true},
        {"+/#", "a/b", true},
        {"+/+/#", "a", false},
        {"a//b", "a//b", true},
        {"a//b", "a/b", false},
        {"/#", "/", true},
        {"/#", "a", false},
        {"sport/tennis/+", "sport/tennis/player1", true},
        {"sport/tennis/+", "sport/tennis/player1/ranking", false},
        {"sport/+", "sport", false},
        {"sport/+", "sport/", true},
        {"sport/#", "sport", true},
    };
    for (const auto& c : cases)
        EXPECT_EQ(topic_matches(c.filter, c.topic), c.match) << c.filter << " vs " << c.topic;
}

TEST(TopicMatches, DollarTopics) {
    EXPECT_FALSE(topic_matches("#", "$SYS/broker"));
    EXPECT_FALSE(topic_matches("+/broker", "$SYS/broker"));
    EXPECT_FALSE(topic_matches("+", "$SYS"));
    EXPECT_FALSE(topic_matches("+/#", "$SYS/a"));
    EXPECT_TRUE(topic_matches("$SYS/#", "$SYS/broker"));
    EXPECT_TRUE(topic_matches("$SYS/#", "$SYS"));
    EXPECT_TRUE(topic_matches("$SYS/+", "$SYS/broker"));
    EXPECT_TRUE(topic_matches("$SCW/events/#", "$SCW/events/hub/x"));
    EXPECT_TRUE(topic_matches("a/#", "a/$b"));  // '$' only matters at the first level
    EXPECT_TRUE(topic_matches("+/$b", "a/$b"));
}

}  // namespace
}  // namespace iothub::mqtt
