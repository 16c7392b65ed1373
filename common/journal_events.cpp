#include "common/journal_events.hpp"

#include "common/wire_fields.hpp"

namespace smartcash::protocol {

// Journal lines carry no protocol version: the journal is a file of its own.
Json to_json(const JournalEvent& event) {
    return wire::variant_to_json(event, event_key, /*version=*/0);
}

std::optional<JournalEvent> journal_event_from_json(const Json& entry, std::string* error) {
    return wire::variant_from_json<JournalEvent>(entry, event_key, "journal event", error);
}

const char* name_of(const JournalEvent& event) { return wire::name_of_alternative(event); }

}  // namespace smartcash::protocol
