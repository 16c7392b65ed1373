#include "common/atomic_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef __linux__
#include <sched.h>
#include <sys/mount.h>
#endif

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace smartcash {
namespace {

constexpr int child_skipped = 77;

/// A fresh, empty directory for one test.
std::string fresh_dir(const std::string& name) {
    std::string dir = std::string(SMARTCASH_TEST_TMP) + "/atomic_" + name;
    std::system(("rm -rf '" + dir + "'").c_str());
    make_directories(dir);
    return dir;
}

std::vector<std::string> list_dir(const std::string& dir) {
    std::vector<std::string> names;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return names;
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name != "." && name != "..") names.push_back(name);
    }
    ::closedir(d);
    return names;
}

/// Runs `body` in a forked child (so resource limits and namespaces stay there) and returns
/// its exit code: 0 for success, a small number naming the failed check, child_skipped when
/// the fault cannot be arranged on this machine.
int run_in_child(const std::function<int()>& body) {
    pid_t pid = ::fork();
    if (pid == 0) {
        int code = 99;
        try {
            code = body();
        } catch (...) {
            code = 98;
        }
        ::_exit(code);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) return 200 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

TEST(AtomicFile, WritesAndReplaces) {
    std::string dir = fresh_dir("replace");
    std::string path = dir + "/state.json";
    write_file_atomic(path, "first");
    EXPECT_EQ(read_file(path), "first");
    write_file_atomic(path, std::string("second\0with nul", 15));
    EXPECT_EQ(read_file(path), std::string("second\0with nul", 15));
    write_file_atomic(path, "");
    EXPECT_EQ(read_file(path), "");
    EXPECT_EQ(list_dir(dir), std::vector<std::string>{"state.json"});
}

TEST(AtomicFile, KeepsPermissionsOfReplacedFile) {
    std::string dir = fresh_dir("mode");
    std::string path = dir + "/secret";
    write_file_atomic(path, "a");
    ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
    write_file_atomic(path, "b");
    struct stat st;
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(AtomicFile, MissingDirectoryIsIoErrorNamingPath) {
    std::string dir = fresh_dir("missing");
    std::string path = dir + "/no/such/dir/file";
    try {
        write_file_atomic(path, "x");
        FAIL() << "no exception";
    } catch (const IoError& e) {
        EXPECT_EQ(e.path(), path);
        EXPECT_EQ(e.error_code(), ENOENT);
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(std::strerror(ENOENT)), std::string::npos);
    }
}

TEST(AtomicFile, FileSizeLimitLeavesOldFileIntact) {
    std::string dir = fresh_dir("efbig");
    std::string path = dir + "/checkpoint.bin";
    write_file_atomic(path, "old content");
    int code = run_in_child([&] {
        ignore_file_size_signal();
        rlimit limit{64 * 1024, 64 * 1024};
        if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return child_skipped;
        try {
            write_file_atomic(path, std::string(1 << 20, 'x'));
            return 1;  // the write should not have succeeded
        } catch (const IoError& e) {
            if (e.error_code() != EFBIG) return 2;
            if (e.path() != path) return 3;
            if (std::string(e.what()).find(std::strerror(EFBIG)) == std::string::npos) return 4;
        }
        return 0;
    });
    if (code == child_skipped) GTEST_SKIP() << "cannot lower RLIMIT_FSIZE";
    ASSERT_EQ(code, 0);
    EXPECT_EQ(read_file(path), "old content");
    EXPECT_EQ(list_dir(dir), std::vector<std::string>{"checkpoint.bin"});
}

TEST(AtomicFile, FileSizeLimitKillsWithoutIgnoringTheSignal) {
    // Documents why ignore_file_size_signal() exists: by default SIGXFSZ ends the process.
    std::string dir = fresh_dir("sigxfsz");
    std::string path = dir + "/big";
    int code = run_in_child([&] {
        std::signal(SIGXFSZ, SIG_DFL);
        rlimit limit{4096, 4096};
        if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return child_skipped;
        try {
            write_file_atomic(path, std::string(1 << 16, 'x'));
        } catch (const IoError&) {
            return 1;
        }
        return 2;
    });
    if (code == child_skipped) GTEST_SKIP() << "cannot lower RLIMIT_FSIZE";
    EXPECT_EQ(code, 200 + SIGXFSZ);
}

#ifdef __linux__
/// Mounts a 64 KiB tmpfs on `dir` in a private mount namespace of the calling (child) process.
bool mount_small_tmpfs(const std::string& dir) {
    if (::unshare(CLONE_NEWNS) != 0) {
        // Not privileged: a user namespace gives the capabilities needed inside it.
        uid_t uid = ::getuid();
        gid_t gid = ::getgid();
        if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return false;
        std::ofstream("/proc/self/setgroups") << "deny";
        std::ofstream("/proc/self/uid_map") << "0 " << uid << " 1";
        std::ofstream("/proc/self/gid_map") << "0 " << gid << " 1";
    }
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
    return ::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=64k") == 0;
}
#endif

TEST(AtomicFile, FullDiskLeavesOldFileIntact) {
#ifndef __linux__
    GTEST_SKIP() << "a full disk is made with a Linux mount namespace and a small tmpfs";
#else
    std::string dir = fresh_dir("enospc");
    int code = run_in_child([&] {
        if (!mount_small_tmpfs(dir)) return child_skipped;
        std::string path = dir + "/state.json";
        write_file_atomic(path, "old content");
        try {
            write_file_atomic(path, std::string(1 << 20, 'x'));
            return 1;
        } catch (const IoError& e) {
            if (e.error_code() != ENOSPC) return 2;
            if (std::string(e.what()).find(path) == std::string::npos) return 3;
        }
        if (read_file(path) != "old content") return 4;
        if (list_dir(dir) != std::vector<std::string>{"state.json"}) return 5;
        // The journal append fails the same way and leaves no torn line.
        append_line_durable(dir + "/events.jsonl", "{\"a\":1}", true);
        try {
            append_line_durable(dir + "/events.jsonl", std::string(1 << 20, 'y'), true);
            return 6;
        } catch (const IoError& e) {
            if (e.error_code() != ENOSPC) return 7;
        }
        if (read_file(dir + "/events.jsonl") != "{\"a\":1}\n") return 8;
        return 0;
    });
    if (code == child_skipped) GTEST_SKIP() << "cannot mount a small tmpfs here";
    EXPECT_EQ(code, 0);
#endif
}

TEST(AtomicFile, AppendsLines) {
    std::string dir = fresh_dir("append");
    std::string path = dir + "/events.jsonl";
    append_line_durable(path, "one", true);
    append_line_durable(path, "two\n", false);
    append_line_durable(path, "", true);
    EXPECT_EQ(read_file(path), "one\ntwo\n\n");
}

TEST(AtomicFile, AppendOverSizeLimitCutsBackTornLine) {
    std::string dir = fresh_dir("append_efbig");
    std::string path = dir + "/events.jsonl";
    append_line_durable(path, "first", true);
    int code = run_in_child([&] {
        ignore_file_size_signal();
        rlimit limit{4096, 4096};
        if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return child_skipped;
        try {
            append_line_durable(path, std::string(10000, 'z'), true);
            return 1;
        } catch (const IoError& e) {
            if (e.error_code() != EFBIG) return 2;
        }
        return 0;
    });
    if (code == child_skipped) GTEST_SKIP() << "cannot lower RLIMIT_FSIZE";
    ASSERT_EQ(code, 0);
    EXPECT_EQ(read_file(path), "first\n");
}

TEST(AtomicFile, AppendToFullDeviceIsIoError) {
#ifndef __linux__
    GTEST_SKIP() << "/dev/full (every write fails with ENOSPC) exists on Linux only";
#endif
    try {
        append_line_durable("/dev/full", "x", false);
        FAIL() << "no exception";
    } catch (const IoError& e) {
        EXPECT_EQ(e.error_code(), ENOSPC);
        EXPECT_EQ(e.path(), "/dev/full");
    }
}

TEST(AtomicFile, ReadMissingFileIsIoError) {
    std::string dir = fresh_dir("read");
    try {
        read_file(dir + "/nothing");
        FAIL() << "no exception";
    } catch (const IoError& e) {
        EXPECT_EQ(e.error_code(), ENOENT);
        EXPECT_EQ(e.path(), dir + "/nothing");
    }
}

TEST(AtomicFile, MakesNestedDirectories) {
    std::string dir = fresh_dir("mkdir");
    make_directories(dir + "/a/b/c");
    make_directories(dir + "/a/b/c");  // existing is fine
    make_directories(dir + "/a/b/c/");
    struct stat st;
    ASSERT_EQ(::stat((dir + "/a/b/c").c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    write_file_atomic(dir + "/a/file", "x");
    EXPECT_THROW(make_directories(dir + "/a/file/sub"), IoError);
    EXPECT_THROW(make_directories(dir + "/a/file"), IoError);
    fsync_directory(dir + "/a");
    EXPECT_THROW(fsync_directory(dir + "/missing"), IoError);
}

TEST(AtomicFile, RelativePathsWork) {
    std::string dir = fresh_dir("relative");
    char old_cwd[4096];
    ASSERT_NE(::getcwd(old_cwd, sizeof old_cwd), nullptr);
    ASSERT_EQ(::chdir(dir.c_str()), 0);
    write_file_atomic("plain.txt", "here");
    std::string content = read_file("plain.txt");
    ASSERT_EQ(::chdir(old_cwd), 0);
    EXPECT_EQ(content, "here");
    EXPECT_EQ(list_dir(dir), std::vector<std::string>{"plain.txt"});
}

}  // namespace
}  // namespace smartcash
