#include "memory/fake_device.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace segmentor {
namespace {

TEST(FakeDeviceTest, FreedBlocksStayReservedUntilReleased) {
  FakeDevice device(1000);
  auto a = device.allocate(300);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(device.allocated_bytes(), 300);
  EXPECT_EQ(device.reserved_bytes(), 300);
  device.free(*a);
  EXPECT_EQ(device.allocated_bytes(), 0);
  EXPECT_EQ(device.reserved_bytes(), 300);
  EXPECT_EQ(device.cached_bytes(), 300);

  // A smaller request reuses the cached block whole instead of reserving more.
  auto b = device.allocate(200);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(device.reserved_bytes(), 300);
  EXPECT_EQ(device.allocated_bytes(), 300);
  device.free(*b);

  EXPECT_EQ(device.release_cache().count(), 0);
  EXPECT_EQ(device.reserved_bytes(), 0);
  EXPECT_EQ(device.release_calls(), 1);
}

TEST(FakeDeviceTest, FragmentationFailsAlthoughTotalFreeWouldSuffice) {
  FakeDevice device(1000);
  std::vector<FakeDevice::AllocationId> ids;
  for (int i = 0; i < 3; ++i) {
    auto id = device.allocate(300);
    ASSERT_TRUE(id.ok());
    ids.push_back(*id);
  }
  for (auto id : ids) device.free(id);
  // 1000 bytes free in total, but as three 300-byte cached blocks and 100 unreserved.
  auto big = device.allocate(500);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), ErrorCode::kOutOfMemory);
  EXPECT_EQ(device.snapshot().num_ooms, 1);

  (void)device.release_cache();
  auto retry = device.allocate(500);
  EXPECT_TRUE(retry.ok());
}

TEST(FakeDeviceTest, OtherProcessesAndProcessLimitShrinkWhatWeCanReserve) {
  FakeDevice device(1000);
  device.set_other_process_bytes(600);
  EXPECT_FALSE(device.allocate(500).ok());
  EXPECT_TRUE(device.allocate(400).ok());

  FakeDevice capped(1000);
  ASSERT_TRUE(capped.set_process_limit(250).ok());
  EXPECT_FALSE(capped.allocate(300).ok());
  EXPECT_TRUE(capped.allocate(250).ok());
  EXPECT_FALSE(capped.set_process_limit(-1).ok());
}

TEST(FakeDeviceTest, SnapshotSeparatesOurReservedFromOtherProcesses) {
  FakeDevice device(1000);
  device.set_other_process_bytes(200);
  ASSERT_TRUE(device.allocate(300).ok());
  const MemorySnapshot s = device.snapshot();
  EXPECT_EQ(s.device_total_bytes, 1000);
  EXPECT_EQ(s.device_free_bytes, 500);
  EXPECT_EQ(s.reserved_bytes, 300);
  EXPECT_EQ(s.other_usage_bytes(), 200);
  EXPECT_EQ(s.budget_bytes(), 800);  // our own 300 reserved stay in our budget

  ASSERT_TRUE(device.set_process_limit(400).ok());
  EXPECT_EQ(device.snapshot().budget_bytes(), 400);  // min(total − others, cap)
  EXPECT_NE(device.snapshot().describe().find("cap"), std::string::npos);
}

TEST(FakeDeviceTest, PeaksResetToCurrent) {
  FakeDevice device(1000);
  auto a = device.allocate(400);
  ASSERT_TRUE(a.ok());
  device.free(*a);
  EXPECT_EQ(device.snapshot().peak_allocated_bytes, 400);
  device.reset_peak();
  EXPECT_EQ(device.snapshot().peak_allocated_bytes, 0);
  EXPECT_EQ(device.snapshot().peak_reserved_bytes, 400);  // still reserved (cached)
}

TEST(FakeDeviceTest, FailsEveryNth) {
  FakeDevice device(1'000'000);
  device.fail_every_nth(3);
  std::vector<bool> ok;
  for (int i = 0; i < 6; ++i) ok.push_back(device.allocate(1).ok());
  EXPECT_EQ(ok, (std::vector<bool>{true, true, false, true, true, false}));
  EXPECT_EQ(device.snapshot().num_ooms, 2);
}

TEST(FakeDeviceTest, SeededProbabilityIsReproducible) {
  auto failures = [](std::uint64_t seed) {
    FakeDevice device(1'000'000'000);
    device.fail_with_probability(0.3, seed);
    std::vector<bool> failed;
    for (int i = 0; i < 500; ++i) failed.push_back(!device.allocate(1).ok());
    return failed;
  };
  const auto first = failures(42);
  EXPECT_EQ(first, failures(42));
  const auto count = std::count(first.begin(), first.end(), true);
  EXPECT_GT(count, 100);  // 150 expected
  EXPECT_LT(count, 200);
}

TEST(FakeDeviceTest, FailsAlwaysUntilTurnedOff) {
  FakeDevice device(1000);
  device.fail_always(true);
  EXPECT_FALSE(device.allocate(1).ok());
  EXPECT_FALSE(device.allocate(1).ok());
  device.fail_always(false);
  EXPECT_TRUE(device.allocate(1).ok());
}

TEST(FakeDeviceTest, UnknownFreeIsCountedNotFatal) {
  FakeDevice device(1000);
  device.free(12345);
  EXPECT_EQ(device.unknown_frees(), 1);
  EXPECT_EQ(device.reserved_bytes(), 0);
}

TEST(FormatBytesTest, PicksAUnit) {
  EXPECT_EQ(format_bytes(12), "12 B");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(8LL << 30), "8.0 GiB");
}

}  // namespace
}  // namespace segmentor
