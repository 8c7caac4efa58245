// Telling an out-of-memory failure apart from every other failure, by its message. Torch-free and
// header-only so the memory manager and the pipeline can reuse it without linking LibTorch.
#pragma once

#include <array>
#include <string_view>

namespace segmentor {

// Note [Classifying out-of-memory by message]
// LibTorch throws c10::OutOfMemoryError for a failed caching-allocator request, and the model
// adapter catches that type first. But the type is lost whenever the failure passes through the
// TorchScript interpreter (which rethrows a plain c10::Error carrying the original text), and
// cuDNN / cuBLAS workspace failures never had it: they surface as CUDNN_STATUS_ALLOC_FAILED or
// CUBLAS_STATUS_ALLOC_FAILED inside a generic error. So the message is the signal that survives.
// Matching is case-sensitive: the markers are printed verbatim by the libraries ("CUDA out of
// memory. Tried to allocate ...", "CUDA error: out of memory", LibTorch's CPU allocator's
// "not enough memory"), and a looser match would send unrelated failures down the OOM ladder.
inline bool looks_like_out_of_memory(std::string_view message) {
  constexpr std::array<std::string_view, 4> kMarkers = {
      "out of memory",               // CUDA caching allocator and CUDA runtime
      "CUDNN_STATUS_ALLOC_FAILED",   // cuDNN workspace allocation
      "CUBLAS_STATUS_ALLOC_FAILED",  // cuBLAS handle / workspace allocation
      "DefaultCPUAllocator: not enough memory",  // host allocation inside LibTorch
  };
  for (std::string_view marker : kMarkers) {
    if (message.find(marker) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace segmentor
