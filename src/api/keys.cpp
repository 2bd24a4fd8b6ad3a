#include "api/keys.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "hub/model.hpp"
#include "store/registry_store.hpp"

namespace iothub::api {

namespace {

constexpr std::string_view access_key_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
constexpr std::size_t access_key_random_chars = 17;

void random_bytes(unsigned char* out, std::size_t n) {
    if (RAND_bytes(out, static_cast<int>(n)) != 1) {
        throw std::runtime_error("the system random generator failed");
    }
}

std::string make_access_key() {
    std::string key = "SCW";
    while (key.size() < 3 + access_key_random_chars) {
        unsigned char buf[32];
        random_bytes(buf, sizeof buf);
        for (const unsigned char b : buf) {
            // 252 = 7 * 36: values above it would favour the first letters.
            if (b >= 252) continue;
            key.push_back(access_key_alphabet[b % access_key_alphabet.size()]);
            if (key.size() == 3 + access_key_random_chars) break;
        }
    }
    return key;
}

std::uint64_t now_ms() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

std::system_error errno_error(const std::string& what) {
    return std::system_error(errno, std::generic_category(), what);
}

void write_all(int fd, const std::string& data, const std::string& path) {
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw errno_error("cannot write " + path);
        }
        done += static_cast<std::size_t>(n);
    }
}

}  // namespace

std::string hash_secret(std::string_view secret) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(secret.data(), secret.size(), digest, &len, EVP_sha256(), nullptr) != 1) {
        throw std::runtime_error("SHA-256 failed");
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(len * 2);
    for (unsigned int i = 0; i < len; ++i) {
        out.push_back(hex[digest[i] >> 4]);
        out.push_back(hex[digest[i] & 0x0f]);
    }
    return out;
}

created_key create_api_key(store::registry_store& db, std::string project_id,
                           std::string description) {
    if (project_id.empty()) {
        project_id = hub::make_uuid();
    } else if (!hub::is_uuid(project_id)) {
        throw std::invalid_argument("project id must be a UUID: " + project_id);
    }
    created_key key;
    key.access_key = make_access_key();
    key.secret_key = hub::make_uuid();
    key.project_id = project_id;

    store::api_key_row row;
    row.access_key = key.access_key;
    row.secret_hash = hash_secret(key.secret_key);
    row.project_id = std::move(project_id);
    row.description = std::move(description);
    row.created_at_ms = now_ms();
    db.put_api_key(row);
    return key;
}

std::optional<std::string> project_of(store::registry_store& db, std::string_view secret) {
    if (secret.empty()) return std::nullopt;
    auto row = db.find_api_key_by_hash(hash_secret(secret));
    if (!row) return std::nullopt;
    return std::move(row->project_id);
}

admin_token ensure_admin_token(store::registry_store& db, const std::string& data_dir) {
    admin_token out;
    out.path = (std::filesystem::path(data_dir) / admin_token_file).string();
    if (!db.list_api_keys().empty()) return out;

    // No key yet: the first start. The file is created before the key is stored, mode 0600
    // from the start (never chmod-ed after), so no other user ever reads the secret.
    std::filesystem::create_directories(data_dir);
    int fd = ::open(out.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
        // A token file without any key in the store (the database was removed): its
        // secret opens nothing any more, so it is replaced.
        if (::unlink(out.path.c_str()) != 0 && errno != ENOENT) {
            throw errno_error("cannot replace stale " + out.path);
        }
        fd = ::open(out.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (fd < 0) throw errno_error("cannot create " + out.path);

    std::optional<created_key> key;
    try {
        key = create_api_key(db, "", "admin token, created on first start");
        write_all(fd, key->secret_key + "\n", out.path);
        if (::fsync(fd) != 0) throw errno_error("cannot sync " + out.path);
    } catch (...) {
        ::close(fd);
        ::unlink(out.path.c_str());
        if (key) {
            try {
                db.erase_api_key(key->access_key);
            } catch (...) {
                // The key stays unusable: its secret was never written anywhere.
            }
        }
        throw;
    }
    if (::close(fd) != 0) {
        const auto err = errno_error("cannot close " + out.path);
        ::unlink(out.path.c_str());
        try {
            db.erase_api_key(key->access_key);
        } catch (...) {
        }
        throw err;
    }
    out.created = true;
    return out;
}

}  // namespace iothub::api
