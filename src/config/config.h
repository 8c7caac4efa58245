// The worker's configuration: every knob, its environment name and its default, in one struct.
// Only this module reads the environment; everything else receives the parsed values.
// docs/configuration.md documents every variable; tests/config/docs_sync_test.cpp keeps the two
// in step, so a variable added here must be added to the table there (and to .env.example).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace segmentor {

// A plain value type: copyable, thread-compatible. parse_config() is the only sanctioned way to
// fill it from the environment; code that builds one by hand gets the defaults below.
struct Config {
  // --- models (CONTRACT §7) ---
  std::string foreground_model = "isnet-medium";       // FOREGROUND_SEG_MODEL_NAME (name or path)
  std::string people_model = "mediapipe-selfie";       // PEOPLE_SEG_MODEL_NAME (name or path)
  std::string people_detector_model = "nanodet-g";     // PEOPLE_DETECTOR_MODEL_NAME; none = off
  double person_min_score = 0.5;                       // PERSON_MIN_SCORE, in [0, 1]
  std::filesystem::path model_cache = "models/cache";  // MODEL_CACHE
  bool use_fp16 = true;                                // USE_FP16 (CUDA only)
  std::string device = "auto";                         // DEVICE: auto | cpu | cuda | cuda:N
  int cpu_threads = 0;                                 // CPU_THREADS: 0 = every core
  std::string hf_token;  // HF_TOKEN (secret; only the export tool uses it)

  // --- memory management (DESIGN § Memory management) ---
  int max_concurrent_images = 4;         // MAX_CONCURRENT_IMAGES: the gate's upper bound
  int min_concurrent_images = 1;         // MIN_CONCURRENT_IMAGES
  double gpu_memory_threshold = 0.85;    // GPU_MEMORY_THRESHOLD, in (0, 1]
  std::int64_t gpu_memory_limit_mb = 0;  // GPU_MEMORY_LIMIT_MB: 0 = the whole card
  bool retry_on_oom = true;              // RETRY_ON_OOM
  int max_oom_retries = 3;               // MAX_OOM_RETRIES: >= 0
  int gpu_cleanup_every_n = 0;           // GPU_CLEANUP_EVERY_N: 0 = only when it pays
  int model_idle_unload_seconds = 0;     // MODEL_IDLE_UNLOAD_SECONDS: 0 = never
  // MAX_MODEL_BATCH: most tasks' inputs one forward pass of a GPU model takes; 1 = unbatched
  // (Note [Batching admitted tasks] in models/forward_batcher.h)
  int max_model_batch = 8;
  std::string cuda_streams = "worker";   // CUDA_STREAMS: pool | worker | default (Note [One stream
                                         // per call] in models/torch_mask_model.cpp)
  // CONCURRENCY_TUNING: throughput | off (Note [Tuning concurrency by throughput] in
  // memory/concurrency_tuner.h)
  std::string concurrency_tuning = "off";
  double inject_oom_rate = 0.0;  // SEGMENTOR_INJECT_OOM_RATE: test-only fault injection, [0, 1]
  // CALIBRATION_CACHE: where calibration tables are kept (Note [Calibration on disk] in
  // memory/calibration_cache.h); empty = MODEL_CACHE/calibration, "none" = measure every start.
  std::string calibration_cache;

  // --- images ---
  std::int64_t max_image_pixels = 100'000'000;  // MAX_IMAGE_PIXELS: decompression-bomb guard
  double mask_quality = 0.8;                    // MASK_QUALITY: accepted for compatibility, unused

  // --- paths (CONTRACT §4) ---
  // The *_rel_path values are relative, free of "..", without a leading "./" or trailing "/".
  std::filesystem::path data_root = "/app/data";              // DATA_ROOT_CONTAINER (absolute)
  std::string foreground_mask_rel_path = "masks_foreground";  // FOREGROUND_MASK_REL_PATH
  std::string people_mask_rel_path = "masks_people";          // PEOPLE_MASK_REL_PATH
  std::string product_mask_rel_path = "masks_product";        // PRODUCT_MASK_REL_PATH
  std::vector<std::filesystem::path> input_roots;             // INPUT_ROOTS (':'-separated,
                                                              // absolute); empty = {data_root}

