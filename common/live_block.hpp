// Draws a block of lines that is redrawn in place at the bottom of a terminal, with lines that
// stay (events) printed above it: the live view of `smartcashctl watch` and `smartcashd run
// --follow`. Off a terminal nothing is redrawn: lines that stay are printed, blocks are not.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace smartcash {

class LiveBlock {
  public:
    /// `terminal`: the stream is a terminal that understands ANSI cursor movement.
    LiveBlock(std::ostream& out, bool terminal) : m_out(out), m_terminal(terminal) {}
    ~LiveBlock() { clear(); }

    /// A line that stays: printed above the block, which is drawn again under it.
    void line(const std::string& text);
    /// Replaces the block (on a terminal; elsewhere it does nothing).
    void show(const std::vector<std::string>& block);
    /// Removes the block from the screen (before the program prints something else or exits).
    void clear();

    bool terminal() const { return m_terminal; }

  private:
    void erase();
    void draw();

    std::ostream& m_out;
    bool m_terminal;
    std::vector<std::string> m_block;
    std::size_t m_drawn = 0;  // lines of the block now on the screen
};

/// The terminal's width in columns when `fd` is a terminal (80 when it cannot be told).
int terminal_width(int fd);

}  // namespace smartcash
