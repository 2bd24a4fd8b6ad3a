#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace iothub::cli::testing {

// A file under the system temp directory, removed when this goes away.
class temp_file {
public:
    explicit temp_file(std::string_view contents) {
        static std::atomic<int> counter{0};
        path_ = (std::filesystem::temp_directory_path() /
                 ("iothub-cli-test-" + std::to_string(::getpid()) + "-" +
                  std::to_string(counter++) + ".toml"))
                    .string();
        write(contents);
    }
    temp_file(const temp_file&) = delete;
    temp_file& operator=(const temp_file&) = delete;
    ~temp_file() {
        std::error_code ec;
        std::filesystem::remove(path_, ec);
    }

    void write(std::string_view contents) const {
        std::ofstream out(path_, std::ios::binary | std::ios::trunc);
        out << contents;
    }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

}  // namespace iothub::cli::testing