  // --- pipeline worker (CONTRACT §1, §5, §6) ---
  std::string bus_broker = "amqp://guest:guest@localhost:5672/";  // BUS_BROKER
  std::string postgres_dsn;                // POSTGRES_DSN; empty = built from POSTGRES_*
  std::string postgres_user = "postgres";  // POSTGRES_USER
  std::string postgres_password = "dev";   // POSTGRES_PASSWORD (secret)
  std::string postgres_host = "postgres";  // POSTGRES_HOST
  int postgres_port = 5432;                // POSTGRES_PORT
  std::string postgres_db = "product_video_matching";  // POSTGRES_DB
  int max_concurrent_batches = 2;    // MAX_CONCURRENT_BATCHES: per-asset prefetch, >= 1
  int batch_timeout_seconds = 1800;  // BATCH_TIMEOUT_SECONDS: >= 1
  double completion_threshold_percentage = 90.0;  // COMPLETION_THRESHOLD_PERCENTAGE
  int metrics_port = 8080;                        // METRICS_PORT: 0 = no HTTP endpoint
  int shutdown_grace_seconds = 30;                // SHUTDOWN_GRACE_SECONDS

  // --- logging ---
  // parse_config() normalises these: log_level is one of DEBUG, INFO, WARNING, ERROR, CRITICAL
  // (WARN is read as WARNING), log_format is lower case.
  std::string log_level = "INFO";   // LOG_LEVEL: DEBUG | INFO | WARNING | ERROR | CRITICAL
  std::string log_format = "json";  // LOG_FORMAT: json | text

  // The libpq connection string: postgres_dsn, or one built from the POSTGRES_* parts.
  [[nodiscard]] std::string effective_postgres_dsn() const;
  // input_roots, or {data_root} when none were configured.
  [[nodiscard]] std::vector<std::filesystem::path> effective_input_roots() const;

  bool operator==(const Config&) const = default;
};

// Name -> value, as read from the process environment and a .env file.
using Environment = std::map<std::string, std::string>;

// The process environment, then `dotenv_path` (if it exists) for names the environment lacks.
// A .env file that exists but cannot be parsed is an error naming the file and line.
// `environ_block` is a null-terminated "NAME=VALUE" array (POSIX `environ`); nullptr means none.
Result<Environment> read_environment(char** environ_block,
                                     const std::filesystem::path& dotenv_path = ".env");

// Parses the text of a .env file (syntax in docs/configuration.md). `source_name` only labels
// errors: "<source_name>:<line>: <problem>". Error messages never repeat a value, which may be a
// secret. Within one file a later assignment to the same name wins.
Result<Environment> parse_dotenv(std::string_view text, std::string_view source_name);

// Parses every known variable strictly: a bad boolean, number or range is an error that names the
// variable and the value. Unknown variables are ignored (the environment holds many). Every bad
// variable is reported, one per line, in a single kInvalidArgument Status; secret values are
// masked in those lines too.
Result<Config> parse_config(const Environment& env);

// "NAME=value" lines for every setting, secrets (passwords, tokens, DSN passwords) masked.
// Order and names follow known_variable_names(); `segmentor config` prints exactly this. Apart
// from the masked secrets, parse_config() of this output gives back an equal Config.
std::string describe_config(const Config& config);

// Every variable parse_config() reads and describe_config() prints, in describe order.
std::span<const std::string_view> known_variable_names();

// `url` with the password of its user-info ("amqp://user:***@host/") and any password=...
// parameter (URI query or libpq "key=value" form) replaced by "***". For logging URLs and DSNs.
std::string mask_url_password(std::string_view url);

}  // namespace segmentor
