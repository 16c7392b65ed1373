// Boost.Process v1, wherever this Boost keeps it. From Boost 1.86 on, v1 lives under
// boost/process/v1/ (and from 1.88 the old paths include v2, the new default); Boost 1.74 has it
// at the old paths only. The rest of the daemon names the namespace through `bp` alone.
// The supervisor reaps its own children (SIGCHLD and waitpid of its own pid), so only the
// launching part of v1 is used: no io_context, no on_exit.
#pragma once

#if __has_include(<boost/process/v1/child.hpp>)
#include <boost/process/v1/args.hpp>
#include <boost/process/v1/child.hpp>
#include <boost/process/v1/env.hpp>
#include <boost/process/v1/environment.hpp>
#include <boost/process/v1/error.hpp>
#include <boost/process/v1/exe.hpp>
#include <boost/process/v1/extend.hpp>
#include <boost/process/v1/io.hpp>
#include <boost/process/v1/pipe.hpp>
namespace smartcash::daemon {
namespace bp = boost::process::v1;
}  // namespace smartcash::daemon
#else
#include <boost/process/args.hpp>
#include <boost/process/child.hpp>
#include <boost/process/env.hpp>
#include <boost/process/environment.hpp>
#include <boost/process/error.hpp>
#include <boost/process/exe.hpp>
#include <boost/process/extend.hpp>
#include <boost/process/io.hpp>
#include <boost/process/pipe.hpp>
namespace smartcash::daemon {
namespace bp = boost::process;
}  // namespace smartcash::daemon
#endif
