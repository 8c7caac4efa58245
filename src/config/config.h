// The worker's configuration: every knob, its environment name and its default, in one struct.
// Only this module reads the environment; everything else receives the parsed values.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace segmentor {

struct Config {
  // --- models (CONTRACT §7) ---
  std::string foreground_model = "isnet-medium";     // FOREGROUND_SEG_MODEL_NAME (name or path)
  std::string people_model = "mediapipe-selfie";     // PEOPLE_SEG_MODEL_NAME (name or path)
  std::filesystem::path model_cache = "models/cache";  // MODEL_CACHE
  bool use_fp16 = true;                              // USE_FP16 (CUDA only)
  std::string device = "auto";                       // DEVICE: auto | cpu | cuda | cuda:N
  int cpu_threads = 0;                               // CPU_THREADS: 0 = every core
  std::string hf_token;                              // HF_TOKEN (secret; only the export tool uses it)

  // --- memory management (DESIGN § Memory management) ---
  int max_concurrent_images = 4;        // MAX_CONCURRENT_IMAGES: the gate's upper bound
  int min_concurrent_images = 1;        // MIN_CONCURRENT_IMAGES
  double gpu_memory_threshold = 0.85;   // GPU_MEMORY_THRESHOLD, in (0, 1]
  std::int64_t gpu_memory_limit_mb = 0; // GPU_MEMORY_LIMIT_MB: 0 = the whole card
  bool retry_on_oom = true;             // RETRY_ON_OOM
  int max_oom_retries = 3;              // MAX_OOM_RETRIES
  int gpu_cleanup_every_n = 0;          // GPU_CLEANUP_EVERY_N: 0 = only when it pays
  int model_idle_unload_seconds = 0;    // MODEL_IDLE_UNLOAD_SECONDS: 0 = never
  double inject_oom_rate = 0.0;         // SEGMENTOR_INJECT_OOM_RATE: test-only fault injection

  // --- images ---
  std::int64_t max_image_pixels = 100'000'000;  // MAX_IMAGE_PIXELS: decompression-bomb guard
  double mask_quality = 0.8;                    // MASK_QUALITY: accepted for compatibility, unused

  // --- paths (CONTRACT §4) ---
  std::filesystem::path data_root = "/app/data";             // DATA_ROOT_CONTAINER
  std::string foreground_mask_rel_path = "masks_foreground"; // FOREGROUND_MASK_REL_PATH
  std::string people_mask_rel_path = "masks_people";         // PEOPLE_MASK_REL_PATH
  std::string product_mask_rel_path = "masks_product";       // PRODUCT_MASK_REL_PATH
  std::vector<std::filesystem::path> input_roots;            // INPUT_ROOTS (':'-separated);
                                                             // empty = {data_root}

  // --- pipeline worker (CONTRACT §1, §5, §6) ---
  std::string bus_broker = "amqp://guest:guest@localhost:5672/";  // BUS_BROKER
  std::string postgres_dsn;            // POSTGRES_DSN; empty = built from POSTGRES_*
  std::string postgres_user = "postgres";                   // POSTGRES_USER
  std::string postgres_password = "dev";                    // POSTGRES_PASSWORD (secret)
  std::string postgres_host = "postgres";                   // POSTGRES_HOST
  int postgres_port = 5432;                                 // POSTGRES_PORT
  std::string postgres_db = "product_video_matching";       // POSTGRES_DB
  int max_concurrent_batches = 2;          // MAX_CONCURRENT_BATCHES: per-asset prefetch
  int batch_timeout_seconds = 1800;        // BATCH_TIMEOUT_SECONDS
  double completion_threshold_percentage = 90.0;  // COMPLETION_THRESHOLD_PERCENTAGE
  int metrics_port = 8080;                 // METRICS_PORT: 0 = no HTTP endpoint
  int shutdown_grace_seconds = 30;         // SHUTDOWN_GRACE_SECONDS

  // --- logging ---
  std::string log_level = "INFO";   // LOG_LEVEL: DEBUG | INFO | WARNING | ERROR
  std::string log_format = "json";  // LOG_FORMAT: json | text

  // The libpq connection string: postgres_dsn, or one built from the POSTGRES_* parts.
  std::string effective_postgres_dsn() const;
  // input_roots, or {data_root} when none were configured.
  std::vector<std::filesystem::path> effective_input_roots() const;
};

// Name -> value, as read from the process environment and a .env file.
using Environment = std::map<std::string, std::string>;

// The process environment, then `dotenv_path` (if it exists) for names the environment lacks.
// A .env file that exists but cannot be parsed is an error naming the file and line.
Result<Environment> read_environment(char** environ_block,
                                     const std::filesystem::path& dotenv_path = ".env");

// Parses every known variable strictly: a bad boolean, number or range is an error that names the
// variable and the value. Unknown variables are ignored (the environment holds many).
Result<Config> parse_config(const Environment& env);

// "NAME=value" lines for every setting, secrets (passwords, tokens, DSN passwords) masked.
std::string describe_config(const Config& config);

}  // namespace segmentor
