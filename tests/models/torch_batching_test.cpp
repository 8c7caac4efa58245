// Batched forward passes of the TorchScript MaskModel on the toy models (Note [Batching admitted
// tasks], models/forward_batcher.h): the same masks as unbatched, each caller its own, and models
// that must not batch do not.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "models/model_loader.h"

namespace segmentor {
namespace {

namespace fs = std::filesystem;

const fs::path kModels = SEGMENTOR_TEST_MODELS_DIR;

std::unique_ptr<MaskModel> load(const fs::path& file, int max_batch) {
  ModelOptions options;
  options.max_batch = max_batch;
  auto model = load_mask_model(file, options);
  EXPECT_TRUE(model.ok()) << model.status().to_string();
  return model.ok() ? std::move(model).value() : nullptr;
}

// A dark image of `width`×`height` with a bright red block whose place and size depend on `seed`,
// so every seed has its own test-bright mask (red > 0.5 -> foreground).
RgbImage red_block(int width, int height, int seed) {
  RgbImage image{width, height,
                 std::vector<std::uint8_t>(static_cast<std::size_t>(width) * height * 3, 20)};
  const int x0 = (seed * 13) % (width / 2);
  const int y0 = (seed * 7) % (height / 2);
  const int x1 = x0 + width / 4 + seed % 5 * 3;
  const int y1 = y0 + height / 4 + seed % 3 * 4;
  for (int y = y0; y < std::min(y1, height); ++y) {
    for (int x = x0; x < std::min(x1, width); ++x) {
      image.pixels[(static_cast<std::size_t>(y) * width + x) * 3] = 250;
    }
  }
  return image;
}

// `threads` callers segment `per_thread` images each (red blocks of width×height, seeds from
// `first_seed`) through `model` at once; how many masks differ from what `reference` gives.
int wrong_masks_at_once(MaskModel& model, MaskModel& reference, int threads, int per_thread,
                        int width, int height, int first_seed) {
  std::vector<std::thread> callers;
  std::atomic<int> wrong{0};
  for (int t = 0; t < threads; ++t) {
    callers.emplace_back([&, t] {
      for (int r = 0; r < per_thread; ++r) {
        const RgbImage image = red_block(width, height, first_seed + t * per_thread + r);
        auto mask = model.segment(image);
        auto expected = reference.segment(image);
        if (!mask.ok() || !expected.ok() || mask->values != expected->values) ++wrong;
      }
    });
  }
  for (auto& caller : callers) caller.join();
  return wrong.load();
}

TEST(TorchBatchingTest, EveryConcurrentCallerGetsTheMaskItsImageGivesUnbatched) {
  auto single = load(kModels / "test-bright.pt", 1);
  auto batched = load(kModels / "test-bright.pt", 8);
  ASSERT_TRUE(single && batched);
  ASSERT_EQ(single->max_batch(), 1);
  ASSERT_EQ(batched->max_batch(), 8);  // the load-time probe found batch 2 right

  constexpr int kImages = 12;
  std::vector<RgbImage> images;
  std::vector<Mask> expected;
  for (int i = 0; i < kImages; ++i) {
    images.push_back(red_block(80 + 8 * (i % 3), 64 + 6 * (i % 4), i));  // sizes differ too
    auto mask = single->segment(images.back());
    ASSERT_TRUE(mask.ok()) << mask.status().to_string();
    ASSERT_TRUE(mask->any());
    expected.push_back(std::move(*mask));
  }
  // Different images, different masks: a mix-up between callers cannot go unnoticed.
  for (int i = 1; i < kImages; ++i) {
    ASSERT_FALSE(expected[static_cast<std::size_t>(i)].values == expected[0].values) << i;
  }

  constexpr int kThreads = 8;
  constexpr int kRounds = 12;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        const auto i = static_cast<std::size_t>((t * 5 + r) % kImages);
        auto mask = batched->segment(images[i]);
        if (!mask.ok() || mask->width != expected[i].width || mask->values != expected[i].values) {
          ++wrong;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
  const BatchStats stats = batched->batch_stats();
  EXPECT_EQ(stats.inputs, static_cast<std::uint64_t>(kThreads * kRounds));
  EXPECT_GT(stats.largest, 1);  // passes were shared
  EXPECT_EQ(stats.split_batches, 0u);
  EXPECT_EQ(single->batch_stats().batches, 0u);  // unbatched: no batcher at all
}

// Note [Warm every slot before ready]: warming runs every batch size up to the tickets held (and
// the cap) on the batcher's thread; an unbatched model has nothing to warm.
TEST(TorchBatchingTest, WarmingRunsEveryBatchSizeUpToWhatIsHeld) {
  auto batched = load(kModels / "test-bright.pt", 8);
  ASSERT_EQ(batched->max_batch(), 8);
  ASSERT_TRUE(batched->warm_batches(5).ok());
  BatchStats stats = batched->batch_stats();
  EXPECT_EQ(stats.largest, 5);
  EXPECT_EQ(stats.batches, 5u);  // 1, 2, 3, 4, 5
  EXPECT_EQ(stats.inputs, 1u + 2u + 3u + 4u + 5u);
  ASSERT_TRUE(batched->warm_batches(64).ok());  // never beyond the cap
  EXPECT_EQ(batched->batch_stats().largest, 8);

  auto single = load(kModels / "test-bright.pt", 1);
  ASSERT_TRUE(single->warm_batches(8).ok());
  EXPECT_EQ(single->batch_stats().batches, 0u);
}

// Note [A batch must pay for itself]: a model limited to batch 1 by calibration runs each pass on
// its caller's thread, side by side, not one at a time through its batcher.
TEST(TorchBatchingTest, AModelLimitedToOneRunsItsPassesOnTheCallersThreads) {
  auto model = load(kModels / "test-bright.pt", 8);
  ASSERT_EQ(model->max_batch(), 8);
  model->limit_batch(1);
  ASSERT_EQ(model->max_batch(), 1);
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < 5; ++r) {
        if (!model->segment(red_block(64, 64, t * 5 + r)).ok()) ++failed;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(model->batch_stats().batches, 0u) << "no pass went through the batcher";
}

// Note [Dear first calls on a new thread]: a model told to keep its passes on its own thread runs
// them there, one at a time, whether its batcher was limited to 1 or it never had one; warming
// runs its batch of one there too. The masks are what the callers' own passes give.
TEST(TorchBatchingTest, AModelOnItsOwnThreadRunsEveryPassThereOneAtATime) {
  auto reference = load(kModels / "test-bright.pt", 1);
  auto limited = load(kModels / "test-bright.pt", 8);
  limited->limit_batch(1);
  auto never_batched = load(kModels / "test-bright.pt", 1);
  ASSERT_TRUE(reference && limited && never_batched);
  for (MaskModel* model : {limited.get(), never_batched.get()}) {
    EXPECT_FALSE(model->passes_on_own_thread());
    model->run_passes_on_own_thread();
    EXPECT_TRUE(model->passes_on_own_thread());
    EXPECT_EQ(model->max_batch(), 1);
    ASSERT_TRUE(model->warm_batches(4).ok());
    EXPECT_EQ(model->batch_stats().batches, 1u);  // a batch of one, on its thread
    EXPECT_EQ(wrong_masks_at_once(*model, *reference, 3, 4, 64, 48, 0), 0);
    const BatchStats stats = model->batch_stats();
    EXPECT_EQ(stats.batches, 13u) << "every pass went through its own thread";
    EXPECT_EQ(stats.largest, 1);
  }
}

// Note [Flat batches run padded]: a padded model runs every batch at its limit, filled with copies
// of its first input, and each caller still gets the mask its own image gives; warming it is one
// pass.
TEST(TorchBatchingTest, APaddedModelGivesEachCallerItsOwnMask) {
  auto reference = load(kModels / "test-bright.pt", 1);
  auto padded = load(kModels / "test-bright.pt", 4);
  ASSERT_TRUE(reference && padded);
  ASSERT_EQ(padded->max_batch(), 4);
  EXPECT_FALSE(padded->pads_batches());
  padded->pad_batches();
  EXPECT_TRUE(padded->pads_batches());
  ASSERT_TRUE(padded->warm_batches(4).ok());
  EXPECT_EQ(padded->batch_stats().batches, 1u);  // one shape, one pass
  EXPECT_EQ(wrong_masks_at_once(*padded, *reference, 3, 5, 72, 56, 3), 0);
  const BatchStats stats = padded->batch_stats();
  EXPECT_EQ(stats.inputs, 1u + 15u) << "the padding is not counted as inputs";
  EXPECT_LE(stats.largest, 4);

  auto unbatched = load(kModels / "test-bright.pt", 1);
  unbatched->pad_batches();  // no batcher: nothing to pad
  EXPECT_FALSE(unbatched->pads_batches());
}

TEST(TorchBatchingTest, ModelsWhoseOutputsIgnoreTheBatchRunUnbatched) {
  // These return fixed [1,...] tensors whatever the input: batch 2 cannot give two results.
  for (const char* name : {"test-disc", "test-yolo", "test-detector"}) {
    auto model = load(kModels / (std::string(name) + ".pt"), 8);
    ASSERT_TRUE(model) << name;
    EXPECT_EQ(model->max_batch(), 1) << name;
    ASSERT_TRUE(model->segment(red_block(64, 64, 1)).ok()) << name;
    EXPECT_EQ(model->batch_stats().batches, 0u) << name;
  }
  // A per-pixel network batches (the people model's kind).
  auto person = load(kModels / "test-person-prob.pt", 4);
  ASSERT_TRUE(person);
  EXPECT_EQ(person->max_batch(), 4);
}

TEST(TorchBatchingTest, TheManifestCanTurnBatchingOff) {
  const fs::path dir =
      fs::temp_directory_path() / ("segmentor-batchable-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(kModels / "test-bright.pt", dir / "test-bright.pt",
                fs::copy_options::overwrite_existing);
  std::ifstream in(kModels / "test-bright.json");
  std::stringstream text;
  text << in.rdbuf();
  std::string json = text.str();
  const auto brace = json.find('{');
  ASSERT_NE(brace, std::string::npos);
  json.insert(brace + 1, "\"batchable\": false, ");
  std::ofstream(dir / "test-bright.json") << json;
  auto model = load(dir / "test-bright.pt", 8);
  ASSERT_TRUE(model);
  EXPECT_EQ(model->max_batch(), 1);
  fs::remove_all(dir);
}

TEST(TorchBatchingTest, LimitAndProbe) {
  auto model = load(kModels / "test-bright.pt", 8);
  ASSERT_TRUE(model);
  EXPECT_TRUE(model->probe_batch(1).ok());
  EXPECT_TRUE(model->probe_batch(5).ok());
  EXPECT_EQ(model->probe_batch(0).code(), ErrorCode::kInvalidArgument);
  model->limit_batch(3);
  EXPECT_EQ(model->max_batch(), 3);
  model->limit_batch(6);  // never raises
  EXPECT_EQ(model->max_batch(), 3);
}

}  // namespace
}  // namespace segmentor
