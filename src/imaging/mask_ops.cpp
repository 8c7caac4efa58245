#include "imaging/mask_ops.h"

#include <cstddef>
#include <string>

namespace segmentor {
namespace {

bool well_formed(const Mask& mask) {
  return mask.width >= 0 && mask.height >= 0 && mask.values.size() == mask.pixel_count();
}

std::string size_text(const Mask& mask) {
  return std::to_string(mask.width) + "x" + std::to_string(mask.height) + " (" +
         std::to_string(mask.values.size()) + " values)";
}

}  // namespace

Result<Mask> subtract_mask(const Mask& foreground, const Mask& people) {
  if (!well_formed(foreground) || !well_formed(people) || foreground.width != people.width ||
      foreground.height != people.height) {
    return invalid_argument("subtract_mask: foreground is " + size_text(foreground) +
                            ", people mask is " + size_text(people));
  }
  Mask product{foreground.width, foreground.height,
               std::vector<std::uint8_t>(foreground.values.size())};
  const std::uint8_t* fg = foreground.values.data();
  const std::uint8_t* pp = people.values.data();
  std::uint8_t* out = product.values.data();
  const std::size_t n = product.values.size();
  for (std::size_t i = 0; i < n; ++i) {
    // Branch-free so the compiler vectorises it.
    out[i] = static_cast<std::uint8_t>(-static_cast<int>((fg[i] != 0) & (pp[i] == 0)));
  }
  return product;
}

Result<Mask> intersect_mask(const Mask& a, const Mask& b) {
  if (!well_formed(a) || !well_formed(b) || a.width != b.width || a.height != b.height) {
    return invalid_argument("intersect_mask: masks are " + size_text(a) + " and " + size_text(b));
  }
  Mask both{a.width, a.height, std::vector<std::uint8_t>(a.values.size())};
  const std::uint8_t* pa = a.values.data();
  const std::uint8_t* pb = b.values.data();
  std::uint8_t* out = both.values.data();
  const std::size_t n = both.values.size();
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = static_cast<std::uint8_t>(-static_cast<int>((pa[i] != 0) & (pb[i] != 0)));
  }
  return both;
}

double mask_iou(const Mask& a, const Mask& b) {
  if (!well_formed(a) || !well_formed(b) || a.width != b.width || a.height != b.height) {
    return 0.0;
  }
  std::size_t intersection = 0;
  std::size_t union_count = 0;
  const std::size_t n = a.values.size();
  for (std::size_t i = 0; i < n; ++i) {
    const bool in_a = a.values[i] != 0;
    const bool in_b = b.values[i] != 0;
    intersection += static_cast<std::size_t>(in_a && in_b);
    union_count += static_cast<std::size_t>(in_a || in_b);
  }
  if (union_count == 0) return 1.0;
  return static_cast<double>(intersection) / static_cast<double>(union_count);
}

}  // namespace segmentor
