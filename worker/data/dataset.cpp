#include "worker/data/dataset.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <optional>

#include "common/sha256.hpp"
#include "worker/data/class_names.hpp"

namespace smartcash::data {

namespace fs = std::filesystem;

namespace {

bool is_image_file(const fs::path& path) {
    std::string ext = path.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp";
}

bool is_dir(const fs::path& path) {
    std::error_code ec;
    return fs::is_directory(path, ec);
}

bool is_file(const fs::path& path) {
    std::error_code ec;
    return fs::is_regular_file(path, ec);
}

// Images of one folder (not recursive, as exports are flat), sorted so that the order, and with it
// the seeded data order of a run, does not depend on the file system.
std::vector<std::string> list_images(const fs::path& dir) {
    std::vector<std::string> images;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        if (is_file(it->path()) && is_image_file(it->path()))
            images.push_back(it->path().lexically_normal().string());
    }
    if (ec) throw DataError(dir.string(), 0, "cannot list directory: " + ec.message());
    std::sort(images.begin(), images.end());
    return images;
}

// A split given as a text file: one image path per line, relative to the dataset root.
std::vector<std::string> read_image_list(const fs::path& list, const fs::path& root) {
    std::ifstream in(list);
    if (!in) throw DataError(list.string(), 0, "cannot read image list");
    std::vector<std::string> images;
    std::string line;
    int line_no = 0;
    while (std::getline(in, line)) {
        ++line_no;
        line.erase(line.find_last_not_of(" \t\r") + 1);
        line.erase(0, line.find_first_not_of(" \t"));
        if (line.empty()) continue;
        fs::path image = fs::path(line).is_absolute() ? fs::path(line) : root / line;
        if (!is_file(image)) throw DataError(list.string(), line_no, "image not found: " + line);
        images.push_back(image.lexically_normal().string());
    }
    return images;
}

void read_split_labels(Split& split, int num_classes, const std::vector<int>& class_map,
                       std::vector<LabelIssue>& issues) {
    split.labels.clear();
    split.labels.reserve(split.images.size());
    for (const auto& image : split.images) {
        auto labels = read_label_file(label_path_for(image), num_classes, issues);
        if (!class_map.empty())
            for (auto& label : labels) label.cls = class_map[static_cast<size_t>(label.cls)];
        split.labels.push_back(std::move(labels));
    }
}

int yaml_line(const YAML::Node& node) { return node.Mark().is_null() ? 0 : node.Mark().line + 1; }

// Resolves a split path of data.yaml. Roboflow writes "../train/images" although the folders sit
// next to data.yaml, so when the literal path does not exist the leading "../" is dropped.
std::optional<fs::path> resolve_split_path(const fs::path& base, const std::string& value) {
    fs::path literal = fs::path(value).is_absolute() ? fs::path(value) : base / value;
    if (fs::exists(literal)) return literal.lexically_normal();
    if (value.rfind("../", 0) == 0) {
        fs::path trimmed = base / value.substr(3);
        if (fs::exists(trimmed)) return trimmed.lexically_normal();
    }
    return std::nullopt;
}

std::vector<std::string> images_of(const fs::path& where, const fs::path& root) {
    if (is_dir(where)) return list_images(where);
    if (where.extension() == ".txt") return read_image_list(where, root);
    if (is_image_file(where)) return {where.string()};
    throw DataError(where.string(), 0, "not an image folder or image list");
}

Split load_yaml_split(const YAML::Node& doc, const std::string& key, const fs::path& base,
                      const std::string& yaml_file, bool required) {
    Split split;
    YAML::Node node = doc[key];
    if (!node || node.IsNull()) {
        if (required) throw DataError(yaml_file, 0, fmt::format("'{}' is missing", key));
        return split;
    }
    std::vector<std::string> values;
    if (node.IsScalar()) {
        values.push_back(node.as<std::string>());
    } else if (node.IsSequence()) {
        for (const auto& item : node) values.push_back(item.as<std::string>());
    } else {
        throw DataError(yaml_file, yaml_line(node),
                        fmt::format("'{}' must be a path or a list of paths", key));
    }
    for (const auto& value : values) {
        auto where = resolve_split_path(base, value);
        // Exports list val and test even when that split was left empty and not written.
        if (!where && !required) continue;
        if (!where)
            throw DataError(
                yaml_file, yaml_line(node),
                fmt::format("{} path '{}' not found (relative to {})", key, value, base.string()));
        auto images = images_of(*where, base);
        split.images.insert(split.images.end(), images.begin(), images.end());
    }
    return split;
}

std::vector<std::string> read_names(const YAML::Node& names, const std::string& yaml_file) {
    std::vector<std::string> result;
    if (names.IsSequence()) {
        for (const auto& name : names) result.push_back(name.as<std::string>());
    } else if (names.IsMap()) {
        // Some exporters write {0: name, 1: name, ...}.
        std::vector<std::pair<int, std::string>> entries;
        for (const auto& kv : names)
            entries.emplace_back(kv.first.as<int>(), kv.second.as<std::string>());
        std::sort(entries.begin(), entries.end());
        for (std::size_t i = 0; i < entries.size(); ++i) {
            if (entries[i].first != static_cast<int>(i))
                throw DataError(yaml_file, yaml_line(names), "names keys must be 0..nc-1");
            result.push_back(entries[i].second);
        }
    } else {
        throw DataError(yaml_file, yaml_line(names), "names must be a list");
    }
    return result;
}

Dataset open_yaml(const fs::path& yaml_path, int expected_classes) {
    const std::string yaml_file = yaml_path.string();
    YAML::Node doc;
    try {
        doc = YAML::LoadFile(yaml_file);
    } catch (const YAML::BadFile&) {
        throw DataError(yaml_file, 0, "cannot read file");
    } catch (const YAML::Exception& e) {
        throw DataError(yaml_file, e.mark.is_null() ? 0 : e.mark.line + 1, e.msg);
    }
    if (!doc.IsMap())
        throw DataError(yaml_file, 0, "expected a mapping with names, nc, train, val");

    Dataset dataset;
    fs::path base = yaml_path.parent_path();
    if (base.empty()) base = ".";
    try {
        // An optional dataset root, relative to data.yaml, against which the split paths resolve.
        if (doc["path"] && doc["path"].IsScalar()) {
            fs::path root(doc["path"].as<std::string>());
            base = root.is_absolute() ? root : base / root;
        }
        dataset.root = base.lexically_normal().string();

        if (!doc["names"]) throw DataError(yaml_file, 0, "'names' is missing");
        dataset.names = read_names(doc["names"], yaml_file);
        int nc = static_cast<int>(dataset.names.size());
        if (doc["nc"]) {
            nc = doc["nc"].as<int>();
            if (static_cast<int>(dataset.names.size()) != nc)
                throw DataError(
                    yaml_file, yaml_line(doc["names"]),
                    fmt::format("names has {} entries but nc is {}", dataset.names.size(), nc));
        }
        if (nc != expected_classes)
            throw DataError(
                yaml_file, doc["nc"] ? yaml_line(doc["nc"]) : yaml_line(doc["names"]),
                fmt::format("nc is {} but the model has {} classes", nc, expected_classes));
        // The SmartCash classes are matched by name, whatever order the export lists them in;
        // the label files' ids are translated to the model's when the splits are read.
        if (expected_classes == static_cast<int>(default_class_names().size())) {
            dataset.class_map = map_class_names(dataset.names, default_class_names(), yaml_file,
                                                yaml_line(doc["names"]));
            if (is_identity(dataset.class_map)) dataset.class_map.clear();
            dataset.export_names = dataset.names;
            dataset.names = default_class_names();
        }

        dataset.train = load_yaml_split(doc, "train", base, yaml_file, /*required=*/true);
        dataset.valid = load_yaml_split(doc, doc["val"] ? "val" : "valid", base, yaml_file,
                                        /*required=*/false);
        dataset.test = load_yaml_split(doc, "test", base, yaml_file, /*required=*/false);
    } catch (const YAML::Exception& e) {
        throw DataError(yaml_file, e.mark.is_null() ? 0 : e.mark.line + 1, e.msg);
    }
    return dataset;
}

// The plain layout images/{train,valid|val,test} with labels/ beside images/, or a Roboflow
// export whose data.yaml was lost: {train,valid,test}/images.
Dataset open_plain(const fs::path& dir) {
    Dataset dataset;
    dataset.root = dir.lexically_normal().string();
    dataset.names = default_class_names();
    auto find = [&](std::initializer_list<const char*> names) -> std::optional<fs::path> {
        for (const char* name : names) {
            if (is_dir(dir / "images" / name)) return dir / "images" / name;
            if (is_dir(dir / name / "images")) return dir / name / "images";
        }
        return std::nullopt;
    };
    auto train = find({"train"});
    if (!train)
        throw DataError(dir.string(), 0,
                        "no data.yaml, images/train or train/images in this directory");
    dataset.train.images = list_images(*train);
    if (auto valid = find({"valid", "val"})) dataset.valid.images = list_images(*valid);
    if (auto test = find({"test"})) dataset.test.images = list_images(*test);
    return dataset;
}

SplitIdentity split_identity(const Split& split, const std::string& root) {
    std::vector<std::string> names;
    names.reserve(split.images.size());
    for (const auto& image : split.images)
        names.push_back(fs::path(image).lexically_relative(root).generic_string());
    std::sort(names.begin(), names.end());
    Sha256 h;
    for (const auto& name : names) {
        h.update(name);
        h.update("\n");
    }
    return {static_cast<std::int64_t>(split.images.size()), h.hex_digest()};
}

void split_changes(const char* name, const SplitIdentity& saved, const SplitIdentity& now,
                   std::vector<std::string>& out) {
    if (saved.images != now.images)
        out.push_back(fmt::format("the {} split has {} images, the checkpoint's had {}", name,
                                  now.images, saved.images));
    else if (saved.files_sha256 != now.files_sha256)
        out.push_back(fmt::format("the {} split's file list changed ({} images, as before)", name,
                                  now.images));
}

}  // namespace

