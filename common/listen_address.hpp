// supervisor.metrics_listen: where the supervisor serves GET /metrics over HTTP. "" is off;
// "PORT" listens on the loopback address 127.0.0.1; "HOST:PORT" and "[IPv6]:PORT" name the
// address. Pure parsing (the daemon resolves the host when it binds).
#pragma once

#include <optional>
#include <string>

namespace smartcash {

struct ListenAddress {
    std::string host = "127.0.0.1";
    unsigned short port = 0;
};

/// The address `text` names; nullopt and *error ("" is not an address: the caller treats it as
/// off).
std::optional<ListenAddress> parse_listen_address(const std::string& text, std::string* error);

}  // namespace smartcash
