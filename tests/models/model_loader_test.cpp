#include "models/model_loader.h"

#include <fstream>
#include <thread>

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "models/oom_classify.h"

namespace segmentor {
namespace {

namespace fs = std::filesystem;

const fs::path kModels = SEGMENTOR_TEST_MODELS_DIR;

fs::path fresh_dir(const std::string& name) {
  fs::path dir = fs::path(::testing::TempDir()) / ("model_loader_test_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(ResolveModelTest, BareNameIsLookedUpInTheCache) {
  auto path = resolve_model("test-bright", kModels);
  ASSERT_TRUE(path.ok()) << path.status().to_string();
  EXPECT_EQ(*path, kModels / "test-bright.pt");
}

TEST(ResolveModelTest, PathToPtIsUsedAsIs) {
  const std::string given = (kModels / "test-disc.pt").string();
  auto path = resolve_model(given, "/nonexistent-cache");
  ASSERT_TRUE(path.ok()) << path.status().to_string();
  EXPECT_EQ(path->string(), given);
}

TEST(ResolveModelTest, MissingModelSaysWhereItLookedAndHowToGetIt) {
  auto path = resolve_model("isnet-medium", "/nonexistent-cache");
  ASSERT_FALSE(path.ok());
  EXPECT_EQ(path.status().code(), ErrorCode::kNotFound);
  const Status status = path.status();
  const std::string& m = status.message();
  EXPECT_TRUE(contains(m, "/nonexistent-cache/isnet-medium.pt")) << m;
  EXPECT_TRUE(contains(m, "scripts/fetch-models.sh")) << m;
  EXPECT_TRUE(contains(m, "tools/export_upstream.py")) << m;

  auto by_path = resolve_model("/nowhere/model.pt", kModels);
  ASSERT_FALSE(by_path.ok());
  EXPECT_EQ(by_path.status().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(contains(by_path.status().message(), "/nowhere/model.pt"));
}

TEST(ResolveModelTest, ModelWithoutManifestIsNotFound) {
  const fs::path dir = fresh_dir("no_manifest");
  fs::copy_file(kModels / "test-bright.pt", dir / "lonely.pt");
  auto path = resolve_model("lonely", dir);
  ASSERT_FALSE(path.ok());
  EXPECT_EQ(path.status().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(contains(path.status().message(), (dir / "lonely.json").string()))
      << path.status().message();
}

TEST(LoadMaskModelTest, CorruptTorchScriptIsCorruptDataWithTheHint) {
  const fs::path dir = fresh_dir("corrupt");
  std::ofstream(dir / "broken.pt") << "this is not a zip archive";
  fs::copy_file(kModels / "test-bright.json", dir / "broken.json");
  ModelOptions options;
  options.device = "cpu";
  auto model = load_mask_model(dir / "broken.pt", options);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), ErrorCode::kCorruptData);
  EXPECT_TRUE(contains(model.status().message(), (dir / "broken.pt").string()))
      << model.status().message();
  EXPECT_TRUE(contains(model.status().message(), "scripts/fetch-models.sh"));
}

TEST(LoadMaskModelTest, MissingFileAndBadManifestAreReported) {
  ModelOptions options;
  options.device = "cpu";
  auto missing = load_mask_model("/nowhere/model.pt", options);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(contains(missing.status().message(), "scripts/fetch-models.sh"));

  const fs::path dir = fresh_dir("bad_manifest");
  fs::copy_file(kModels / "test-bright.pt", dir / "m.pt");
  std::ofstream(dir / "m.json") << R"({"name": "m", "kind": "foreground_probability"})";
  auto bad = load_mask_model(dir / "m.pt", options);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kCorruptData);
  EXPECT_TRUE(contains(bad.status().message(), "input_width")) << bad.status().message();
}

TEST(LoadMaskModelTest, RejectsBadOptions) {
  ModelOptions options;
  options.device = "tpu";
  auto model = load_mask_model(kModels / "test-bright.pt", options);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), ErrorCode::kInvalidArgument);

  options.device = "cpu";
  options.inject_oom_rate = 1.5;
  model = load_mask_model(kModels / "test-bright.pt", options);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), ErrorCode::kInvalidArgument);
}

TEST(ResolveDeviceTest, CpuAutoAndCuda) {
  auto cpu = resolve_device("cpu");
  ASSERT_TRUE(cpu.ok());
  EXPECT_EQ(*cpu, "cpu");

  auto automatic = resolve_device("auto");
  ASSERT_TRUE(automatic.ok());
  if (*automatic == "cpu") {
    // No CUDA here: asking for it must fail rather than silently run on the CPU.
    auto cuda = resolve_device("cuda");
    ASSERT_FALSE(cuda.ok());
    EXPECT_EQ(cuda.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_FALSE(resolve_device("cuda:0").ok());
  } else {
    EXPECT_EQ(*automatic, "cuda:0");
    auto cuda = resolve_device("cuda");
    ASSERT_TRUE(cuda.ok());
    EXPECT_EQ(*cuda, "cuda:0");
    EXPECT_FALSE(resolve_device("cuda:999").ok());
  }
  EXPECT_FALSE(resolve_device("cuda:x").ok());
  EXPECT_FALSE(resolve_device("gpu").ok());
}

TEST(ConfigureTorchThreadsTest, SetsTheIntraOpThreadCount) {
  configure_torch_threads(2);
  EXPECT_EQ(at::get_num_threads(), 2);
  configure_torch_threads(0);
  EXPECT_EQ(at::get_num_threads(),
            std::max(1, static_cast<int>(std::thread::hardware_concurrency())));
}

TEST(OomClassifyTest, RecognisesAllocatorCudnnAndCublasFailures) {
  EXPECT_TRUE(looks_like_out_of_memory(
      "CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 7.79 GiB total capacity)"));
  EXPECT_TRUE(looks_like_out_of_memory("CUDA error: out of memory\nCUDA kernel errors ..."));
  EXPECT_TRUE(looks_like_out_of_memory(
      "The following operation failed in the TorchScript interpreter.\nRuntimeError: CUDA out "
      "of memory. Tried to allocate 2.00 GiB"));
  EXPECT_TRUE(looks_like_out_of_memory("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"));
  EXPECT_TRUE(looks_like_out_of_memory(
      "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"));
  EXPECT_TRUE(looks_like_out_of_memory(
      "[enforce fail at alloc_cpu.cpp:75] err == 0. DefaultCPUAllocator: not enough memory: you "
      "tried to allocate 1000000000000 bytes."));
}

TEST(OomClassifyTest, LeavesOtherFailuresAlone) {
  EXPECT_FALSE(looks_like_out_of_memory(""));
  EXPECT_FALSE(looks_like_out_of_memory("CUDA error: device-side assert triggered"));
  EXPECT_FALSE(looks_like_out_of_memory("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED"));
  EXPECT_FALSE(looks_like_out_of_memory(
      "Expected all tensors to be on the same device, but found at least two devices"));
  EXPECT_FALSE(looks_like_out_of_memory("Out Of Memory Killer documentation"));
}

}  // namespace
}  // namespace segmentor
