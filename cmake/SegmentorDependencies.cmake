# Every third-party dependency is found here, once. Debian packages on dev/CI machines; on the GPU
# machine the same Debian packages extracted under a prefix (scripts/gpu-deps.sh) plus the CUDA
# LibTorch of its PyTorch.
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 REQUIRED)
find_package(JPEG REQUIRED)
find_package(PNG REQUIRED)

find_path(WEBP_INCLUDE_DIR webp/decode.h REQUIRED)
find_library(WEBP_LIBRARY webp REQUIRED)
find_library(WEBP_DEMUX_LIBRARY webpdemux REQUIRED)
add_library(segmentor_webp INTERFACE)
target_include_directories(segmentor_webp SYSTEM INTERFACE ${WEBP_INCLUDE_DIR})
target_link_libraries(segmentor_webp INTERFACE ${WEBP_DEMUX_LIBRARY} ${WEBP_LIBRARY})

find_path(EXIF_INCLUDE_DIR libexif/exif-data.h REQUIRED)
find_library(EXIF_LIBRARY exif REQUIRED)
add_library(segmentor_exif INTERFACE)
target_include_directories(segmentor_exif SYSTEM INTERFACE ${EXIF_INCLUDE_DIR})
target_link_libraries(segmentor_exif INTERFACE ${EXIF_LIBRARY})

# LibTorch. Its CMake config appends flags to CMAKE_CXX_FLAGS; we keep them on the target instead.
set(_segmentor_saved_cxx_flags "${CMAKE_CXX_FLAGS}")
find_package(Torch REQUIRED)
set(CMAKE_CXX_FLAGS "${_segmentor_saved_cxx_flags}")
add_library(segmentor_torch INTERFACE)
target_link_libraries(segmentor_torch INTERFACE ${TORCH_LIBRARIES})
separate_arguments(_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
target_compile_options(segmentor_torch INTERFACE ${_torch_flags})
# CUDA code (the allocator probe) compiles only when this LibTorch was built with CUDA.
if(TORCH_CUDA_LIBRARIES OR CAFFE2_USE_CUDA)
  set(SEGMENTOR_WITH_CUDA ON)
  target_compile_definitions(segmentor_torch INTERFACE SEGMENTOR_WITH_CUDA=1)
else()
  set(SEGMENTOR_WITH_CUDA OFF)
endif()
message(STATUS "segmentor: LibTorch ${Torch_VERSION}, CUDA code: ${SEGMENTOR_WITH_CUDA}")

# The pipeline worker's dependencies (issue: segmentor serve).
find_package(rabbitmq-c REQUIRED)
find_path(PQXX_INCLUDE_DIR pqxx/pqxx REQUIRED)
find_library(PQXX_LIBRARY pqxx REQUIRED)
find_library(PQ_LIBRARY pq REQUIRED)
# prometheus-cpp's core (registry, metric families, text format) by library rather than through
# its CMake config, whose find_dependency(CURL) for the unused push gateway fails on the GPU
# machine. The HTTP endpoint uses civetweb directly, so /healthz and /readyz sit beside /metrics.
find_path(PROMETHEUS_INCLUDE_DIR prometheus/registry.h REQUIRED)
find_library(PROMETHEUS_CORE_LIBRARY prometheus-cpp-core REQUIRED)
find_path(CIVETWEB_INCLUDE_DIR civetweb.h REQUIRED)
find_library(CIVETWEB_LIBRARY civetweb REQUIRED)
add_library(segmentor_prometheus INTERFACE)
target_include_directories(segmentor_prometheus SYSTEM INTERFACE ${PROMETHEUS_INCLUDE_DIR}
                           ${CIVETWEB_INCLUDE_DIR})
target_link_libraries(segmentor_prometheus INTERFACE ${PROMETHEUS_CORE_LIBRARY} ${CIVETWEB_LIBRARY}
                      Threads::Threads)

if(SEGMENTOR_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
find_package(benchmark QUIET)
