#include "app/run_command.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <utility>

#include "app/input_files.h"
#include "app/model_setup.h"
#include "app/progress.h"
#include "imaging/decode.h"
#include "pipeline/mask_writer.h"
#include "pipeline/segmenter.h"

namespace segmentor {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct StageTimes {
  double decode = 0;
  double segment = 0;
  double write = 0;
};

// One image, start to finish. Errors carry the file name.
Status process_one(const InputFile& input, const RunOptions& options, const MaskLayout& layout,
                   const DecodeOptions& decode_options, Segmenter& segmenter,
                   StageTimes& times) {
  SEGMENTOR_ASSIGN_OR_RETURN(const MaskPaths paths,
                             mask_paths_for(layout, options.kind, input.id));
  auto t0 = Clock::now();
  SEGMENTOR_ASSIGN_OR_RETURN(const RgbImage image,
                             decode_image_file(input.path, decode_options));
  times.decode += seconds_since(t0);

  t0 = Clock::now();
  auto masks = segmenter.segment(image);
  if (!masks.ok()) return masks.status().with_context(input.path.string());
  times.segment += seconds_since(t0);

  t0 = Clock::now();
  SEGMENTOR_RETURN_IF_ERROR(write_masks(paths, *masks));
  if (options.cutout) {
    const auto cutout = options.out_dir / "cutouts" / (input.id + ".png");
    SEGMENTOR_RETURN_IF_ERROR(write_cutout(cutout, image, masks->product));
  }
  times.write += seconds_since(t0);
  return Status::Ok();
}

void print_summary(std::size_t done, const std::vector<std::pair<std::string, std::string>>& failed,
                   double elapsed, const StageTimes& times, const LoadedModels& models,
                   const RunOptions& options) {
  const std::size_t total = done + failed.size();
  std::printf("done %zu, failed %zu, of %zu image%s in %.2f s", done, failed.size(), total,
              total == 1 ? "" : "s", elapsed);
  if (done > 0) {
    const auto n = static_cast<double>(done);
    std::printf(" (%.3f s/image: decode %.3f, segment %.3f, write %.3f)", elapsed / n,
                times.decode / n, times.segment / n, times.write / n);
  }
  std::printf("\ndevice: %s; foreground model: %s; people model: %s\n", models.device.c_str(),
              models.foreground->info().name.c_str(),
              models.people ? models.people->info().name.c_str() : "none");
  if (models.any_test_model()) {
    std::printf(
        "NOTE: test models in use (toy networks from tools/make_test_models.py): the masks show "
        "that the pipeline works, not real segmentation quality.\n");
  }
  std::printf("masks: %s\n", std::filesystem::absolute(options.out_dir).string().c_str());
  if (!failed.empty()) {
    std::printf("failed:\n");
    for (const auto& [name, reason] : failed) {
      std::printf("  %s: %s\n", name.c_str(), reason.c_str());
    }
  }
}

}  // namespace

int run_images(const RunOptions& options, const Config& config) {
  auto inputs = collect_input_files(options.inputs);
  if (!inputs.ok()) {
    std::fprintf(stderr, "segmentor run: %s\n", inputs.status().message().c_str());
    return 2;
  }
  if (inputs->empty()) {
    std::fprintf(stderr, "segmentor run: no images (.jpg .jpeg .png .webp) found in the inputs\n");
    return 2;
  }
  auto models = load_models(config, options.device);
  if (!models.ok()) {
    std::fprintf(stderr, "segmentor run: %s\n", models.status().to_string().c_str());
    return 2;
  }
  Segmenter segmenter(*models->foreground, models->people.get());
  const MaskLayout layout{options.out_dir, config.foreground_mask_rel_path,
                          config.people_mask_rel_path, config.product_mask_rel_path};
  const DecodeOptions decode_options{config.max_image_pixels};

  const bool interactive = options.progress_bar && isatty(STDERR_FILENO) == 1;
  ProgressReporter progress(stderr, interactive, inputs->size());
  std::vector<std::pair<std::string, std::string>> failed;
  std::size_t done = 0;
  StageTimes times;
  const auto start = Clock::now();
  for (const auto& input : *inputs) {
    const Status status = process_one(input, options, layout, decode_options, segmenter, times);
    if (status.ok()) {
      ++done;
      progress.item_done(input.path.string(), true, "");
    } else {
      failed.emplace_back(input.path.string(), status.to_string());
      progress.item_done(input.path.string(), false, status.to_string());
      spdlog::debug("{}: {}", input.path.string(), status.to_string());
    }
  }
  progress.finish();
  print_summary(done, failed, seconds_since(start), times, *models, options);
  return failed.empty() ? 0 : 1;
}

}  // namespace segmentor
