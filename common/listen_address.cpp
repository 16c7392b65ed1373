#include "common/listen_address.hpp"

#include <algorithm>
#include <cctype>

namespace smartcash {

std::optional<ListenAddress> parse_listen_address(const std::string& text, std::string* error) {
    ListenAddress a;
    std::string port = text;
    if (const auto colon = text.rfind(':'); colon != std::string::npos) {
        a.host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (a.host.size() >= 2 && a.host.front() == '[' && a.host.back() == ']')
            a.host = a.host.substr(1, a.host.size() - 2);
        else if (a.host.find(':') != std::string::npos) {
            *error = "'" + text + "': write an IPv6 address in brackets, [::1]:9464";
            return std::nullopt;
        }
        if (a.host.empty()) {
            *error = "'" + text + "': the host before ':' is empty";
            return std::nullopt;
        }
    }
    const bool digits =
        !port.empty() && port.size() <= 5 && std::all_of(port.begin(), port.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c));
        });
    const long n = digits ? std::stol(port) : 0;
    if (n < 1 || n > 65535) {
        *error = "'" + text + "': expected PORT or HOST:PORT with a port from 1 to 65535";
        return std::nullopt;
    }
    a.port = static_cast<unsigned short>(n);
    return a;
}

bool parse_host_port(const std::string& text, std::string* host, int* port) {
    if (text.find(':') == std::string::npos) return false;  // a bare port is not one here
    std::string error;
    const auto address = parse_listen_address(text, &error);
    if (!address) return false;
    *host = address->host;
    *port = address->port;
    return true;
}

}  // namespace smartcash
