#include "daemon/shell/world_link.hpp"

#include <csignal>

#include "daemon/shell/worker_process.hpp"

namespace smartcash::daemon {

namespace world = protocol::world;

protocol::WorldStatus world_status(const WorldOptions& o,
                                   const std::optional<world::WorldView>& view) {
    protocol::WorldStatus w;
    w.rank = o.rank;
    w.world_size = o.world_size;
    w.store = o.master();
    if (view) {
        w.round = view->round;
        w.waiting_for = view->waiting_for;
        w.ranks = view->ranks;
    }
    return w;
}

std::map<std::string, std::string> WorldLink::worker_env() const {
    return {{"WORLD_SIZE", std::to_string(m_options.world_size)},
            {"RANK", std::to_string(m_options.rank)},
            {"MASTER_ADDR", m_options.master_addr},
            {"MASTER_PORT", std::to_string(m_options.master_port)},
            {"SMARTCASH_STORE_PREFIX", m_prefix}};
}

WorldLink::WorldLink(boost::asio::io_context& io, WorldOptions options, std::string agent_path,
                     std::string log_path, Handlers handlers)
    : m_io(io),
      m_options(std::move(options)),
      m_agent_path(std::move(agent_path)),
      m_log_path(std::move(log_path)),
      m_handlers(std::move(handlers)),
      m_restart(io),
      m_figures(io),
      m_linger(io) {}

WorldLink::~WorldLink() { close(); }

std::optional<std::string> WorldLink::start() {
    LaunchSpec spec;
    spec.executable = m_agent_path;
    spec.args = {"world-agent",
                 "--rank",
                 std::to_string(m_options.rank),
                 "--world-size",
                 std::to_string(m_options.world_size),
                 "--master",
                 m_options.master(),
                 "--lost-after",
                 std::to_string(m_options.lost_after_s)};
    spec.log_path = m_log_path;
    const std::uint64_t generation = ++m_generation;
    auto agent = std::make_shared<WorkerProcess>(m_io);
    auto error = agent->start(
        spec,
        [this, generation](const protocol::Json& message) {
            if (generation == m_generation && !m_closed) on_message(message);
        },
        [](const std::string&) {},
        [this, generation](const ProcessEnd& end) {
            if (generation != m_generation || m_closed) return;
            on_exit(end.exit_code ? "exit code " + std::to_string(*end.exit_code)
                                  : "signal " + std::to_string(end.signal.value_or(0)));
        });
    if (error) return "cannot start the world agent " + m_agent_path + ": " + error->message;
    m_agent = agent;
    if (m_figures.expiry() <= std::chrono::steady_clock::now()) tick();
    return std::nullopt;
}

void WorldLink::tick() {
    if (m_closed) return;
    if (m_handlers.figures) send(m_handlers.figures());
    m_figures.expires_after(std::chrono::seconds(1));
    m_figures.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) tick();
    });
}

void WorldLink::send(const world::AgentCommand& command) {
    if (m_agent && !m_agent->exited()) m_agent->send(world::to_json(command));
}

void WorldLink::join(int tier) {
    m_pending_join = tier;
    send(world::Join{tier});
    if (m_agent) m_join_generation = m_generation;
}

void WorldLink::publish(const world::Publish& end) { send(end); }

void WorldLink::on_message(const protocol::Json& message) {
    if (m_finishing) return;
    std::string error;
    auto decoded = world::agent_message_from_json(message, &error);
    if (!decoded) return;
    std::visit(
        [this](const auto& m) {
            using M = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<M, world::Connected>) {
                if (m_handlers.connected) m_handlers.connected(m);
                // A join sent to an agent that has died since goes to this one; one this agent
                // has read already is not sent twice (a second join enters the next round).
                if (m_pending_join && m_join_generation != m_generation) {
                    send(world::Join{*m_pending_join});
                    m_join_generation = m_generation;
                }
            } else if constexpr (std::is_same_v<M, world::Formed>) {
                m_pending_join.reset();
                m_prefix = m.prefix;
                if (m_handlers.formed) m_handlers.formed(m);
            } else if constexpr (std::is_same_v<M, world::PeerEnded>) {
                if (m_handlers.peer_ended) m_handlers.peer_ended(m);
            } else if constexpr (std::is_same_v<M, world::WorldView>) {
                if (m_handlers.view) m_handlers.view(m);
            } else if constexpr (std::is_same_v<M, world::AgentError>) {
                m_last_error = m.message;
            }
        },
        *decoded);
}

void WorldLink::on_exit(const std::string& why) {
    if (m_finishing) return;
    m_agent.reset();
    const std::string what =
        m_last_error.empty() ? "the world agent ended (" + why + ")" : m_last_error;
    m_last_error.clear();
    if (m_handlers.lost) m_handlers.lost(what);
    m_restart.expires_after(std::chrono::seconds(1));
    m_restart.async_wait([this](const boost::system::error_code& ec) {
        if (ec || m_closed) return;
        if (auto error = start(); error && m_handlers.lost) m_handlers.lost(*error);
    });
}

void WorldLink::finish(std::function<void()> then) {
    m_finishing = true;
    m_pending_join.reset();
    m_linger.expires_after(std::chrono::seconds(3));
    m_linger.async_wait([this, then = std::move(then)](const boost::system::error_code&) {
        close();
        then();
    });
}

void WorldLink::close() {
    if (m_closed) return;
    m_closed = true;
    m_restart.cancel();
    m_figures.cancel();
    m_linger.cancel();
    if (m_agent) m_agent->signal(SIGTERM);
    m_agent.reset();
}

}  // namespace smartcash::daemon
