#include "store/sqlite_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "store/temp_dir.hpp"

namespace iothub::store {
namespace {

using testing::temp_dir;
using namespace std::string_literals;

std::vector<retained_record> all_retained(store& s) {
    std::vector<retained_record> out;
    s.load_retained([&out](retained_record&& r) { out.push_back(std::move(r)); });
    return out;
}

std::vector<session_record> all_sessions(store& s) {
    std::vector<session_record> out;
    s.load_sessions([&out](session_record&& r) { out.push_back(std::move(r)); });
    return out;
}

std::string binary_bytes(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + 7) % 256);
    return s;
}

retained_record retained(const std::string& hub, const std::string& topic, const std::string& payload) {
    retained_record r;
    r.hub = hub;
    r.topic = topic;
    r.payload = payload;
    return r;
}

session_record full_session() {
    session_record s;
    s.hub = "hub-1";
    s.client_id = "device-42";
    s.protocol_version = 5;
    s.expiry_interval = std::numeric_limits<std::uint32_t>::max();
    s.disconnected_at_ms = 1'700'000'000'123;
    s.subscriptions.push_back({"sensors/+/temp", 1, true, false, 2, 7});
    s.subscriptions.push_back({"$share/g/cmd/#", 2, false, true, 0, 268'435'455});
    s.subscriptions.push_back({"a", 0, false, false, 1, 0});
    message_record m1;
    m1.topic = "cmd/reboot";
    m1.payload = "\0\x01\x02\xff"s;
    m1.qos = 1;
    m1.retain = true;
    m1.properties = "\x03\0\x0a"s "text/plain";
    m1.expires_at_ms = std::numeric_limits<std::uint64_t>::max();
    m1.packet_id = 65535;
    m1.state = message_state::sent;
    m1.dup = true;
    message_record m2;
    m2.topic = "cmd/update";
    m2.payload = binary_bytes(300);
    m2.qos = 2;
    m2.packet_id = 1;
    m2.state = message_state::released;
    message_record m3;
    m3.topic = "cmd/empty";
    m3.qos = 0;
    s.messages = {m1, m2, m3};
    s.incoming_qos2 = {9, 1, 65535};
    return s;
}

// Holds the writer thread inside a completion until opened, so that writes pile up.
struct gate {
    std::promise<void> entered;
    std::promise<void> opened;
    std::shared_future<void> future = opened.get_future().share();
    completion hold() {
        return [this, f = future](bool) {
            entered.set_value();
            f.wait();
        };
    }
    void wait_entered() { entered.get_future().wait(); }
    void open() { opened.set_value(); }
};

void hold_writer(store& s, gate& g) {
    s.put_retained(retained("hold", "hold", ""), g.hold());
    g.wait_entered();
}

std::string error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return {};
}

void sqlite_exec(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    const std::string message = error != nullptr ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << message;
}

TEST(SqliteStore, RetainedRoundTripKeepsEveryField) {
    temp_dir dir;
    auto s = open_sqlite_store(dir.str());
    retained_record a = retained("hub-a", "t/1", "\0\0binary\0"s);
    a.qos = 2;
    a.properties = "\x01\x01\0\x26\0\x01k\0\x01v"s;
    a.expires_at_ms = std::numeric_limits<std::uint64_t>::max();
    retained_record big = retained("hub-a", "t/big", binary_bytes(1024 * 1024));
    big.qos = 1;
    big.expires_at_ms = 1'700'000'000'000;
    retained_record empty = retained("hub-b", "t/1", "");
    s->put_retained(a);
    s->put_retained(big);
    s->put_retained(empty);
    s->flush();

    const auto loaded = all_retained(*s);
    ASSERT_EQ(loaded.size(), 3u);
    EXPECT_EQ(loaded[0], a);
    EXPECT_EQ(loaded[1], big);
    EXPECT_EQ(loaded[2], empty);
}

TEST(SqliteStore, SessionRoundTripKeepsEveryFieldAndOrder) {
    temp_dir dir;
    auto s = open_sqlite_store(dir.str());
    const session_record session = full_session();
    session_record bare;
    bare.hub = "hub-1";
    bare.client_id = "bare";
    s->put_session(session);
    s->put_session(bare);
    s->flush();

    const auto loaded = all_sessions(*s);
    ASSERT_EQ(loaded.size(), 2u);
    EXPECT_EQ(loaded[0], bare);
    EXPECT_EQ(loaded[1], session);
}

