#include "models/mask_model.h"

namespace segmentor {

std::string describe(const LoadChecks& checks) {
  std::string text = !checks.frozen     ? "not frozen"
                     : checks.optimized ? "frozen, optimised"
                                        : "frozen, not optimised";
  if (!checks.batches.has_value()) return text + ", batches unchecked";
  return text + (*checks.batches ? ", batches" : ", does not batch");
}

}  // namespace segmentor
