#pragma once
// A process's CPU time and resident memory, read from /proc/PID.

#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace iothub::bench {

struct proc_sample {
    bool ok = false;
    double user_s = 0;
    double sys_s = 0;
    std::uint64_t rss_bytes = 0;
};

inline proc_sample read_proc(int pid) {
    proc_sample s;
    if (pid <= 0) {
        return s;
    }
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) {
        return s;
    }
    // Field 2 (comm) may hold spaces: parse after its closing parenthesis.
    const auto close = line.rfind(')');
    if (close == std::string::npos) {
        return s;
    }
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    unsigned long long utime = 0;
    unsigned long long stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) {
            utime = std::stoull(field);
        } else if (i == 15) {
            stime = std::stoull(field);
        }
    }
    const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    s.user_s = static_cast<double>(utime) / tick;
    s.sys_s = static_cast<double>(stime) / tick;
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            s.rss_bytes = std::stoull(line.substr(6)) * 1024;
            break;
        }
    }
    s.ok = true;
    return s;
}

// CPU seconds (user + system) this process has used so far, all threads.
inline double self_cpu_s() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace iothub::bench
