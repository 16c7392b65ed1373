// peer_uid() on Linux: SO_PEERCRED gives the credentials the peer had when it connected.
#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>
#include <cstring>

#include "daemon/shell/peer_credentials.hpp"

namespace smartcash::daemon {

std::optional<unsigned> peer_uid(int fd, std::string* error) {
    ucred cred{};
    socklen_t size = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &size) != 0) {
        *error = std::string("SO_PEERCRED: ") + std::strerror(errno);
        return std::nullopt;
    }
    return static_cast<unsigned>(cred.uid);
}

}  // namespace smartcash::daemon
