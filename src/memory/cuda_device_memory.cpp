#include "memory/cuda_device_memory.h"

#include <ATen/ATen.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/util/Exception.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <exception>
#include <string>

#ifdef SEGMENTOR_HAVE_NVML
#include <nvml.h>
#endif

namespace segmentor {

namespace {

// StatType::AGGREGATE: the all-pools entry of c10's per-pool stat arrays. The enum moved between
// namespaces across LibTorch releases; its value, 0, did not.
constexpr std::size_t kAggregate = 0;

c10::DeviceIndex to_device_index(int index) { return static_cast<c10::DeviceIndex>(index); }

Status cuda_status(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return Status::Ok();
  return internal_error(std::string(what) + ": " + cudaGetErrorString(error));
}

}  // namespace

#ifdef SEGMENTOR_HAVE_NVML
struct CudaDeviceMemory::Nvml {
  nvmlDevice_t device{};
};
#else
struct CudaDeviceMemory::Nvml {};
#endif

Result<std::unique_ptr<CudaDeviceMemory>> CudaDeviceMemory::create(int device_index) {
  // LibTorch reports failures as exceptions; this adapter turns them into Status.
  try {
    const int count = static_cast<int>(c10::cuda::device_count());
    if (device_index < 0 || device_index >= count) {
      return invalid_argument("cuda:" + std::to_string(device_index) + " does not exist (" +
                              std::to_string(count) + " CUDA devices)");
    }
    const c10::DeviceIndex index = to_device_index(device_index);
    c10::cuda::CUDAGuard guard(index);
    // The first allocation initialises the context and the caching allocator for this device;
    // setMemoryFraction needs both (Note [Process cap on CUDA]).
    (void)at::empty({1}, at::TensorOptions().dtype(at::kByte).device(at::kCUDA, index));

    std::size_t free_bytes = 0;
    std::size_t total_bytes = 0;
    SEGMENTOR_RETURN_IF_ERROR(cuda_status(cudaMemGetInfo(&free_bytes, &total_bytes),
                                          "cudaMemGetInfo"));

    std::unique_ptr<Nvml> nvml;
#ifdef SEGMENTOR_HAVE_NVML
    // NVML numbers devices its own way (CUDA_VISIBLE_DEVICES does not apply): match by PCI bus id.
    if (nvmlInit() == NVML_SUCCESS) {
      std::array<char, 32> bus_id{};
      nvmlDevice_t handle{};
      if (cudaDeviceGetPCIBusId(bus_id.data(), static_cast<int>(bus_id.size()), device_index) ==
              cudaSuccess &&
          nvmlDeviceGetHandleByPciBusId(bus_id.data(), &handle) == NVML_SUCCESS) {
        nvml = std::make_unique<Nvml>();
        nvml->device = handle;
      } else {
        nvmlShutdown();
      }
    }
#endif
    return std::unique_ptr<CudaDeviceMemory>(new CudaDeviceMemory(
        device_index, static_cast<std::int64_t>(total_bytes), std::move(nvml)));
  } catch (const c10::OutOfMemoryError& e) {
    return out_of_memory(std::string("initialising CUDA: ") + e.what_without_backtrace());
  } catch (const c10::Error& e) {
    return internal_error(std::string("initialising CUDA: ") + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return internal_error(std::string("initialising CUDA: ") + e.what());
  }
}

CudaDeviceMemory::CudaDeviceMemory(int device_index, std::int64_t total_bytes,
                                   std::unique_ptr<Nvml> nvml)
    : device_index_(device_index), total_bytes_(total_bytes), nvml_(std::move(nvml)) {}

CudaDeviceMemory::~CudaDeviceMemory() {
#ifdef SEGMENTOR_HAVE_NVML
  if (nvml_) nvmlShutdown();
#endif
}

MemorySnapshot CudaDeviceMemory::snapshot() {
  MemorySnapshot s;
  s.device_total_bytes = total_bytes_;
  {
    std::lock_guard lock(limit_mutex_);
    s.process_limit_bytes = process_limit_;
  }
  try {
    const c10::DeviceIndex index = to_device_index(device_index_);
    c10::cuda::CUDAGuard guard(index);
    std::size_t free_bytes = 0;
    std::size_t total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) {
      s.device_free_bytes = static_cast<std::int64_t>(free_bytes);
      s.device_total_bytes = static_cast<std::int64_t>(total_bytes);
    } else {
      // Unknown free memory: report none free, so the budget is 0. Tasks with a calibrated size
      // then run only MIN at a time; tasks predicted at 0 bytes (no calibration) are admitted by
      // count alone, up to MAX, whatever the budget.
      s.device_free_bytes = 0;
    }
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
    s.allocated_bytes = stats.allocated_bytes[kAggregate].current;
    s.peak_allocated_bytes = stats.allocated_bytes[kAggregate].peak;
    s.reserved_bytes = stats.reserved_bytes[kAggregate].current;
    s.peak_reserved_bytes = stats.reserved_bytes[kAggregate].peak;
    s.num_ooms = stats.num_ooms;
    s.num_alloc_retries = stats.num_alloc_retries;
  } catch (const std::exception&) {
    // Leave what we have: a zero budget throttles calibrated tasks to MIN, the safe direction.
  }
#ifdef SEGMENTOR_HAVE_NVML
  if (nvml_) {
    nvmlUtilization_t utilization{};
    if (nvmlDeviceGetUtilizationRates(nvml_->device, &utilization) == NVML_SUCCESS) {
      s.gpu_utilization_percent = static_cast<double>(utilization.gpu);
    }
  }
#endif
  return s;
}

void CudaDeviceMemory::reset_peak() {
  try {
    c10::cuda::CUDACachingAllocator::resetPeakStats(to_device_index(device_index_));
  } catch (const std::exception&) {
    // Peaks keep counting from earlier; calibration then over-predicts, the safe direction.
  }
}

std::chrono::nanoseconds CudaDeviceMemory::release_cache() {
  const auto started = std::chrono::steady_clock::now();
  try {
    c10::cuda::CUDAGuard guard(to_device_index(device_index_));
    // Synchronize first: blocks freed while kernels were still using them are only returned to
    // the cache once their streams' work is done, and only then can emptyCache release them.
    c10::cuda::device_synchronize();
    c10::cuda::CUDACachingAllocator::emptyCache();
  } catch (const std::exception&) {
    // Nothing to undo: the cache stays as it was, and the caller's retry will tell.
  }
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                              started);
}

Status CudaDeviceMemory::set_process_limit(std::int64_t bytes) {
  if (bytes < 0) {
    return invalid_argument("GPU memory limit must be >= 0 bytes, got " + std::to_string(bytes));
  }
  const std::int64_t limit = bytes == 0 ? 0 : std::min(bytes, total_bytes_);
  const double fraction =
      limit == 0 ? 1.0 : static_cast<double>(limit) / static_cast<double>(total_bytes_);
  try {
    c10::cuda::CUDACachingAllocator::setMemoryFraction(fraction, to_device_index(device_index_));
  } catch (const std::exception& e) {
    return internal_error(std::string("setMemoryFraction: ") + e.what());
  }
  std::lock_guard lock(limit_mutex_);
  process_limit_ = limit;
  return Status::Ok();
}

}  // namespace segmentor
