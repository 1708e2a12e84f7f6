// spawn_with_stdout (fleetd_process.h), which the benchmarks start fleet-sim with: a child
// that reopens its stdout must not print again what the parent had buffered and not yet
// written (bench_rollout_scale printed its buffered lines once per fleet-sim it started).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "fleetd_process.h"

namespace tinyfleet::testing {
namespace {

namespace fs = std::filesystem;

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(SpawnWithStdout, WhatTheParentBufferedIsWrittenOnce) {
  const fs::path dir = fs::temp_directory_path() / ("tf-spawn-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  // The parent's stdout into a file of its own for the test.
  std::fflush(stdout);
  const int saved = dup(1);
  ASSERT_GE(saved, 0);
  const int fd = open((dir / "parent.out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  dup2(fd, 1);
  close(fd);
  std::printf("parent line, still in the buffer");  // no newline: buffered either way
  int status = -1;
  const pid_t pid = spawn_with_stdout({"/bin/echo", "child line"}, (dir / "child.out").string());
  if (pid > 0) waitpid(pid, &status, 0);
  std::printf("\n");
  std::fflush(stdout);
  dup2(saved, 1);
  close(saved);
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(read_all(dir / "parent.out"), "parent line, still in the buffer\n");
  EXPECT_EQ(read_all(dir / "child.out"), "child line\n");
  fs::remove_all(dir);
}

// The benchmarks start their simulated devices at a lower CPU priority than the server
// side (bench_rollout_scale --sims-nice): the child runs at the nice value asked.
TEST(SpawnWithStdout, TheChildRunsAtTheNiceValueAsked) {
  const fs::path dir = fs::temp_directory_path() / ("tf-spawn-nice-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const int own = getpriority(PRIO_PROCESS, 0);
  ASSERT_LT(own, 10) << "this test needs to run below nice 10";
  for (const int nice : {0, 10}) {
    const fs::path out = dir / ("nice-" + std::to_string(nice));
    int status = -1;
    const pid_t pid = spawn_with_stdout({"/usr/bin/nice"}, out.string(), nice);
    if (pid > 0) waitpid(pid, &status, 0);
    ASSERT_GT(pid, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    // nice(1) without arguments prints its own niceness.
    EXPECT_EQ(read_all(out), std::to_string(nice == 0 ? own : nice) + "\n") << nice;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tinyfleet::testing
