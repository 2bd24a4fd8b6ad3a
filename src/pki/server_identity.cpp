// The server's own TLS identity under the data directory (see pki.hpp).

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <set>
#include <system_error>

#include "pki/pki.hpp"

namespace iothub::pki {

namespace {

namespace fs = std::filesystem;

constexpr int server_ca_years = 10;
constexpr int server_cert_years = 2;
// A server certificate with less left than this is replaced at the next start or reload.
constexpr std::uint64_t renew_before_ms = 60ull * 24 * 3600 * 1000;
constexpr const char* lock_file = "server-identity.lock";

std::string errno_text() {
    return std::error_code(errno, std::generic_category()).message();
}

void make_dirs(const std::string& dir) {
    if (dir.empty()) throw error("pki: the data directory is not set");
    fs::path partial;
    for (const auto& part : fs::path(dir)) {
        partial /= part;
        if (::mkdir(partial.c_str(), 0700) == 0 || errno == EEXIST) continue;
        throw error("pki: cannot create directory " + partial.string() + ": " + errno_text());
    }
}

// Holds an exclusive lock on the data directory's identity files (flock on a lock file),
// so a server starting and `iothub ca server` running at once make one CA, not two.
class dir_lock {
public:
    explicit dir_lock(const std::string& dir) {
        const auto path = (fs::path(dir) / lock_file).string();
        fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd_ < 0) throw error("pki: cannot open " + path + ": " + errno_text());
        while (::flock(fd_, LOCK_EX) != 0) {
            if (errno == EINTR) continue;
            const std::string why = errno_text();
            ::close(fd_);
            throw error("pki: cannot lock " + path + ": " + why);
        }
    }
    ~dir_lock() { ::close(fd_); }  // releases the lock
    dir_lock(const dir_lock&) = delete;
    dir_lock& operator=(const dir_lock&) = delete;

private:
    int fd_ = -1;
};

// nullopt when the file does not exist.
std::optional<std::string> read_file(const fs::path& p) {
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return std::nullopt;
        throw error("pki: cannot read " + p.string() + ": " + errno_text());
    }
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const std::string why = errno_text();
            ::close(fd);
            throw error("pki: cannot read " + p.string() + ": " + why);
        }
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

// Writes `text` to `p` with mode 0600: a temporary file, synced, then renamed over it.
void write_file(const fs::path& p, const std::string& text) {
    const fs::path tmp = p.string() + ".tmp";
    ::unlink(tmp.c_str());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) throw error("pki: cannot write " + tmp.string() + ": " + errno_text());
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const std::string why = errno_text();
            ::close(fd);
            ::unlink(tmp.c_str());
            throw error("pki: cannot write " + tmp.string() + ": " + why);
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fchmod(fd, 0600) != 0 || ::fsync(fd) != 0) {
        const std::string why = errno_text();
        ::close(fd);
        ::unlink(tmp.c_str());
        throw error("pki: cannot write " + tmp.string() + ": " + why);
    }
    ::close(fd);
    if (::rename(tmp.c_str(), p.c_str()) != 0) {
        const std::string why = errno_text();
        ::unlink(tmp.c_str());
        throw error("pki: cannot rename " + tmp.string() + ": " + why);
    }
}

std::uint64_t now_ms() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

// The CA of `dir`, made when either file is missing; the caller holds the lock.
cert_and_key ca_locked(const std::string& dir) {
    const fs::path cert_path = fs::path(dir) / server_ca_file;
    const fs::path key_path = fs::path(dir) / server_ca_key_file;
    auto cert = read_file(cert_path);
    auto key = read_file(key_path);
    if (cert && key) {
        if (!parse_pem(*cert)) throw error("pki: " + cert_path.string() + " is not a certificate");
        if (!key_matches(*cert, *key)) {
            throw error("pki: " + key_path.string() + " is not the key of " + cert_path.string());
        }
        return {std::move(*cert), std::move(*key)};
    }
    if (cert) {
        // A certificate without its key cannot sign, and replacing a CA that devices may
        // trust would lock them out: stop and let an operator decide. (A key without its
        // certificate is what an interrupted first start leaves: it is simply replaced.)
        throw error("pki: " + key_path.string() + " is missing (" + cert_path.string() +
                    " exists); restore it, or remove both to make a new server CA");
    }
    subject s;
    s.common_name = "iothub server CA";
    s.organization = "iothub";
    cert_and_key ca = make_ca(s, key_type::ec_p384, server_ca_years);
    write_file(key_path, ca.key_pem);  // the key first: a certificate alone is an error above
    write_file(cert_path, ca.cert_pem);
    return ca;
}

// IP literals come back from a certificate in inet_ntop's form: compare in that form.
std::string canonical_name(const std::string& n) {
    unsigned char buf[16];
    char text[INET6_ADDRSTRLEN] = {};
    for (const int family : {AF_INET, AF_INET6}) {
        if (::inet_pton(family, n.c_str(), buf) == 1 &&
            ::inet_ntop(family, buf, text, sizeof text) != nullptr) {
            return text;
        }
    }
    return n;
}

std::vector<std::string> effective_names(const std::vector<std::string>& names) {
    if (names.empty()) return {"localhost", "127.0.0.1"};
    return names;
}

// Whether the stored server certificate can be kept: signed by this CA, for exactly these
// names, with its key, and not near its end.
bool still_good(const cert_and_key& ca, const std::string& cert, const std::string& key,
                const std::vector<std::string>& names) {
    const auto info = parse_pem(cert);
    if (!info || !key_matches(cert, key) || !signed_by(cert, ca.cert_pem)) return false;
    if (info->not_after_ms < now_ms() + renew_before_ms) return false;
    std::set<std::string> have(info->dns_names.begin(), info->dns_names.end());
    have.insert(info->ip_addresses.begin(), info->ip_addresses.end());
    std::set<std::string> want;
    for (const auto& n : names) want.insert(canonical_name(n));
    return have == want;
}

}  // namespace

cert_and_key load_or_create_server_ca(const std::string& data_dir) {
    make_dirs(data_dir);
    dir_lock lock(data_dir);
    return ca_locked(data_dir);
}

server_identity load_or_create_server_identity(const std::string& data_dir,
                                               const std::vector<std::string>& names) {
    make_dirs(data_dir);
    dir_lock lock(data_dir);
    const cert_and_key ca = ca_locked(data_dir);
    const auto wanted = effective_names(names);
    const fs::path cert_path = fs::path(data_dir) / server_cert_file;
    const fs::path key_path = fs::path(data_dir) / server_key_file;
    auto cert = read_file(cert_path);
    auto key = read_file(key_path);
    server_identity out;
    out.ca_pem = ca.cert_pem;
    out.ca_path = (fs::path(data_dir) / server_ca_file).string();
    if (cert && key && still_good(ca, *cert, *key, wanted)) {
        out.cert_pem = std::move(*cert);
        out.key_pem = std::move(*key);
        return out;
    }
    cert_and_key issued = issue_server(ca, wanted, key_type::ec_p256, server_cert_years);
    write_file(key_path, issued.key_pem);
    write_file(cert_path, issued.cert_pem);
    out.cert_pem = std::move(issued.cert_pem);
    out.key_pem = std::move(issued.key_pem);
    return out;
}

}  // namespace iothub::pki