TEST(SqliteStore, SessionWithLargeQueueRoundTrips) {
    temp_dir dir;
    auto s = open_sqlite_store(dir.str());
    session_record session;
    session.hub = "h";
    session.client_id = "c";
    for (int i = 0; i < 2000; ++i) {
        message_record m;
        m.topic = "t/" + std::to_string(i);
        m.payload = std::to_string(i);
        m.packet_id = static_cast<std::uint16_t>(i);
        session.messages.push_back(m);
    }
    session.messages.back().payload = binary_bytes(1024 * 1024);
    s->put_session(session);
    s->flush();
    const auto loaded = all_sessions(*s);
    ASSERT_EQ(loaded.size(), 1u);
    EXPECT_EQ(loaded[0], session);
}

TEST(SqliteStore, RetainedReplaceAndErase) {
    temp_dir dir;
    auto s = open_sqlite_store(dir.str());
    s->put_retained(retained("h", "a", "1"));
    s->put_retained(retained("h", "b", "1"));
    s->put_retained(retained("other", "a", "1"));
    s->flush();
    s->put_retained(retained("h", "a", "2"));
    s->erase_retained("h", "b");
    s->erase_retained("h", "never-written");
    s->flush();

    const auto loaded = all_retained(*s);
    ASSERT_EQ(loaded.size(), 2u);
    EXPECT_EQ(loaded[0], retained("h", "a", "2"));
    EXPECT_EQ(loaded[1], retained("other", "a", "1"));
}

TEST(SqliteStore, SessionReplaceDropsOldContentsAndEraseRemovesAll) {
    temp_dir dir;
    auto s = open_sqlite_store(dir.str());
    s->put_session(full_session());
    session_record other = full_session();
    other.client_id = "other";
    s->put_session(other);
    s->flush();

    session_record smaller = full_session();
    smaller.subscriptions.resize(1);
    smaller.messages.clear();
    smaller.incoming_qos2 = {5};
    smaller.expiry_interval = 60;
    s->put_session(smaller);
    s->flush();
    auto loaded = all_sessions(*s);
    ASSERT_EQ(loaded.size(), 2u);
    EXPECT_EQ(loaded[0], smaller);
    EXPECT_EQ(loaded[1], other);

    s->erase_session("hub-1", "device-42");
    s->erase_session("hub-1", "unknown");
    s->flush();
    loaded = all_sessions(*s);
    ASSERT_EQ(loaded.size(), 1u);
    EXPECT_EQ(loaded[0], other);

    // A session recreated under the same key starts from nothing.
    session_record fresh;
    fresh.hub = "hub-1";
    fresh.client_id = "device-42";
    s->put_session(fresh);
    s->flush();
    loaded = all_sessions(*s);
    ASSERT_EQ(loaded.size(), 2u);
    EXPECT_EQ(loaded[0], fresh);
}

TEST(SqliteStore, ReopenRestoresEverything) {
    temp_dir dir;
    const session_record session = full_session();
    retained_record r = retained("h", "keep", binary_bytes(4096));
    r.properties = "p\0q"s;
    {
        auto s = open_sqlite_store(dir.str());
        s->put_retained(r);
        s->put_retained(retained("h", "gone", "x"));
        s->erase_retained("h", "gone");
        s->put_session(session);
        s->close();
    }
    {
        // Destruction alone also saves what was queued.
        auto s = open_sqlite_store(dir.str());
        s->put_retained(retained("h", "late", "y"));
    }
    auto s = open_sqlite_store(dir.str());
    const auto loaded = all_retained(*s);
    ASSERT_EQ(loaded.size(), 2u);
    EXPECT_EQ(loaded[0], r);
    EXPECT_EQ(loaded[1], retained("h", "late", "y"));
    const auto sessions = all_sessions(*s);
    ASSERT_EQ(sessions.size(), 1u);
    EXPECT_EQ(sessions[0], session);
}

TEST(SqliteStore, LastWriteToAKeyWinsWithinABatch) {
    temp_dir dir;
    auto s = open_sqlite_store(dir.str());
    gate g;
    hold_writer(*s, g);
    s->put_retained(retained("h", "a", "1"));
    s->erase_retained("h", "a");
    s->put_retained(retained("h", "a", "3"));
    s->put_retained(retained("h", "b", "1"));
    s->erase_retained("h", "b");
    session_record first = full_session();
    session_record second = full_session();
    second.messages.clear();
    s->put_session(first);
    s->erase_session(first.hub, first.client_id);
    s->put_session(second);
    const auto before = s->stats().committed_transactions;
    g.open();
    s->flush();
    EXPECT_EQ(s->stats().committed_transactions, before + 1);

    const auto loaded = all_retained(*s);
    ASSERT_EQ(loaded.size(), 2u);
    EXPECT_EQ(loaded[0], retained("h", "a", "3"));
    EXPECT_EQ(loaded[1].topic, "hold");
    const auto sessions = all_sessions(*s);
    ASSERT_EQ(sessions.size(), 1u);
    EXPECT_EQ(sessions[0], second);
}

