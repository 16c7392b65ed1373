#include "common/protocol.hpp"

namespace smartcash::protocol {

std::string encode(const Json& message) {
    std::string line =
        message.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
    line.push_back('\n');
    return line;
}

std::optional<Json> decode(std::string_view line, std::string* error, const char* key) {
    auto fail = [&](std::string why) -> std::optional<Json> {
        if (error) *error = std::move(why);
        return std::nullopt;
    };
    if (line.size() > max_line_bytes)
        return fail("line longer than " + std::to_string(max_line_bytes) + " bytes");
    Json value = Json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) return fail("malformed JSON");
    if (!value.is_object()) return fail("message is not a JSON object");
    auto it = value.find(key);
    if (it == value.end() || !it->is_string())
        return fail(std::string("missing string field \"") + key + "\"");
    return value;
}

void LineSplitter::feed(const char* data, std::size_t size) { m_buffer.append(data, size); }

std::optional<std::string> LineSplitter::next() {
    while (true) {
        std::size_t nl = m_buffer.find('\n', m_scan);
        if (nl == std::string::npos) {
            m_scan = m_buffer.size();
            if (m_buffer.size() > max_line_bytes) {
                // Drop what we have; keep discarding until the next newline.
                m_buffer.clear();
                m_scan = 0;
                m_discarding = true;
                m_overflowed = true;
            }
            return std::nullopt;
        }
        std::string line = m_buffer.substr(0, nl);
        m_buffer.erase(0, nl + 1);
        m_scan = 0;
        if (m_discarding) {
            m_discarding = false;
            continue;
        }
        if (line.size() > max_line_bytes) {
            m_overflowed = true;
            continue;
        }
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
    }
}

}  // namespace smartcash::protocol
