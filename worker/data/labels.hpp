// YOLO label files: one object per line, `cls cx cy w h`, coordinates normalised to [0, 1].
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace smartcash::data {

/// One object box, normalised to the image it belongs to.
struct Label {
    int cls = 0;
    float cx = 0.f, cy = 0.f, w = 0.f, h = 0.f;
};

/// A problem found in the dataset, located in a file.
struct LabelIssue {
    std::string file;
    int line = 0;  ///< 1-based; 0 when it concerns the whole file (e.g. an undecodable image)
    std::string message;
};

/// A user-caused dataset problem. what() reads "path/to/x.txt:3: class 21 out of range [0, 17)".
class DataError : public std::runtime_error {
  public:
    explicit DataError(const std::string& message);
    DataError(const std::string& file, int line, const std::string& message);
    const std::string& file() const { return m_file; }  ///< empty when not tied to a file
    int line() const { return m_line; }                 ///< 1-based; 0 when unknown or whole file

  private:
    std::string m_file;
    int m_line = 0;
};

/// Formats an issue as "file:line: message" (or "file: message" when line is 0).
std::string format_issue(const LabelIssue& issue);

/// Parses label text. Valid lines go to the result; each bad line (wrong field count,
/// non-numeric field, class outside [0, num_classes), coordinate outside [0, 1], w or h <= 0)
/// is appended to `issues` with `file` and its 1-based line. Blank lines are ignored.
std::vector<Label> parse_labels(const std::string& text, const std::string& file, int num_classes,
                                std::vector<LabelIssue>& issues);

/// Reads and parses a label file; a missing file means no objects. An unreadable existing file
/// is reported as an issue with line 0.
std::vector<Label> read_label_file(const std::string& path, int num_classes,
                                   std::vector<LabelIssue>& issues);

/// The label file of an image: the last "/images/" component becomes "/labels/" and the
/// extension becomes ".txt".
std::string label_path_for(const std::string& image_path);

}  // namespace smartcash::data
