// peer_uid() on macOS and the BSDs: getpeereid() gives the peer's effective user id.
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "daemon/shell/peer_credentials.hpp"

namespace smartcash::daemon {

std::optional<unsigned> peer_uid(int fd, std::string* error) {
    uid_t uid = 0;
    gid_t gid = 0;
    if (::getpeereid(fd, &uid, &gid) != 0) {
        *error = std::string("getpeereid: ") + std::strerror(errno);
        return std::nullopt;
    }
    return static_cast<unsigned>(uid);
}

}  // namespace smartcash::daemon
