#include "store/batch_writer.hpp"

#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace iothub::store {
namespace {

operation put(const std::string& topic, const std::string& payload, completion done = {}) {
    retained_record r;
    r.hub = "h";
    r.topic = topic;
    r.payload = payload;
    return operation{std::move(r), std::move(done)};
}

struct recorder {
    std::mutex mutex;
    std::vector<std::vector<std::string>> batches;  // payloads of live puts, per commit
    int failures_left = 0;

    batch_writer::commit_fn fn() {
        return [this](std::span<const operation> batch, const std::vector<bool>& live) {
            std::lock_guard lock(mutex);
            if (failures_left > 0) {
                --failures_left;
                throw std::runtime_error("disk on fire");
            }
            std::vector<std::string> written;
            for (std::size_t i = 0; i < batch.size(); ++i) {
                if (!live[i]) continue;
                if (const auto* r = std::get_if<retained_record>(&batch[i].what)) {
                    written.push_back(r->topic + "=" + r->payload);
                } else if (const auto* k = std::get_if<retained_key>(&batch[i].what)) {
                    written.push_back(k->topic + " erased");
                }
            }
            batches.push_back(std::move(written));
        };
    }
};

// Holds the writer thread inside a completion until opened.
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

TEST(BatchWriter, SupersededWritesToOneKeyAreSkippedAndAllComplete) {
    recorder rec;
    batch_writer writer({}, rec.fn(), {});
    gate g;
    writer.push(put("first", "x", g.hold()));
    g.wait_entered();
    std::vector<int> completed;
    for (int i = 0; i < 3; ++i) {
        writer.push(put("a", std::to_string(i), [&completed, i](bool ok) {
            EXPECT_TRUE(ok);
            completed.push_back(i);
        }));
    }
    writer.push(operation{retained_key{"h", "b"}, {}});
    writer.push(put("b", "again"));
    writer.push(put("a", "last"));
    g.open();
    writer.flush();
    writer.stop();

    ASSERT_EQ(rec.batches.size(), 2u);
    EXPECT_EQ(rec.batches[1], (std::vector<std::string>{"b=again", "a=last"}));
    EXPECT_EQ(completed, (std::vector<int>{0, 1, 2}));
    EXPECT_EQ(writer.stats().committed_transactions, 2u);
    EXPECT_EQ(writer.stats().committed_operations, 7u);
}

TEST(BatchWriter, RetriesAFailedCommit) {
    recorder rec;
    rec.failures_left = 1;
    std::vector<std::string> errors;
    batch_writer writer({}, rec.fn(), [&errors](const std::string& m) { errors.push_back(m); });
    bool result = false;
    writer.push(put("a", "1", [&result](bool ok) { result = ok; }));
    writer.flush();
    EXPECT_TRUE(result);
    EXPECT_TRUE(errors.empty());
    EXPECT_EQ(writer.stats().committed_transactions, 1u);
}

TEST(BatchWriter, GivesUpAfterEveryAttemptFailedAndCompletesWithFalse) {
    recorder rec;
    rec.failures_left = 1000;
    std::vector<std::string> errors;
    batch_limits limits;
    limits.commit_attempts = 2;
    batch_writer writer(limits, rec.fn(), [&errors](const std::string& m) { errors.push_back(m); });
    int failed = 0;
    writer.push(put("a", "1", [&failed](bool ok) { failed += ok ? 0 : 1; }));
    writer.push(put("b", "2", [&failed](bool ok) { failed += ok ? 0 : 1; }));
    writer.flush();
    EXPECT_EQ(failed, 2);
    const auto stats = writer.stats();
    // The two writes may have been taken in one batch or two.
    EXPECT_GE(stats.failed_transactions, 1u);
    EXPECT_EQ(stats.failed_operations, 2u);
    EXPECT_EQ(stats.committed_transactions, 0u);
    ASSERT_EQ(errors.size(), stats.failed_transactions);
    EXPECT_NE(errors[0].find("disk on fire"), std::string::npos);
    EXPECT_NE(errors[0].find("2 attempts"), std::string::npos);

    {
        std::lock_guard lock(rec.mutex);
        rec.failures_left = 0;
    }
    bool ok_after = false;
    writer.push(put("c", "3", [&ok_after](bool ok) { ok_after = ok; }));
    writer.flush();
    EXPECT_TRUE(ok_after);
}

TEST(BatchWriter, ThrowingCompletionIsReportedAndOthersStillRun) {
    recorder rec;
    std::vector<std::string> errors;
    batch_writer writer({}, rec.fn(), [&errors](const std::string& m) { errors.push_back(m); });
    bool second = false;
    writer.push(put("a", "1", [](bool) { throw std::runtime_error("boom"); }));
    writer.push(put("b", "2", [&second](bool ok) { second = ok; }));
    writer.flush();
    EXPECT_TRUE(second);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].find("boom"), std::string::npos);
}

TEST(BatchWriter, FlushOnlyBatchCommitsNothing) {
    recorder rec;
    batch_writer writer({}, rec.fn(), {});
    writer.flush();
    writer.flush();
    EXPECT_EQ(writer.stats().committed_transactions, 0u);
    EXPECT_TRUE(rec.batches.empty());
}

TEST(BatchWriter, StopDrainsTheQueueAndLaterPushesCompleteWithFalse) {
    recorder rec;
    batch_writer writer({}, rec.fn(), {});
    int committed = 0;
    for (int i = 0; i < 100; ++i) {
        writer.push(put(std::to_string(i), "v", [&committed](bool ok) { committed += ok ? 1 : 0; }));
    }
    writer.stop();
    EXPECT_EQ(committed, 100);
    bool result = true;
    writer.push(put("late", "v", [&result](bool ok) { result = ok; }));
    EXPECT_FALSE(result);
    writer.flush();
    writer.stop();
}

TEST(BatchWriter, ByteLimitStillAdmitsOneLargeOperation) {
    recorder rec;
    batch_limits limits;
    limits.max_bytes = 16;
    batch_writer writer(limits, rec.fn(), {});
    bool ok = false;
    writer.push(put("big", std::string(1000, 'x'), [&ok](bool c) { ok = c; }));
    writer.flush();
    EXPECT_TRUE(ok);
}

}  // namespace
}  // namespace iothub::store