TEST(SqliteStore, CompletionsRunInOrderAfterCommitAndBeforeFlushReturns) {
    temp_dir dir;
    auto s = open_sqlite_store(dir.str());
    std::vector<int> order;  // written by the writer thread only, read after flush
    std::atomic<int> visible_at_completion{0};
    store* raw = s.get();
    for (int i = 0; i < 1000; ++i) {
        const std::string topic = "t/" + std::to_string(i);
        s->put_retained(retained("h", topic, "v"), [&, i, raw, topic](bool ok) {
            EXPECT_TRUE(ok);
            order.push_back(i);
            if (i % 100 == 0) {
                // Durable notification: the write is already visible to a separate connection.
                bool found = false;
                raw->load_retained([&](retained_record&& r) { found = found || r.topic == topic; });
                if (found) ++visible_at_completion;
            }
        });
        if (i % 250 == 0) s->erase_retained("h", "nothing", [&order](bool) { order.push_back(-1); });
    }
    s->flush();
    std::vector<int> expected;
    for (int i = 0; i < 1000; ++i) {
        expected.push_back(i);
        if (i % 250 == 0) expected.push_back(-1);
    }
    EXPECT_EQ(order, expected);
    EXPECT_EQ(visible_at_completion.load(), 10);
}

TEST(SqliteStore, TenThousandPutsCommitInOneTransaction) {
    temp_dir dir;
    sqlite_options options;
    options.max_queued_operations = 20000;
    auto s = open_sqlite_store(dir.str(), options);
    gate g;
    hold_writer(*s, g);
    const auto before = s->stats();
    for (int i = 0; i < 10000; ++i) s->put_retained(retained("h", "t/" + std::to_string(i), "v"));
    g.open();
    s->flush();
    const auto after = s->stats();
    EXPECT_EQ(after.committed_transactions - before.committed_transactions, 1u);
    EXPECT_EQ(after.committed_operations - before.committed_operations, 10000u);
    EXPECT_EQ(all_retained(*s).size(), 10001u);
}

TEST(SqliteStore, ManyPutsWithoutHoldingTheWriterStillBatch) {
    temp_dir dir;
    auto s = open_sqlite_store(dir.str());
    for (int i = 0; i < 10000; ++i) s->put_retained(retained("h", "t/" + std::to_string(i), "v"));
    s->flush();
    // Each transaction takes whatever queued up meanwhile; far fewer than one per write.
    EXPECT_LT(s->stats().committed_transactions, 5000u);
    EXPECT_EQ(s->stats().committed_operations, 10000u);
    EXPECT_EQ(all_retained(*s).size(), 10000u);
}

TEST(SqliteStore, ConcurrentProducersKeepTheirOwnOrder) {
    temp_dir dir;
    sqlite_options options;
    options.max_queued_operations = 64;  // small, so producers also wait on a full queue
    auto s = open_sqlite_store(dir.str(), options);
    constexpr int producers = 4;
    constexpr int writes = 1000;
    std::vector<std::vector<int>> completed(producers);  // each touched by the writer thread only
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p) {
        threads.emplace_back([&, p] {
            const std::string hub = "hub-" + std::to_string(p);
            for (int i = 0; i < writes; ++i) {
                s->put_retained(retained(hub, "hot", std::to_string(i)),
                                [&completed, p, i](bool ok) {
                                    EXPECT_TRUE(ok);
                                    completed[p].push_back(i);
                                });
                s->put_retained(retained(hub, "t/" + std::to_string(i), "v"));
                if (i % 100 == 0) {
                    session_record session;
                    session.hub = hub;
                    session.client_id = "c";
                    session.expiry_interval = static_cast<std::uint32_t>(i);
                    s->put_session(session);
                }
            }
            s->flush();
        });
    }
    for (auto& t : threads) t.join();

    std::vector<int> expected(writes);
    for (int i = 0; i < writes; ++i) expected[static_cast<std::size_t>(i)] = i;
    for (int p = 0; p < producers; ++p) EXPECT_EQ(completed[p], expected) << "producer " << p;

    std::map<std::string, std::string> hot;
    std::size_t count = 0;
    s->load_retained([&](retained_record&& r) {
        ++count;
        if (r.topic == "hot") hot[r.hub] = r.payload;
    });
    EXPECT_EQ(count, static_cast<std::size_t>(producers * (writes + 1)));
    for (int p = 0; p < producers; ++p) EXPECT_EQ(hot["hub-" + std::to_string(p)], "999");
    const auto sessions = all_sessions(*s);
    ASSERT_EQ(sessions.size(), static_cast<std::size_t>(producers));
    for (const auto& session : sessions) EXPECT_EQ(session.expiry_interval, 900u);
}

