#include "worker/distributed/tcp_store.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <type_traits>
#include <utility>

namespace smartcash::dist {

bool says_libuv_missing(const std::string& what) {
    std::string text(what);
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text.find("libuv") != std::string::npos &&
           (text.find("without libuv") != std::string::npos ||
            text.find("not available") != std::string::npos ||
            text.find("not supported") != std::string::npos);
}

#ifdef SMARTCASH_WITH_C10D
namespace {

// TCPStoreOptions::useLibUV exists from PyTorch 2.2 on; older LibTorch has the classic backend
// only. Asked of the type rather than of a version number, so 3.x needs no new guard.
template <class T, class = void>
struct HasUseLibUV : std::false_type {};
template <class T>
struct HasUseLibUV<T, std::void_t<decltype(std::declval<T&>().useLibUV)>> : std::true_type {};

// Learned once per process: a build without libuv stays without it.
std::atomic<bool> g_libuv_missing{false};

template <class Options>
OpenedStore open_with(const std::string& host, Options options) {
    if constexpr (HasUseLibUV<Options>::value) {
        if (!g_libuv_missing.load()) {
            options.useLibUV = true;
            try {
                return {c10::make_intrusive<c10d::TCPStore>(host, options), StoreBackend::libuv};
            } catch (const std::exception& e) {
                if (!says_libuv_missing(e.what())) throw;
                g_libuv_missing = true;
            }
        }
        options.useLibUV = false;
    }
    return {c10::make_intrusive<c10d::TCPStore>(host, options), StoreBackend::classic};
}

}  // namespace

OpenedStore open_tcp_store(const std::string& host, c10d::TCPStoreOptions options) {
    return open_with(host, std::move(options));
}

std::string probe_tcp_store_backend() {
    c10d::TCPStoreOptions server_options;
    server_options.port = 0;  // a free port, chosen by the system
    server_options.isServer = true;
    server_options.waitWorkers = false;
    server_options.timeout = std::chrono::seconds(30);
    auto server = open_tcp_store("127.0.0.1", server_options);
    c10d::TCPStoreOptions client_options = server_options;
    client_options.isServer = false;
    client_options.port = static_cast<std::uint16_t>(server.store->getPort());
    auto client = open_tcp_store("127.0.0.1", client_options);
    const std::string value = "across";
    client.store->set("probe", std::vector<std::uint8_t>(value.begin(), value.end()));
    const auto got = server.store->get("probe");
    if (std::string(got.begin(), got.end()) != value)
        throw std::runtime_error("the store gave back another value than was set");
    return server.backend == StoreBackend::libuv ? "libuv" : "classic";
}
#else
std::string probe_tcp_store_backend() { return ""; }
#endif

}  // namespace smartcash::dist
