// Note [One upload per task] (models/image_tensor.h): inside a task's scope the models of the task
// share one upload of its frame; outside, or for another frame, each call uploads its own.
#include <gtest/gtest.h>

#include <vector>

#include "common/task_scope.h"
#include "models/image_tensor.h"
#include "models/manifest.h"

namespace segmentor {
namespace {

RgbImage frame(int width, int height, std::uint8_t value) {
  return {width, height,
          std::vector<std::uint8_t>(static_cast<std::size_t>(width) * height * 3, value)};
}

ModelManifest manifest(int size) {
  ModelManifest m;
  m.name = "shared-upload";
  m.input_width = size;
  m.input_height = size;
  return m;
}

at::Tensor input(const RgbImage& image, int size) {
  return make_input(image, manifest(size), stretch_geometry(size, size), c10::Device(c10::kCPU),
                    at::kFloat);
}

TEST(SharedUploadTest, TheModelsOfOneTaskShareTheUploadOfItsFrame) {
  const RgbImage a = frame(40, 30, 10);
  const RgbImage b = frame(40, 30, 200);
  std::uint64_t before = image_uploads();
  at::Tensor a32, a16, b32;
  {
    TaskScope task;
    a32 = input(a, 32);
    a16 = input(a, 16);  // another model, another input size: the same upload
    EXPECT_EQ(image_uploads() - before, 1u);
    b32 = input(b, 32);  // another frame uploads its own
    EXPECT_EQ(image_uploads() - before, 2u);
  }
  // The shared upload changes nothing in the inputs.
  EXPECT_TRUE(at::equal(a32, input(a, 32)));
  EXPECT_TRUE(at::equal(a16, input(a, 16)));
  EXPECT_TRUE(at::equal(b32, input(b, 32)));
  EXPECT_FALSE(at::equal(a32, b32));

  before = image_uploads();
  (void)input(a, 32);  // no task in scope: every call uploads
  (void)input(a, 32);
  EXPECT_EQ(image_uploads() - before, 2u);
  {
    TaskScope next;  // a later task, the same frame object: its own upload
    (void)input(a, 32);
  }
  EXPECT_EQ(image_uploads() - before, 3u);
}

}  // namespace
}  // namespace segmentor
