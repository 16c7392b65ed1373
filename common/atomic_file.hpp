// Durable file writes: every file of the run directory that matters is replaced atomically
// (temp file, fsync, rename, fsync directory), and journals are appended line by line.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace smartcash {

/// A failed file-system operation: the path, the errno and what was being done. what() reads
/// like "cannot write /run/state.json: No space left on device".
class IoError : public std::runtime_error {
  public:
    /// `operation` is a short phrase such as "cannot write"; the message adds the path and
    /// strerror(error_code).
    IoError(std::string path, int error_code, const std::string& operation);
    const std::string& path() const { return m_path; }
    int error_code() const { return m_error_code; }  ///< the errno value

  private:
    std::string m_path;
    int m_error_code;
};

/// Replaces `path` with `data` so that a reader (or a crash) sees either the old file or the
/// new one, never a mix: writes a temp file in the same directory, fsyncs it, renames it over
/// `path` and fsyncs the directory. On any failure (ENOSPC, EFBIG, ...) the temp file is
/// removed, the old file is left as it was and IoError is thrown. A process that may exceed
/// RLIMIT_FSIZE should call ignore_file_size_signal() first, or SIGXFSZ kills it instead.
void write_file_atomic(const std::string& path, std::string_view data);

/// Appends `line` (plus '\n' when it does not end in one) to `path` with one O_APPEND write,
/// creating the file if needed, and fsyncs it when `fsync` is true. On a failed or short write
/// the file is cut back to its old length so no torn line is left (this assumes one writer per
/// file, as for the journal). Throws IoError.
void append_line_durable(const std::string& path, std::string_view line, bool fsync);

/// The whole contents of a file. Throws IoError.
std::string read_file(const std::string& path);

/// fsyncs a directory so that renames and creations in it survive a crash. Throws IoError;
/// a file system that cannot fsync directories (EINVAL) is not an error.
void fsync_directory(const std::string& dir);

/// Creates a directory and its missing parents (mode 0755 before umask), like `mkdir -p`.
/// Existing directories are fine; an existing non-directory is an IoError.
void make_directories(const std::string& path);

/// Sets SIGXFSZ to ignored so that writing past RLIMIT_FSIZE fails with EFBIG (an IoError)
/// rather than killing the process.
void ignore_file_size_signal();

}  // namespace smartcash
