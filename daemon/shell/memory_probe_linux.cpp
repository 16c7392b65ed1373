#ifdef __linux__

#include <dirent.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/shell/memory_probe.hpp"

namespace smartcash::daemon {
namespace {

// "VmRSS:    1234 kB" -> bytes.
std::optional<std::uint64_t> status_field_bytes(const std::string& path, const std::string& key) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        if (line.compare(0, key.size(), key) == 0 && line.size() > key.size() &&
            line[key.size()] == ':') {
            std::istringstream fields(line.substr(key.size() + 1));
            std::uint64_t kib = 0;
            if (fields >> kib) return kib * 1024;
        }
    }
    return std::nullopt;
}

std::vector<int> children_of(int pid) {
    std::vector<int> out;
    const std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
    DIR* dir = ::opendir(task_dir.c_str());
    if (dir == nullptr) return out;
    while (dirent* entry = ::readdir(dir)) {
        if (entry->d_name[0] == '.') continue;
        std::ifstream in(task_dir + "/" + entry->d_name + "/children");
        int child = 0;
        while (in >> child) out.push_back(child);
    }
    ::closedir(dir);
    return out;
}

class LinuxMemoryProbe : public MemoryProbe {
  public:
    MemoryReading read(int pid) override {
        MemoryReading r;
        if (pid > 0) {
            // Walk the tree: the worker may start helpers (compilers, data tools).
            std::set<int> seen;
            std::vector<int> todo{pid};
            while (!todo.empty() && seen.size() < 4096) {
                const int p = todo.back();
                todo.pop_back();
                if (!seen.insert(p).second) continue;
                if (auto rss =
                        status_field_bytes("/proc/" + std::to_string(p) + "/status", "VmRSS"))
                    r.rss += *rss;
                for (int c : children_of(p)) todo.push_back(c);
            }
        }
        r.available = status_field_bytes("/proc/meminfo", "MemAvailable");
        std::ifstream psi("/proc/pressure/memory");
        std::string kind, avg10;
        if (psi >> kind >> avg10 && kind == "some" && avg10.rfind("avg10=", 0) == 0)
            r.pressure = std::strtod(avg10.c_str() + 6, nullptr);
        return r;
    }

    std::optional<std::uint64_t> oom_kill_count() override {
        std::ifstream cg("/proc/self/cgroup");
        std::string line;
        std::string v2_path, v1_path;
        while (std::getline(cg, line)) {
            if (line.rfind("0::", 0) == 0) v2_path = line.substr(3);
            const auto colon = line.find(':');
            const auto second = line.find(':', colon + 1);
            if (colon != std::string::npos && second != std::string::npos) {
                const std::string controllers = line.substr(colon + 1, second - colon - 1);
                if (controllers == "memory") v1_path = line.substr(second + 1);
            }
        }
        if (!v2_path.empty())
            if (auto n = read_counter("/sys/fs/cgroup" + v2_path + "/memory.events", "oom_kill"))
                return n;
        if (!v1_path.empty())
            return read_counter("/sys/fs/cgroup/memory" + v1_path + "/memory.oom_control",
                                "oom_kill");
        return std::nullopt;
    }

  private:
    static std::optional<std::uint64_t> read_counter(const std::string& path,
                                                     const std::string& key) {
        std::ifstream in(path);
        std::string name;
        std::uint64_t value = 0;
        while (in >> name >> value)
            if (name == key) return value;
        return std::nullopt;
    }
};

}  // namespace

std::unique_ptr<MemoryProbe> make_memory_probe() { return std::make_unique<LinuxMemoryProbe>(); }

}  // namespace smartcash::daemon

#endif  // __linux__
