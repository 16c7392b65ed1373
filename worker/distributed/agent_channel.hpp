// The world agent's side of its pipes to the supervisor (docs/distributed.md, "The world
// agent"): JSON-line messages out (common/world_messages.hpp), commands in, read without ever
// blocking the agent for longer than it asks. No LibTorch here.
#pragma once

#include <functional>
#include <string>

#include "common/protocol.hpp"
#include "common/world_messages.hpp"

namespace smartcash::dist {

class AgentChannel {
  public:
    /// `report_fd`/`command_fd` as given on the command line (-1: none): else
    /// SMARTCASH_REPORT_FD / SMARTCASH_COMMAND_FD, else stdout and stdin. Both are made
    /// close-on-exec and the command fd non-blocking.
    AgentChannel(int report_fd, int command_fd);

    /// Writes one message; after a failed write (the supervisor is gone) writes nothing more.
    void send(const protocol::world::AgentMessage& message);
    /// A write failed: the supervisor stopped reading.
    bool gone() const { return m_gone; }
    /// Waits at most `timeout_ms` for commands and hands each one that decodes to `on_command`
    /// (`log` hears of the rest); false once the command fd is closed.
    bool read(int timeout_ms,
              const std::function<void(const protocol::world::AgentCommand&)>& on_command,
              const std::function<void(const std::string&)>& log);

  private:
    int m_report_fd;
    int m_command_fd;
    bool m_gone = false;
    protocol::LineSplitter m_lines;
};

}  // namespace smartcash::dist
