// Loads the configured foreground and people models for one device.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "config/config.h"
#include "models/mask_model.h"

namespace segmentor {

struct LoadedModels {
  std::unique_ptr<MaskModel> foreground;
  std::unique_ptr<MaskModel> people;  // null when PEOPLE_SEG_MODEL_NAME is "none"
  std::string device;                 // where they run: "cpu", "cuda:0"
  bool any_test_model() const;
};

// `device` overrides config.device when not empty. Errors name the model and say how to fetch it.
Result<LoadedModels> load_models(const Config& config, const std::string& device = "");

}  // namespace segmentor
