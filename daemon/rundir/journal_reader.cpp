#include "daemon/rundir/journal_reader.hpp"

#include <cerrno>
#include <deque>
#include <fstream>

#include "common/atomic_file.hpp"
#include "common/run_dir.hpp"

namespace smartcash::daemon {

std::vector<protocol::Json> read_journal_tail(const std::string& run_dir, std::size_t limit) {
    const std::string path = run_dir::events(run_dir);
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        if (errno == ENOENT) return {};
        throw IoError(path, errno, "cannot read");
    }
    std::deque<std::string> lines;
    for (std::string line; std::getline(in, line);) {
        if (line.empty()) continue;
        lines.push_back(std::move(line));
        if (lines.size() > limit) lines.pop_front();
    }
    std::vector<protocol::Json> out;
    out.reserve(lines.size());
    for (const auto& line : lines) {
        protocol::Json j = protocol::Json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (j.is_object()) out.push_back(std::move(j));
    }
    return out;
}

}  // namespace smartcash::daemon
