// How the typed messages of the protocol (reports.hpp, commands.hpp, journal_events.hpp,
// control.hpp) become JSON objects and back: each message lists its fields once, in a
// `fields(self, visit)` function, and these helpers write and read them.
//
// Reading is lenient, as the protocol asks (docs/protocol.md): a field that is missing or of
// another JSON type keeps the struct's default, unknown fields are ignored. An optional field is
// written only when it holds a value.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

namespace smartcash::protocol::wire {

using Json = nlohmann::json;

template <typename T>
struct is_optional : std::false_type {};
template <typename T>
struct is_optional<std::optional<T>> : std::true_type {};

template <typename T>
struct is_vector : std::false_type {};
template <typename T>
struct is_vector<std::vector<T>> : std::true_type {};

template <typename T>
struct is_string_map : std::false_type {};
template <typename T>
struct is_string_map<std::map<std::string, T>> : std::true_type {};

struct ignore_field {
    template <typename X>
    void operator()(const char*, X&) const {}
};

/// Whether T lists its own fields (a nested message such as a layer's scores).
template <typename T, typename = void>
struct has_fields : std::false_type {};
template <typename T>
struct has_fields<T, std::void_t<decltype(T::fields(std::declval<T&>(), ignore_field{}))>>
    : std::true_type {};

template <typename T>
Json value_of(const T& value);

/// Writes every field of `message` into `out`.
template <typename T>
void write_fields(const T& message, Json& out) {
    T::fields(message, [&](const char* key, const auto& value) {
        using V = std::decay_t<decltype(value)>;
        if constexpr (is_optional<V>::value) {
            if (value) out[key] = value_of(*value);
        } else {
            out[key] = value_of(value);
        }
    });
}

template <typename T>
Json value_of(const T& value) {
    if constexpr (has_fields<T>::value) {
        Json out = Json::object();
        write_fields(value, out);
        return out;
    } else if constexpr (is_string_map<T>::value) {
        Json out = Json::object();
        for (const auto& [name, v] : value) out[name] = value_of(v);
        return out;
    } else if constexpr (is_vector<T>::value) {
        Json out = Json::array();
        for (const auto& v : value) out.push_back(value_of(v));
        return out;
    } else {
        return Json(value);
    }
}

/// Reads `j` into `out` when it has a fitting JSON type; returns whether it did.
template <typename T>
bool read_value(const Json& j, T& out) {
    if constexpr (is_optional<T>::value) {
        typename T::value_type v{};
        if (!read_value(j, v)) return false;
        out = std::move(v);
        return true;
    } else if constexpr (std::is_same_v<T, Json>) {
        out = j;
        return true;
    } else if constexpr (is_vector<T>::value) {
        if (!j.is_array()) return false;
        out.clear();
        for (const auto& v : j) {
            typename T::value_type item{};
            if (read_value(v, item)) out.push_back(std::move(item));
        }
        return true;
    } else if constexpr (std::is_same_v<T, std::string>) {
        if (!j.is_string()) return false;
        out = j.get<std::string>();
        return true;
    } else if constexpr (std::is_same_v<T, bool>) {
        if (!j.is_boolean()) return false;
        out = j.get<bool>();
        return true;
    } else if constexpr (std::is_floating_point_v<T>) {
        if (!j.is_number()) return false;
        out = j.get<double>();
        return true;
    } else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) {
        if (!j.is_number()) return false;
        if (j.is_number_unsigned()) {
            out = static_cast<T>(j.get<std::uint64_t>());
        } else {
            const double v = j.get<double>();  // a negative size or count reads as 0
            out = v > 0 ? static_cast<T>(v) : T{0};
        }
        return true;
    } else if constexpr (std::is_integral_v<T>) {
        if (!j.is_number()) return false;
        out = j.is_number_integer() ? static_cast<T>(j.get<std::int64_t>())
                                    : static_cast<T>(j.get<double>());
        return true;
    } else if constexpr (is_string_map<T>::value) {
        if (!j.is_object()) return false;
        out.clear();
        for (const auto& [name, v] : j.items()) {
            typename T::mapped_type item{};
            if (read_value(v, item)) out[name] = std::move(item);
        }
        return true;
    } else {
        static_assert(has_fields<T>::value, "no JSON reading for this field type");
        if (!j.is_object()) return false;
        T::fields(out, [&](const char* key, auto& field) {
            auto it = j.find(key);
            if (it != j.end()) read_value(*it, field);
        });
        return true;
    }
}

/// Reads every field of a message from the object `j` (fields it lacks keep their defaults).
template <typename T>
void read_fields(const Json& j, T& message) {
    T::fields(message, [&](const char* key, auto& field) {
        auto it = j.find(key);
        if (it != j.end()) read_value(*it, field);
    });
}

}  // namespace smartcash::protocol::wire

namespace smartcash::protocol::wire {

/// Reads a message of one of the variant's alternatives: the one whose `name` is `name`. Returns
/// false when none is.
template <typename Variant, std::size_t I = 0>
bool read_alternative(const Json& message, const std::string& name, Variant& out) {
    if constexpr (I < std::variant_size_v<Variant>) {
        using T = std::variant_alternative_t<I, Variant>;
        if (name == T::name) {
            T value;
            read_fields(message, value);
            out = std::move(value);
            return true;
        }
        return read_alternative<Variant, I + 1>(message, name, out);
    } else {
        return false;
    }
}

/// The message as an object: `key` (its discriminating field) set to its name, then its fields.
template <typename T>
Json object_of(const T& message, const char* key) {
    Json j = Json::object();
    j[key] = T::name;
    write_fields(message, j);
    return j;
}

/// A message without a name as an object of its fields.
template <typename T>
Json to_object(const T& message) {
    Json j = Json::object();
    write_fields(message, j);
    return j;
}

/// A message without a name read from an object (what it lacks keeps its default).
template <typename T>
T from_object(const Json& j) {
    T out;
    read_fields(j, out);
    return out;
}

/// Any message of a channel as its wire object: `key` names it, "v" gives the protocol version.
template <typename Variant>
Json variant_to_json(const Variant& message, const char* key, int version) {
    return std::visit(
        [&](const auto& m) {
            Json j = object_of(m, key);
            if (version) j["v"] = version;
            return j;
        },
        message);
}

/// The channel's message named by the field `key` of `j`; nullopt and *error ("unknown `what`
/// \"name\"") when no message of the channel has that name.
template <typename Variant>
std::optional<Variant> variant_from_json(const Json& j, const char* key, const char* what,
                                         std::string* error) {
    const auto it = j.find(key);
    const std::string name = it != j.end() && it->is_string() ? it->get<std::string>() : "";
    Variant out;
    if (read_alternative(j, name, out)) return out;
    if (error) *error = std::string("unknown ") + what + " \"" + name + "\"";
    return std::nullopt;
}

/// The wire name of whichever message `message` holds.
template <typename Variant>
const char* name_of_alternative(const Variant& message) {
    return std::visit([](const auto& m) -> const char* { return m.name; }, message);
}

}  // namespace smartcash::protocol::wire
