// CudaDeviceMemory on a real GPU: built only with SEGMENTOR_WITH_CUDA, skipped without a device.
#include "memory/cuda_device_memory.h"

#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/util/Exception.h>

namespace segmentor {
namespace {

constexpr std::int64_t kMiB = 1024 * 1024;

class CudaDeviceMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (c10::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
    auto created = CudaDeviceMemory::create(0);
    ASSERT_TRUE(created.ok()) << created.status().to_string();
    device_ = std::move(created).value();
  }
  void TearDown() override {
    if (device_) {
      EXPECT_TRUE(device_->set_process_limit(0).ok());
    }
  }
  std::unique_ptr<CudaDeviceMemory> device_;
};

TEST_F(CudaDeviceMemoryTest, SnapshotIsPlausible) {
  const MemorySnapshot s = device_->snapshot();
  EXPECT_GT(s.device_total_bytes, 0);
  EXPECT_GT(s.device_free_bytes, 0);
  EXPECT_LE(s.device_free_bytes, s.device_total_bytes);
  EXPECT_GT(s.budget_bytes(), 0);
  EXPECT_LE(s.allocated_bytes, s.reserved_bytes);
  EXPECT_EQ(s.process_limit_bytes, 0);
}

TEST_F(CudaDeviceMemoryTest, MissingDeviceIsInvalidArgument) {
  auto missing = CudaDeviceMemory::create(1000);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(CudaDeviceMemoryTest, AllocatorStatsFollowATensorAndReleaseEmptiesTheCache) {
  const std::int64_t before = device_->snapshot().reserved_bytes;
  {
    at::Tensor t = at::empty({256 * kMiB}, at::TensorOptions().dtype(at::kByte).device(at::kCUDA, 0));
    const MemorySnapshot during = device_->snapshot();
    EXPECT_GE(during.allocated_bytes, 256 * kMiB);
    EXPECT_GE(during.peak_allocated_bytes, 256 * kMiB);
  }
  const MemorySnapshot cached = device_->snapshot();
  EXPECT_GE(cached.reserved_bytes - cached.allocated_bytes, 256 * kMiB);  // freed, still cached
  EXPECT_GT(device_->release_cache().count(), 0);
  EXPECT_LE(device_->snapshot().reserved_bytes, before);

  device_->reset_peak();
  const MemorySnapshot reset = device_->snapshot();
  EXPECT_EQ(reset.peak_allocated_bytes, reset.allocated_bytes);
}

TEST_F(CudaDeviceMemoryTest, ProcessLimitMakesTheCardSmaller) {
  ASSERT_TRUE(device_->set_process_limit(1024 * kMiB).ok());
  const MemorySnapshot s = device_->snapshot();
  EXPECT_EQ(s.process_limit_bytes, 1024 * kMiB);
  EXPECT_LE(s.budget_bytes(), 1024 * kMiB);
  const std::int64_t ooms_before = s.num_ooms;
  bool threw_oom = false;
  try {
    at::Tensor t =
        at::empty({2048 * kMiB}, at::TensorOptions().dtype(at::kByte).device(at::kCUDA, 0));
  } catch (const c10::OutOfMemoryError&) {
    threw_oom = true;
  }
  EXPECT_TRUE(threw_oom);
  EXPECT_GT(device_->snapshot().num_ooms, ooms_before);
  EXPECT_FALSE(device_->set_process_limit(-1).ok());
}

}  // namespace
}  // namespace segmentor
