// Who is at the other end of a connected Unix socket: the control socket serves only the user
// the supervisor runs as, and root. One implementation per OS family (peer_credentials_linux.cpp:
// SO_PEERCRED; peer_credentials_bsd.cpp: getpeereid() on macOS and the BSDs), chosen in
// daemon/CMakeLists.txt.
#pragma once

#include <optional>
#include <string>

namespace smartcash::daemon {

/// The effective user id of the peer of the connected Unix socket `fd`; nullopt (and *error)
/// when the system cannot say.
std::optional<unsigned> peer_uid(int fd, std::string* error);

/// Whether a peer with effective user id `uid` may use the control socket of a supervisor whose
/// effective user id is `own_uid`: the same user, or root.
inline bool peer_allowed(unsigned uid, unsigned own_uid) { return uid == own_uid || uid == 0; }

}  // namespace smartcash::daemon
