// Note [Host memory in a container], on fake /proc and cgroup files.
#include "memory/host_memory.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

namespace segmentor {
namespace {

namespace fs = std::filesystem;

class HostMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() / ("host_memory_test_" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_ / "cgroup" / "memory");
    write("meminfo", "MemTotal:       16777216 kB\nMemFree: 1 kB\nMemAvailable:    8388608 kB\n");
    options_.meminfo = dir_ / "meminfo";
    options_.cgroup_root = dir_ / "cgroup";
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const fs::path& name, const std::string& text) { std::ofstream(dir_ / name) << text; }

  fs::path dir_;
  HostMemoryOptions options_;
};

constexpr std::int64_t kGiB = std::int64_t{1} << 30;

TEST_F(HostMemoryTest, WithoutACgroupLimitTheMachineCounts) {
  write("cgroup/memory.max", "max\n");
  write("cgroup/memory.current", "123\n");
  HostMemory host(options_);
  const MemorySnapshot s = host.snapshot();
  EXPECT_EQ(s.device_total_bytes, 16 * kGiB);
  EXPECT_EQ(s.device_free_bytes, 8 * kGiB);
}

// Issue 11, item 9: in a 4 GiB container on a 16 GiB machine the gate planned with 8 GiB free.
TEST_F(HostMemoryTest, ACgroupV2LimitNarrowsTotalAndFree) {
  write("cgroup/memory.max", std::to_string(4 * kGiB) + "\n");
  write("cgroup/memory.current", std::to_string(3 * kGiB) + "\n");
  write("cgroup/memory.stat", "anon 1\ninactive_file " + std::to_string(kGiB / 2) + "\n");
  HostMemory host(options_);
  const MemorySnapshot s = host.snapshot();
  EXPECT_EQ(s.device_total_bytes, 4 * kGiB);
  EXPECT_EQ(s.device_free_bytes, kGiB + kGiB / 2);  // 4 − (3 − 0.5)
}

TEST_F(HostMemoryTest, ACgroupV1LimitCountsAndItsNoLimitValueDoesNot) {
  write("cgroup/memory/memory.limit_in_bytes", std::to_string(2 * kGiB) + "\n");
  write("cgroup/memory/memory.usage_in_bytes", std::to_string(kGiB) + "\n");
  HostMemory host(options_);
  EXPECT_EQ(host.snapshot().device_total_bytes, 2 * kGiB);
  EXPECT_EQ(host.snapshot().device_free_bytes, kGiB);
  write("cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
  EXPECT_EQ(host.snapshot().device_total_bytes, 16 * kGiB);
}

}  // namespace
}  // namespace segmentor
