#include "daemon/shell/devices.hpp"

#include <signal.h>
#include <unistd.h>

#include <iterator>
#include <thread>

#include "common/devices_report.hpp"
#include "daemon/shell/boost_process.hpp"

namespace smartcash::daemon {

namespace {

DevicePresence none_usable(const std::string& why) {
    DevicePresence d;
    d.cuda_why = d.mps_why = why;
    return d;
}

}  // namespace

DevicePresence ask_worker_for_devices(const std::string& worker_path,
                                      std::chrono::milliseconds timeout) {
    const std::string asked = "cannot ask " + worker_path + " which devices it can use: ";
    std::error_code ec;
    bp::ipstream out;
    bp::child child(bp::exe = worker_path, bp::args = {"devices", "--json"},
                    bp::std_in<bp::null, bp::std_out> out, bp::std_err > bp::null, bp::error = ec);
    if (ec) return none_usable(asked + ec.message());
    // The answer is one short line, well under a pipe's buffer: the worker never blocks on it,
    // so waiting first and reading after is safe.
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (child.running(ec) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (child.running(ec)) {
        child.terminate(ec);
        return none_usable(asked + "no answer in time");
    }
    const int code = child.exit_code();
    std::string text((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
    if (code != 0) return none_usable(asked + "it exited with code " + std::to_string(code));
    std::string error;
    const Json json = Json::parse(text, nullptr, false);
    auto report = devices_report_from_json(json, &error);
    if (!report) return none_usable(asked + "unexpected answer (" + error + ")");
    DevicePresence d;
    d.cuda = report->cuda.usable;
    d.cuda_why = report->cuda.why;
    d.mps = report->mps.usable;
    d.mps_why = report->mps.why;
    return d;
}

}  // namespace smartcash::daemon
