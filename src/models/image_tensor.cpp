#include "models/image_tensor.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/task_scope.h"

namespace segmentor {

LetterboxGeometry stretch_geometry(int input_width, int input_height) {
  LetterboxGeometry g;
  g.input_width = g.resized_width = input_width;
  g.input_height = g.resized_height = input_height;
  return g;
}

LetterboxGeometry letterbox_geometry(int source_width, int source_height, int input_width,
                                     int input_height) {
  LetterboxGeometry g;
  g.input_width = input_width;
  g.input_height = input_height;
  g.scale = std::min(static_cast<double>(input_width) / source_width,
                     static_cast<double>(input_height) / source_height);
  g.resized_width = std::clamp(static_cast<int>(std::lround(source_width * g.scale)), 1,
                               input_width);
  g.resized_height = std::clamp(static_cast<int>(std::lround(source_height * g.scale)), 1,
                                input_height);
  g.pad_x = (input_width - g.resized_width) / 2;
  g.pad_y = (input_height - g.resized_height) / 2;
  return g;
}

LetterboxGeometry geometry_for(const ModelManifest& manifest, int source_width,
                               int source_height) {
  if (manifest.resize == ResizeMode::kLetterbox) {
    return letterbox_geometry(source_width, source_height, manifest.input_width,
                              manifest.input_height);
  }
  return stretch_geometry(manifest.input_width, manifest.input_height);
}

namespace {

std::atomic<std::uint64_t> uploads{0};

// Note [One upload per task]: this thread's upload for the task in scope.
struct SharedUpload {
  std::uint64_t task = 0;
  const std::uint8_t* data = nullptr;
  int width = 0;
  int height = 0;
  c10::Device device{c10::kCPU};
  at::Tensor pixels;  // [1,h,w,3] uint8 on `device`
};

SharedUpload& shared_upload() {
  thread_local SharedUpload upload;
  return upload;
}

at::Tensor upload(const RgbImage& image, const c10::Device& device) {
  // from_blob does not copy and never writes here: every step after it makes a new tensor.
  auto* data = const_cast<std::uint8_t*>(image.pixels.data());
  uploads.fetch_add(1, std::memory_order_relaxed);
  return at::from_blob(data, {1, image.height, image.width, 3}, at::kByte).to(device);
}

at::Tensor upload_once_per_task(const RgbImage& image, const c10::Device& device) {
  const std::uint64_t task = TaskScope::current();
  if (task == 0) return upload(image, device);
  SharedUpload& shared = shared_upload();
  if (shared.task == task && shared.data == image.pixels.data() && shared.width == image.width &&
      shared.height == image.height && shared.device == device) {
    return shared.pixels;
  }
  const bool first_of_task = shared.task != task;
  shared = SharedUpload{task, image.pixels.data(), image.width, image.height, device,
                        upload(image, device)};
  if (first_of_task) TaskScope::at_exit([] { shared_upload() = SharedUpload{}; });
  return shared.pixels;
}

}  // namespace

std::uint64_t image_uploads() { return uploads.load(std::memory_order_relaxed); }

at::Tensor make_input(const RgbImage& image, const ModelManifest& manifest,
                      const LetterboxGeometry& geometry, const c10::Device& device,
                      at::ScalarType dtype) {
  at::Tensor x = upload_once_per_task(image, device);
  x = x.permute({0, 3, 1, 2}).to(at::kFloat).contiguous();  // [1,3,h,w], byte units

  if (geometry.resized_width != image.width || geometry.resized_height != image.height) {
    const std::vector<std::int64_t> size = {geometry.resized_height, geometry.resized_width};
    x = at::upsample_bilinear2d(x, size, /*align_corners=*/false);
  }
  if (geometry.resized_width != geometry.input_width ||
      geometry.resized_height != geometry.input_height) {
    at::Tensor canvas = at::full({1, 3, geometry.input_height, geometry.input_width},
                                 manifest.letterbox_pad_value, x.options());
    canvas.slice(2, geometry.pad_y, geometry.pad_y + geometry.resized_height)
        .slice(3, geometry.pad_x, geometry.pad_x + geometry.resized_width)
        .copy_(x);
    x = canvas;
  }

  if (manifest.channel_order == ChannelOrder::kBgr) x = x.flip({1});
  const auto options = x.options();
  at::Tensor mean = at::tensor(std::vector<float>(manifest.mean.begin(), manifest.mean.end()),
                               at::TensorOptions().dtype(at::kFloat))
                        .to(options.device())
                        .view({1, 3, 1, 1});
  at::Tensor std_dev =
      at::tensor(std::vector<float>(manifest.std_dev.begin(), manifest.std_dev.end()),
                 at::TensorOptions().dtype(at::kFloat))
          .to(options.device())
          .view({1, 3, 1, 1});
  x = (x * manifest.pixel_scale - mean) / std_dev;

  if (manifest.layout == InputLayout::kNhwc) x = x.permute({0, 2, 3, 1});
  return x.to(dtype).contiguous();
}

namespace {

// Sampling positions along one axis, as (lower index, upper index, weight of upper), for the
// source pixels 0..source_size-1. See resample_to_source in the header for the mapping.
struct AxisSamples {
  at::Tensor lower;
  at::Tensor upper;
  at::Tensor weight;
};

AxisSamples axis_samples(int source_size, int input_size, int resized_size, int pad,
                         std::int64_t map_size, const c10::Device& device) {
  const double map_per_input = static_cast<double>(map_size) / input_size;
  // The unpadded region in map pixels, and the map pixels whose centres lie inside it.
  const double region_begin = pad * map_per_input;
  const double region_end = (pad + resized_size) * map_per_input;
  const auto first = static_cast<std::int64_t>(std::ceil(region_begin - 0.5));
  const auto last = std::max(first, static_cast<std::int64_t>(std::floor(region_end - 0.5)));
  const double step = static_cast<double>(resized_size) / source_size;

  std::vector<std::int64_t> lower(static_cast<std::size_t>(source_size));
  std::vector<std::int64_t> upper(lower.size());
  std::vector<float> weight(lower.size());
  for (int i = 0; i < source_size; ++i) {
    const double input_pos = pad + (i + 0.5) * step;
    double p = input_pos * map_per_input - 0.5;
    p = std::clamp(p, static_cast<double>(first), static_cast<double>(last));
    const auto lo = static_cast<std::int64_t>(std::floor(p));
    const auto index = static_cast<std::size_t>(i);
    lower[index] = lo;
    upper[index] = std::min(lo + 1, last);
    weight[index] = static_cast<float>(p - static_cast<double>(lo));
  }
  auto long_options = at::TensorOptions().dtype(at::kLong);
  auto float_options = at::TensorOptions().dtype(at::kFloat);
  const auto n = static_cast<std::int64_t>(lower.size());
  return {at::from_blob(lower.data(), {n}, long_options).to(device, /*non_blocking=*/false,
                                                            /*copy=*/true),
          at::from_blob(upper.data(), {n}, long_options).to(device, false, true),
          at::from_blob(weight.data(), {n}, float_options).to(device, false, true)};
}

}  // namespace

at::Tensor resample_to_source(const at::Tensor& maps, const LetterboxGeometry& geometry,
                              int source_width, int source_height) {
  at::Tensor m = maps.to(at::kFloat);
  const auto device = m.device();
  const AxisSamples ys = axis_samples(source_height, geometry.input_height,
                                      geometry.resized_height, geometry.pad_y, m.size(2), device);
  const AxisSamples xs = axis_samples(source_width, geometry.input_width, geometry.resized_width,
                                      geometry.pad_x, m.size(3), device);
  // Separable bilinear: rows first, then columns.
  at::Tensor wy = ys.weight.view({1, 1, -1, 1});
  at::Tensor rows = m.index_select(2, ys.lower) * (1 - wy) + m.index_select(2, ys.upper) * wy;
  at::Tensor wx = xs.weight.view({1, 1, 1, -1});
  return rows.index_select(3, xs.lower) * (1 - wx) + rows.index_select(3, xs.upper) * wx;
}

Mask threshold_to_mask(const at::Tensor& probability, double threshold) {
  const auto height = probability.size(-2);
  const auto width = probability.size(-1);
  at::Tensor bytes = (probability.ge(threshold).to(at::kByte) * 255)
                         .reshape({height, width})
                         .to(at::kCPU)
                         .contiguous();
  Mask mask = Mask::zeros(static_cast<int>(width), static_cast<int>(height));
  std::memcpy(mask.values.data(), bytes.data_ptr<std::uint8_t>(), mask.values.size());
  return mask;
}

}  // namespace segmentor
