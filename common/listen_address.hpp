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

/// Splits "HOST:PORT" ("[V6ADDR]:PORT" for an IPv6 address), the host required; false when it
/// is not one (no host, a port outside 1..65535). The address of rank 0 in a job of several.
bool parse_host_port(const std::string& text, std::string* host, int* port);

}  // namespace smartcash
