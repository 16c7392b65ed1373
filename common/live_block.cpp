#include "common/live_block.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

namespace smartcash {

void LiveBlock::erase() {
    // Up one line and clear it, once per line drawn.
    for (; m_drawn > 0; --m_drawn) m_out << "\033[1A\033[2K";
    m_out << "\r";
}

void LiveBlock::draw() {
    for (const auto& l : m_block) m_out << l << "\n";
    m_drawn = m_block.size();
    m_out.flush();
}

void LiveBlock::line(const std::string& text) {
    if (!m_terminal) {
        m_out << text << std::endl;
        return;
    }
    erase();
    m_out << text << "\n";
    draw();
}

void LiveBlock::show(const std::vector<std::string>& block) {
    if (!m_terminal) return;
    erase();
    m_block = block;
    draw();
}

void LiveBlock::clear() {
    if (!m_terminal || m_drawn == 0) return;
    erase();
    m_block.clear();
    m_out.flush();
}

int terminal_width(int fd) {
    winsize w{};
    if (::isatty(fd) == 1 && ::ioctl(fd, TIOCGWINSZ, &w) == 0 && w.ws_col > 0) return w.ws_col;
    return 80;
}

}  // namespace smartcash
