// Opening a c10d TCPStore on any LibTorch. From PyTorch 2.4 on, TCPStoreOptions asks for the
// libuv backend by default, and a LibTorch built without libuv (Debian's, among others) refuses
// it ("use_libuv was requested but PyTorch was built without libuv support"). The store is opened
// with libuv where the build has it and with the classic backend otherwise; LibTorch before the
// option existed has only the classic one.
#pragma once

#include <string>

namespace smartcash::dist {

/// True when `what` (an exception's text) says the store failed only because this LibTorch has
/// no libuv backend.
bool says_libuv_missing(const std::string& what);

/// Serves a store on a free loopback port, connects a client to it and checks one key across:
/// which backend the server used ("libuv" or "classic"). Throws when no store can be opened;
/// returns "" where this build has no c10d.
std::string probe_tcp_store_backend();

}  // namespace smartcash::dist

#ifdef SMARTCASH_WITH_C10D
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

namespace smartcash::dist {

enum class StoreBackend { libuv, classic };

struct OpenedStore {
    c10::intrusive_ptr<c10d::TCPStore> store;
    StoreBackend backend = StoreBackend::classic;
};

/// A TCPStore at host:options.port (serving it when options.isServer), with libuv where this
/// LibTorch has it. Errors other than a missing libuv propagate as c10d throws them.
OpenedStore open_tcp_store(const std::string& host, c10d::TCPStoreOptions options);

}  // namespace smartcash::dist
#endif
