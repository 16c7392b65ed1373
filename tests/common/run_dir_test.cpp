#include "common/run_dir.hpp"

#include <gtest/gtest.h>

namespace smartcash {
namespace {

TEST(RunDir, DefaultIsNamedAfterTheConfigFile) {
    EXPECT_EQ(run_dir::default_for("config/demo.yaml"), "runs/demo");
    EXPECT_EQ(run_dir::default_for("/jobs/rupiah.v2.yaml"), "runs/rupiah.v2");
    EXPECT_EQ(run_dir::default_for("job"), "runs/job");
}

TEST(RunDir, FilesAreInsideTheRunDirectory) {
    EXPECT_EQ(run_dir::config("runs/a"), "runs/a/config.yaml");
    EXPECT_EQ(run_dir::data("runs/a"), "runs/a/data");
}

}  // namespace
}  // namespace smartcash