DatasetIdentity dataset_identity(const Dataset& dataset) {
    return {split_identity(dataset.train, dataset.root),
            split_identity(dataset.valid, dataset.root)};
}

std::vector<std::string> dataset_changes(const DatasetIdentity& saved, const DatasetIdentity& now) {
    std::vector<std::string> out;
    split_changes("train", saved.train, now.train, out);
    split_changes("valid", saved.valid, now.valid, out);
    return out;
}

const std::vector<std::string>& default_class_names() {
    static const std::vector<std::string> names = {
        "001",    "002",    "005",     "010",     "020",      "050",
        "100",    "l2_001", "l2_002",  "l2_005",  "l2_010",   "l2_020",
        "l2_050", "l2_100", "l3_sign", "l3_text", "l3_thread"};
    return names;
}

Dataset open_dataset(const std::string& path, BadLabelPolicy policy, int expected_classes) {
    fs::path where(path);
    std::error_code ec;
    if (!fs::exists(where, ec)) throw DataError(path, 0, "dataset not found");

    Dataset dataset;
    if (is_dir(where)) {
        if (is_file(where / "data.yaml"))
            dataset = open_yaml(where / "data.yaml", expected_classes);
        else if (is_file(where / "data.yml"))
            dataset = open_yaml(where / "data.yml", expected_classes);
        else
            dataset = open_plain(where);
    } else {
        dataset = open_yaml(where, expected_classes);
    }
    if (static_cast<int>(dataset.names.size()) != expected_classes)
        throw DataError(path, 0,
                        fmt::format("dataset has {} classes but the model has {}",
                                    dataset.names.size(), expected_classes));
    if (dataset.train.empty()) throw DataError(path, 0, "the train split has no images");

    std::vector<LabelIssue> issues;
    const int nc = static_cast<int>(dataset.names.size());
    read_split_labels(dataset.train, nc, dataset.class_map, issues);
    read_split_labels(dataset.valid, nc, dataset.class_map, issues);
    read_split_labels(dataset.test, nc, dataset.class_map, issues);

    if (!issues.empty() && policy == BadLabelPolicy::fail) {
        const LabelIssue& first = issues.front();
        std::string message = first.message;
        if (issues.size() > 1)
            message += fmt::format(" (and {} more label issue{})", issues.size() - 1,
                                   issues.size() > 2 ? "s" : "");
        throw DataError(first.file, first.line, message);
    }
    dataset.skipped = static_cast<int>(issues.size());
    dataset.issues = std::move(issues);
    return dataset;
}

}  // namespace smartcash::data
