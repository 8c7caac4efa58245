#include "app/model_setup.h"

#include "models/model_loader.h"

namespace segmentor {

bool LoadedModels::any_test_model() const {
  return (foreground && foreground->info().is_test_model) ||
         (people && people->info().is_test_model);
}

Result<LoadedModels> load_models(const Config& config, const std::string& device) {
  ModelOptions options;
  options.device = device.empty() ? config.device : device;
  options.use_fp16 = config.use_fp16;
  options.cpu_threads = config.cpu_threads;
  options.inject_oom_rate = config.inject_oom_rate;

  LoadedModels models;
  SEGMENTOR_ASSIGN_OR_RETURN(auto fg_path, resolve_model(config.foreground_model, config.model_cache));
  SEGMENTOR_ASSIGN_OR_RETURN(models.foreground, load_mask_model(fg_path, options));
  models.device = models.foreground->info().device;
  if (config.people_model != "none") {
    SEGMENTOR_ASSIGN_OR_RETURN(auto people_path,
                               resolve_model(config.people_model, config.model_cache));
    SEGMENTOR_ASSIGN_OR_RETURN(models.people, load_mask_model(people_path, options));
  }
  return models;
}

}  // namespace segmentor