TEST(SqliteStore, FullQueueMakesTheProducerWait) {
    temp_dir dir;
    sqlite_options options;
    options.max_queued_operations = 4;
    auto s = open_sqlite_store(dir.str(), options);
    gate g;
    hold_writer(*s, g);
    std::atomic<int> pushed{0};
    std::thread producer([&] {
        for (int i = 0; i < 10; ++i) {
            s->put_retained(retained("h", "t/" + std::to_string(i), "v"));
            ++pushed;
        }
    });
    while (s->stats().producer_waits == 0) std::this_thread::yield();
    EXPECT_EQ(pushed.load(), 4);
    g.open();
    producer.join();
    s->flush();
    EXPECT_EQ(pushed.load(), 10);
    EXPECT_EQ(all_retained(*s).size(), 11u);
}

TEST(SqliteStore, WritesFromCompletionsAndLoadCallbacksDoNotDeadlock) {
    temp_dir dir;
    sqlite_options options;
    options.max_queued_operations = 1;
    auto s = open_sqlite_store(dir.str(), options);
    store* raw = s.get();
    for (int i = 0; i < 5; ++i) {
        s->put_retained(retained("h", "a/" + std::to_string(i), "v"), [raw, i](bool) {
            raw->put_retained(retained("h", "b/" + std::to_string(i), "v"));
            raw->put_retained(retained("h", "c/" + std::to_string(i), "v"));
        });
    }
    s->flush();
    s->flush();  // the writes queued by completions of the first flush's batch
    EXPECT_EQ(all_retained(*s).size(), 15u);

    s->load_retained([raw](retained_record&& r) {
        raw->put_retained(retained("copy", r.topic, r.payload));
    });
    s->flush();
    EXPECT_EQ(all_retained(*s).size(), 30u);
}

TEST(SqliteStore, CloseTwiceIsHarmlessAndLaterWritesAreRefused) {
    temp_dir dir;
    auto s = open_sqlite_store(dir.str());
    bool committed = false;
    s->put_retained(retained("h", "a", "1"), [&committed](bool ok) { committed = ok; });
    s->close();
    EXPECT_TRUE(committed);
    s->close();
    bool refused = false;
    s->put_retained(retained("h", "b", "1"), [&refused](bool ok) { refused = !ok; });
    EXPECT_TRUE(refused);
    s->erase_session("h", "c");
    s->flush();
    EXPECT_THROW(all_retained(*s), std::logic_error);
    s.reset();

    auto reopened = open_sqlite_store(dir.str());
    const auto loaded = all_retained(*reopened);
    ASSERT_EQ(loaded.size(), 1u);
    EXPECT_EQ(loaded[0].topic, "a");
}

