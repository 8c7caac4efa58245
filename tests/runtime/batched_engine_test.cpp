// The engine with batched TorchScript models (Note [Batching admitted tasks]): concurrent tasks on
// one lane share forward passes, and every task still gets exactly the masks it gets unbatched.
// With the toy models on the CPU here, and on CUDA where the build has it (scripts/gpu-bench.sh
// verify): there the batches run on the batcher's stream and the tasks read them from theirs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "memory/admission_gate.h"
#include "memory/fake_device.h"
#include "memory/oom_recovery.h"
#include "models/model_loader.h"
#include "pipeline/engine.h"
#include "support/temp_dir.h"

namespace segmentor {
namespace {

namespace fs = std::filesystem;

const fs::path kModels = SEGMENTOR_TEST_MODELS_DIR;

// Red block (test-bright: foreground) and green block (test-person-prob: people) placed by `seed`.
RgbImage scene(int seed) {
  const int width = 96 + 8 * (seed % 3);
  const int height = 64 + 4 * (seed % 4);
  RgbImage image{width, height,
                 std::vector<std::uint8_t>(static_cast<std::size_t>(width) * height * 3, 20)};
  auto block = [&](int x0, int y0, int w, int h, int channel) {
    for (int y = y0; y < std::min(height, y0 + h); ++y) {
      for (int x = x0; x < std::min(width, x0 + w); ++x) {
        image.pixels[(static_cast<std::size_t>(y) * width + x) * 3 + channel] = 250;
      }
    }
  };
  block((seed * 11) % (width / 2), (seed * 5) % (height / 2), 24 + seed % 7, 20, 0);
  block((seed * 17) % (width / 2), (seed * 3) % (height / 2), 16, 12 + seed % 5, 1);
  return image;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct LaneRun {
  std::map<std::string, std::string> files;  // relative path -> bytes, every mask written
  std::string device;                        // where the models ran
  BatchStats foreground;
  BatchStats people;
  int failed = 0;
};

// Runs `tasks` tasks through an engine whose GPU-like lane (concurrent, 8 slots) has test-bright
// and test-person-prob loaded with `max_batch`.
LaneRun run_lane(int max_batch, int tasks, const fs::path& root) {
  LaneRun result;
  ModelOptions options;
  options.max_batch = max_batch;
  options.freeze = false;
  auto foreground = load_mask_model(kModels / "test-bright.pt", options);
  auto people = load_mask_model(kModels / "test-person-prob.pt", options);
  EXPECT_TRUE(foreground.ok() && people.ok());
  if (!foreground.ok() || !people.ok()) return result;
  ModelSet lane{"fake:0", std::move(foreground).value(), std::move(people).value(), false};
  EXPECT_EQ(lane.foreground->max_batch(), max_batch);
  EXPECT_EQ(lane.people->max_batch(), max_batch);

  FakeDevice device(std::int64_t{1} << 40);
  AdmissionGateOptions gate_options;
  gate_options.max_concurrent = 8;
  gate_options.memory_threshold = 1.0;
  auto gate = AdmissionGate::create(gate_options, &device).value();
  RecoveryOptions recovery_options;
  recovery_options.backoff = {};
  auto recovery = OomRecovery::create(recovery_options, &device, gate.get()).value();
  {
    EngineOptions engine_options;
    engine_options.layout = MaskLayout{root};
    engine_options.max_concurrent = 8;
    Engine engine(engine_options, lane, nullptr, *gate, *recovery, nullptr, nullptr);
    std::mutex mutex;
    for (int i = 0; i < tasks; ++i) {
      EngineTask task;
      task.kind = AssetKind::kVideoFrame;
      task.id = "frame" + std::to_string(i);
      task.source = task.id + ".jpg";
      task.image = scene(i);
      engine.submit(std::move(task), [&](const EngineTask&, const TaskOutcome& outcome) {
        std::lock_guard lock(mutex);
        if (!outcome.status.ok()) {
          ADD_FAILURE() << outcome.status.to_string();
          ++result.failed;
        }
      });
    }
    engine.wait_idle();
  }
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.is_regular_file()) {
      result.files[fs::relative(entry.path(), root).string()] = read_file(entry.path());
    }
  }
  result.device = lane.foreground->info().device;
  result.foreground = lane.foreground->batch_stats();
  result.people = lane.people->batch_stats();
  return result;
}

TEST(BatchedEngineTest, BatchedTasksWriteExactlyTheMasksUnbatchedTasksWrite) {
  const fs::path root = fs::temp_directory_path() / "batched_engine_test";
  fixtures::remove_tree(root);
  constexpr int kTasks = 40;
  const LaneRun single = run_lane(1, kTasks, root / "single");
  const LaneRun batched = run_lane(8, kTasks, root / "batched");
  fixtures::remove_tree(root);

  EXPECT_EQ(single.failed, 0);
  EXPECT_EQ(batched.failed, 0);
  ASSERT_EQ(single.files.size(), static_cast<std::size_t>(3 * kTasks));  // fg, people, product
  ASSERT_EQ(batched.files.size(), single.files.size());
  int differ = 0;
  for (const auto& [path, bytes] : single.files) {
    // On a GPU the people model's convolution may pick another algorithm for a batch (fp16
    // rounding at the threshold); test-bright's foreground is elementwise, exact everywhere.
    if (single.device != "cpu" && path.rfind("masks_foreground/", 0) != 0) continue;
    const auto found = batched.files.find(path);
    if (found == batched.files.end() || found->second != bytes) {
      if (++differ <= 5) ADD_FAILURE() << path << " differs between batched and unbatched";
    }
  }
  EXPECT_EQ(differ, 0);
  // The scenes differ, so their masks do: a swap between tasks would have shown above.
  EXPECT_NE(single.files.at("masks_foreground/video_frames/frame0.png"),
            single.files.at("masks_foreground/video_frames/frame1.png"));

  EXPECT_EQ(single.foreground.batches, 0u);  // MAX_MODEL_BATCH=1: no batcher at all
  EXPECT_EQ(batched.foreground.inputs, static_cast<std::uint64_t>(kTasks));
  EXPECT_GT(batched.foreground.largest, 1);  // 8 slots at once: passes were shared
  EXPECT_GT(batched.people.inputs, 0u);
}

}  // namespace
}  // namespace segmentor
