// The supervisor's link to the other ranks of a data-parallel job (docs/distributed.md): it runs
// `smartcash-worker world-agent` as a child (the agent holds the c10d store, so this program never
// links LibTorch), forwards joins, published ends and this rank's figures to it, and turns its
// messages into callbacks. An agent that dies is started again after a second; a join that was
// waiting is sent again to the new agent.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/control.hpp"
#include "common/world_messages.hpp"
#include "daemon/shell/world_options.hpp"

namespace smartcash::daemon {

class WorkerProcess;

/// The world part of `status`: this rank, and every rank as the agent last saw it.
protocol::WorldStatus world_status(const WorldOptions& o,
                                   const std::optional<protocol::world::WorldView>& view);

class WorldLink {
  public:
    struct Handlers {
        std::function<void(const protocol::world::Connected&)> connected;
        std::function<void(const protocol::world::Formed&)> formed;
        std::function<void(const protocol::world::PeerEnded&)> peer_ended;
        std::function<void(const protocol::world::WorldView&)> view;
        /// The agent is gone (its error or exit, in words); another starts a second later.
        std::function<void(const std::string&)> lost;
        /// This rank's figures, sent to the others about once a second.
        std::function<protocol::world::Figures()> figures;
    };

    WorldLink(boost::asio::io_context& io, WorldOptions options, std::string agent_path,
              std::string log_path, Handlers handlers);
    ~WorldLink();
    WorldLink(const WorldLink&) = delete;
    WorldLink& operator=(const WorldLink&) = delete;

    /// Starts the agent; returns why it could not be started.
    std::optional<std::string> start();
    void join(int tier);
    void publish(const protocol::world::Publish& end);
    /// Ends the agent (on shutdown); no handler runs afterwards.
    void close();
    /// The job has ended on this rank: keeps the agent a few seconds more, so that the other
    /// ranks read this rank's last message from the store (which rank 0's agent serves), then
    /// closes it and calls `then`. No handler runs meanwhile.
    void finish(std::function<void()> then);

    const WorldOptions& options() const { return m_options; }
    /// What a worker of the round formed last needs: WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT
    /// and SMARTCASH_STORE_PREFIX (its process group's keys in the agents' store).
    std::map<std::string, std::string> worker_env() const;
    /// The prefix of the last round formed: the workers' process group keys.
    const std::string& prefix() const { return m_prefix; }

  private:
    void on_message(const protocol::Json& message);
    void on_exit(const std::string& why);
    void send(const protocol::world::AgentCommand& command);
    void tick();

    boost::asio::io_context& m_io;
    WorldOptions m_options;
    std::string m_agent_path;
    std::string m_log_path;
    Handlers m_handlers;
    std::shared_ptr<WorkerProcess> m_agent;
    boost::asio::steady_timer m_restart;
    boost::asio::steady_timer m_figures;
    boost::asio::steady_timer m_linger;
    std::optional<int> m_pending_join;  ///< sent, no Formed yet: sent again to a new agent
    std::string m_prefix;
    std::string m_last_error;
    bool m_closed = false;
    bool m_finishing = false;  ///< finish() was called: messages and a dead agent are ignored
    std::uint64_t m_generation = 0;
    std::uint64_t m_join_generation = 0;  ///< the agent the pending join was sent to
};

}  // namespace smartcash::daemon