TEST(SqliteStore, CreatesMissingDataDirectoriesPrivately) {
    temp_dir dir;
    const std::string data = dir.sub("a/b/data");
    auto s = open_sqlite_store(data);
    struct stat st {};
    ASSERT_EQ(::stat(data.c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    ASSERT_EQ(::stat(dir.sub("a").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(data) / sqlite_file_name));
}

TEST(SqliteStore, FileInTheWayOfTheDataDirectoryThrows) {
    temp_dir dir;
    const std::string data = dir.sub("data");
    std::ofstream(data) << "not a directory";
    const std::string error = error_of([&] { open_sqlite_store(data); });
    EXPECT_NE(error.find(data), std::string::npos) << error;
    EXPECT_NE(error.find("not a directory"), std::string::npos) << error;

    const std::string below = dir.sub("data/sub");
    const std::string error_below = error_of([&] { open_sqlite_store(below); });
    EXPECT_NE(error_below.find(data), std::string::npos) << error_below;
}

TEST(SqliteStore, GarbageFileIsRefusedWithAClearError) {
    temp_dir dir;
    const std::string db = dir.sub(sqlite_file_name);
    std::ofstream(db, std::ios::binary) << std::string(8192, 'x');
    const std::string error = error_of([&] { open_sqlite_store(dir.str()); });
    EXPECT_NE(error.find(db), std::string::npos) << error;
    EXPECT_NE(error.find("not a database"), std::string::npos) << error;
}

TEST(SqliteStore, CorruptDatabaseIsRefusedWithAClearError) {
    temp_dir dir;
    {
        auto s = open_sqlite_store(dir.str());
        for (int i = 0; i < 200; ++i) s->put_retained(retained("h", std::to_string(i), binary_bytes(900)));
        s->put_session(full_session());
    }
    const std::string db = dir.sub(sqlite_file_name);
    const auto size = std::filesystem::file_size(db);
    ASSERT_GT(size, 8192u);
    {
        // Keep the 100-byte header, scramble everything after it.
        std::fstream f(db, std::ios::binary | std::ios::in | std::ios::out);
        f.seekp(100);
        const std::string junk = binary_bytes(static_cast<std::size_t>(size) - 100);
        f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
    const std::string error = error_of([&] {
        auto s = open_sqlite_store(dir.str());
        all_retained(*s);
        all_sessions(*s);
    });
    EXPECT_NE(error.find(db), std::string::npos) << error;
    EXPECT_NE(error.find("malformed"), std::string::npos) << error;
}

TEST(SqliteStore, NewerSchemaVersionIsRefused) {
    temp_dir dir;
    open_sqlite_store(dir.str())->close();
    sqlite_exec(dir.sub(sqlite_file_name), "UPDATE meta SET value = 999 WHERE key = 'schema_version'");
    const std::string error = error_of([&] { open_sqlite_store(dir.str()); });
    EXPECT_NE(error.find("newer"), std::string::npos) << error;
    EXPECT_NE(error.find("999"), std::string::npos) << error;
}

TEST(SqliteStore, ForeignDatabaseIsRefused) {
    temp_dir dir;
    sqlite_exec(dir.sub(sqlite_file_name), "CREATE TABLE customers (id INTEGER PRIMARY KEY)");
    const std::string error = error_of([&] { open_sqlite_store(dir.str()); });
    EXPECT_NE(error.find("not an iothub database"), std::string::npos) << error;
}

TEST(SqliteStore, LockedDatabaseFailsTheBatchAndRecovers) {
    temp_dir dir;
    std::vector<std::string> errors;  // written on the writer thread, read after flush
    sqlite_options options;
    options.busy_timeout = std::chrono::milliseconds(5);
    options.commit_attempts = 2;
    options.on_error = [&errors](const std::string& m) { errors.push_back(m); };
    auto s = open_sqlite_store(dir.str(), options);

    sqlite3* other = nullptr;
    ASSERT_EQ(sqlite3_open(dir.sub(sqlite_file_name).c_str(), &other), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
    int failed = 0;
    s->put_retained(retained("h", "a", "1"), [&failed](bool ok) { failed += ok ? 0 : 1; });
    s->put_session(full_session(), [&failed](bool ok) { failed += ok ? 0 : 1; });
    s->flush();
    EXPECT_EQ(failed, 2);
    EXPECT_GE(s->stats().failed_transactions, 1u);  // one batch or two
    EXPECT_EQ(s->stats().failed_operations, 2u);
    ASSERT_EQ(errors.size(), s->stats().failed_transactions);
    EXPECT_NE(errors[0].find("locked"), std::string::npos) << errors[0];

    ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(other);
    bool ok_after = false;
    s->put_retained(retained("h", "b", "2"), [&ok_after](bool ok) { ok_after = ok; });
    s->flush();
    EXPECT_TRUE(ok_after);
    const auto loaded = all_retained(*s);
    ASSERT_EQ(loaded.size(), 1u);
    EXPECT_EQ(loaded[0].topic, "b");
    EXPECT_TRUE(all_sessions(*s).empty());
}

TEST(SqliteStore, SynchronousModesAllWork) {
    for (const auto mode : {synchronous_mode::off, synchronous_mode::normal, synchronous_mode::full,
                            synchronous_mode::extra}) {
        temp_dir dir;
        sqlite_options options;
        options.synchronous = mode;
        {
            auto s = open_sqlite_store(dir.str(), options);
            s->put_retained(retained("h", "a", "1"));
        }
        auto s = open_sqlite_store(dir.str(), options);
        EXPECT_EQ(all_retained(*s).size(), 1u);
    }
}

}  // namespace
}  // namespace iothub::store
