#include "api/keys.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "api/router.hpp"
#include "hub/model.hpp"
#include "store/registry_store.hpp"

namespace iothub::api {
namespace {

class temp_dir {
public:
    temp_dir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "iothub-api-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    std::string str() const { return path_.string(); }
    std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

TEST(HashSecret, Sha256Hex) {
    EXPECT_EQ(hash_secret("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(hash_secret(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(CreateApiKey, Shapes) {
    auto db = store::make_memory_registry();
    const auto k = create_api_key(*db, "", "ci");
    EXPECT_TRUE(std::regex_match(k.access_key, std::regex("SCW[A-Z0-9]{17}"))) << k.access_key;
    EXPECT_TRUE(hub::is_uuid(k.secret_key)) << k.secret_key;
    EXPECT_TRUE(hub::is_uuid(k.project_id)) << k.project_id;
    const auto rows = db->list_api_keys();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].access_key, k.access_key);
    EXPECT_EQ(rows[0].project_id, k.project_id);
    EXPECT_EQ(rows[0].description, "ci");
    EXPECT_GT(rows[0].created_at_ms, 0u);
    // Only the hash is kept.
    EXPECT_EQ(rows[0].secret_hash, hash_secret(k.secret_key));
    EXPECT_EQ(rows[0].secret_hash.find(k.secret_key), std::string::npos);
}

TEST(CreateApiKey, GivenProjectAndFreshSecrets) {
    auto db = store::make_memory_registry();
    const std::string project = "0e5c6f4a-8a7b-4c6d-9e1f-2a3b4c5d6e7f";
    std::set<std::string> access;
    std::set<std::string> secrets;
    for (int i = 0; i < 20; ++i) {
        const auto k = create_api_key(*db, project, "");
        EXPECT_EQ(k.project_id, project);
        access.insert(k.access_key);
        secrets.insert(k.secret_key);
    }
    EXPECT_EQ(access.size(), 20u);
    EXPECT_EQ(secrets.size(), 20u);
    EXPECT_THROW(create_api_key(*db, "project-one", ""), std::invalid_argument);
}

TEST(ProjectOf, FindsTheKeysProject) {
    auto db = store::make_memory_registry();
    const auto a = create_api_key(*db, "", "");
    const auto b = create_api_key(*db, "", "");
    EXPECT_EQ(project_of(*db, a.secret_key), a.project_id);
    EXPECT_EQ(project_of(*db, b.secret_key), b.project_id);
    EXPECT_FALSE(project_of(*db, hub::make_uuid()));
    EXPECT_FALSE(project_of(*db, ""));
    EXPECT_FALSE(project_of(*db, hash_secret(a.secret_key)));  // the hash is no secret
    ASSERT_TRUE(db->erase_api_key(a.access_key));
    EXPECT_FALSE(project_of(*db, a.secret_key));
}

TEST(TokenCache, NewKeysAtOnceDeletedKeysAfterTheTtl) {
    auto db = store::make_memory_registry();
    auto now = std::chrono::steady_clock::time_point{};
    token_cache cache(*db, std::chrono::seconds(30), [&] { return now; });
    const std::string secret_later = hub::make_uuid();
    EXPECT_FALSE(cache.project_of(secret_later));
    const auto k = create_api_key(*db, "", "");
    EXPECT_EQ(cache.project_of(k.secret_key), k.project_id);  // a miss asks the store
    ASSERT_TRUE(db->erase_api_key(k.access_key));
    now += std::chrono::seconds(29);
    EXPECT_EQ(cache.project_of(k.secret_key), k.project_id);  // cached
    now += std::chrono::seconds(2);
    EXPECT_FALSE(cache.project_of(k.secret_key));  // expired, and gone from the store
}

class AdminToken : public ::testing::Test {
protected:
    void SetUp() override { old_umask_ = ::umask(0); }  // the file's mode must not rely on it
    void TearDown() override { ::umask(old_umask_); }
    mode_t old_umask_ = 0;
};

TEST_F(AdminToken, CreatedOnceWithMode0600) {
    temp_dir dir;
    auto db = store::make_memory_registry();
    const auto t = ensure_admin_token(*db, dir.str());
    EXPECT_TRUE(t.created);
    EXPECT_EQ(t.path, dir.file("api-token"));
    struct stat st {};
    ASSERT_EQ(::stat(t.path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    const std::string content = read_file(t.path);
    ASSERT_EQ(content.size(), 37u);
    EXPECT_EQ(content.back(), '\n');
    const std::string secret = content.substr(0, 36);
    EXPECT_TRUE(hub::is_uuid(secret));
    const auto keys = db->list_api_keys();
    ASSERT_EQ(keys.size(), 1u);
    EXPECT_EQ(project_of(*db, secret), keys[0].project_id);

    // Again: keys exist, the file stays as it is.
    const auto again = ensure_admin_token(*db, dir.str());
    EXPECT_FALSE(again.created);
    EXPECT_EQ(again.path, t.path);
    EXPECT_EQ(read_file(t.path), content);
    EXPECT_EQ(db->list_api_keys().size(), 1u);
}

TEST_F(AdminToken, NotRecreatedWhenKeysExistButTheFileIsGone) {
    temp_dir dir;
    auto db = store::make_memory_registry();
    ensure_admin_token(*db, dir.str());
    std::filesystem::remove(dir.file("api-token"));
    const auto t = ensure_admin_token(*db, dir.str());
    EXPECT_FALSE(t.created);
    EXPECT_FALSE(std::filesystem::exists(t.path));
    EXPECT_EQ(db->list_api_keys().size(), 1u);
}

TEST_F(AdminToken, KeyMadeByTheCliCountsAsExisting) {
    temp_dir dir;
    auto db = store::make_memory_registry();
    create_api_key(*db, "", "by hand");
    const auto t = ensure_admin_token(*db, dir.str());
    EXPECT_FALSE(t.created);
    EXPECT_FALSE(std::filesystem::exists(t.path));
}

TEST_F(AdminToken, StaleFileWithoutKeysIsReplaced) {
    temp_dir dir;
    { std::ofstream(dir.file("api-token")) << "00000000-0000-4000-8000-000000000000\n"; }
    ::chmod(dir.file("api-token").c_str(), 0644);
    auto db = store::make_memory_registry();
    const auto t = ensure_admin_token(*db, dir.str());
    EXPECT_TRUE(t.created);
    const std::string secret = read_file(t.path).substr(0, 36);
    EXPECT_NE(secret, "00000000-0000-4000-8000-000000000000");
    EXPECT_TRUE(project_of(*db, secret));
    struct stat st {};
    ASSERT_EQ(::stat(t.path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(AdminToken, CreatesTheDataDirectory) {
    temp_dir dir;
    auto db = store::make_memory_registry();
    const auto t = ensure_admin_token(*db, dir.file("nested/data"));
    EXPECT_TRUE(t.created);
    EXPECT_TRUE(std::filesystem::exists(t.path));
}

TEST_F(AdminToken, WorksOnTheSqliteStore) {
    temp_dir dir;
    std::string secret;
    {
        auto db = store::open_sqlite_registry(dir.str());
        const auto t = ensure_admin_token(*db, dir.str());
        ASSERT_TRUE(t.created);
        secret = read_file(t.path).substr(0, 36);
    }
    auto db = store::open_sqlite_registry(dir.str());
    EXPECT_FALSE(ensure_admin_token(*db, dir.str()).created);
    EXPECT_TRUE(project_of(*db, secret));
}

}  // namespace
}  // namespace iothub::api
