// The server's TLS identity in the data directory: made once, private, reused.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "pki/pki.hpp"

namespace iothub::pki {
namespace {

namespace fs = std::filesystem;

struct identity_test : ::testing::Test {
    fs::path dir;
    void SetUp() override {
        std::random_device rd;
        dir = fs::temp_directory_path() /
              ("iothub-pki-" + std::to_string(rd()) + "-" + std::to_string(rd())) / "data";
    }
    void TearDown() override { fs::remove_all(dir.parent_path()); }

    static unsigned mode_of(const fs::path& p) {
        struct stat st {};
        EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
        return st.st_mode & 0777;
    }
    static std::string read(const fs::path& p) {
        std::ifstream in(p);
        return std::string(std::istreambuf_iterator<char>(in), {});
    }
};

TEST_F(identity_test, creates_private_files_and_reuses_them) {
    const auto first = load_or_create_server_identity(dir.string(), {"localhost", "127.0.0.1"});
    for (const char* f : {server_ca_file, server_ca_key_file, server_cert_file, server_key_file}) {
        ASSERT_TRUE(fs::exists(dir / f)) << f;
        EXPECT_EQ(mode_of(dir / f), 0600u) << f;
    }
    EXPECT_EQ(mode_of(dir), 0700u);
    EXPECT_EQ(first.ca_path, (dir / server_ca_file).string());
    EXPECT_EQ(read(dir / server_ca_file), first.ca_pem);
    EXPECT_TRUE(parse_pem(first.ca_pem)->is_ca);
    EXPECT_TRUE(signed_by(first.cert_pem, first.ca_pem));
    EXPECT_TRUE(key_matches(first.cert_pem, first.key_pem));
    const auto info = parse_pem(first.cert_pem);
    EXPECT_EQ(info->dns_names, std::vector<std::string>{"localhost"});
    EXPECT_EQ(info->ip_addresses, std::vector<std::string>{"127.0.0.1"});

    const auto again = load_or_create_server_identity(dir.string(), {"127.0.0.1", "localhost"});
    EXPECT_EQ(again.ca_pem, first.ca_pem);
    EXPECT_EQ(again.cert_pem, first.cert_pem);
    EXPECT_EQ(again.key_pem, first.key_pem);

    EXPECT_EQ(load_or_create_server_ca(dir.string()).cert_pem, first.ca_pem);
}

TEST_F(identity_test, new_names_reissue_the_server_certificate_under_the_same_ca) {
    const auto first = load_or_create_server_identity(dir.string(), {"localhost"});
    const auto second = load_or_create_server_identity(dir.string(), {"iot.example.net"});
    EXPECT_EQ(second.ca_pem, first.ca_pem);
    EXPECT_NE(second.cert_pem, first.cert_pem);
    EXPECT_EQ(parse_pem(second.cert_pem)->dns_names, std::vector<std::string>{"iot.example.net"});
    EXPECT_TRUE(signed_by(second.cert_pem, first.ca_pem));
    EXPECT_EQ(read(dir / server_cert_file), second.cert_pem);
}

TEST_F(identity_test, ca_alone_leaves_the_server_certificate_alone) {
    const auto ca = load_or_create_server_ca(dir.string());
    EXPECT_TRUE(fs::exists(dir / server_ca_file));
    EXPECT_FALSE(fs::exists(dir / server_cert_file));
    EXPECT_TRUE(key_matches(ca.cert_pem, ca.key_pem));
    EXPECT_EQ(load_or_create_server_identity(dir.string(), {}).ca_pem, ca.cert_pem);
}

TEST_F(identity_test, a_ca_without_its_key_is_an_error_not_a_new_ca) {
    const auto ca = load_or_create_server_ca(dir.string());
    fs::remove(dir / server_ca_key_file);
    EXPECT_THROW(load_or_create_server_ca(dir.string()), error);
    EXPECT_EQ(read(dir / server_ca_file), ca.cert_pem);
    // A key without its certificate (an interrupted first start) is replaced.
    fs::remove(dir / server_ca_file);
    std::ofstream(dir / server_ca_key_file) << "junk";
    const auto fresh = load_or_create_server_ca(dir.string());
    EXPECT_TRUE(key_matches(fresh.cert_pem, fresh.key_pem));
}

TEST_F(identity_test, a_damaged_server_certificate_is_replaced) {
    const auto first = load_or_create_server_identity(dir.string(), {"localhost"});
    std::ofstream(dir / server_key_file) << "junk";
    const auto second = load_or_create_server_identity(dir.string(), {"localhost"});
    EXPECT_NE(second.cert_pem, first.cert_pem);
    EXPECT_TRUE(key_matches(second.cert_pem, second.key_pem));
}

}  // namespace
}  // namespace iothub::pki
