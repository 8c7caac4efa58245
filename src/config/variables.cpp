// The variable table: see Note [One table per variable] in variables.h.
#include "config/variables.h"

#include <cstdint>
#include <limits>
#include <utility>

#include "config/value_parsers.h"

namespace segmentor::config_internal {
namespace {

constexpr std::int64_t kIntMax = std::numeric_limits<int>::max();
constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();
// AMQP basic.qos prefetch-count is a 16-bit field.
constexpr std::int64_t kMaxPrefetch = 65535;
constexpr std::int64_t kMaxPort = 65535;

template <typename T, typename Field>
Status assign(Result<T> parsed, Field& field) {
  if (!parsed.ok()) return parsed.status();
  field = std::move(parsed).value();
  return Status::Ok();
}

Status assign_int(std::string_view text, int& field, std::int64_t min, std::int64_t max = kIntMax) {
  auto parsed = parse_integer(text, min, max);
  if (!parsed.ok()) return parsed.status();
  field = static_cast<int>(*parsed);
  return Status::Ok();
}

// A number that must satisfy `in_range`; `range_text` says what the range is.
Status assign_number(std::string_view text, double& field, bool (*in_range)(double),
                     std::string_view range_text) {
  auto parsed = parse_number(text);
  if (!parsed.ok()) return parsed.status();
  if (in_range != nullptr && !in_range(*parsed)) {
    return invalid_argument("is out of range (must be " + std::string(range_text) + ")");
  }
  field = *parsed;
  return Status::Ok();
}

std::string bool_text(bool value) { return value ? "true" : "false"; }

std::string join_paths(const std::vector<std::filesystem::path>& paths) {
  std::string out;
  for (const auto& path : paths) {
    if (!out.empty()) out += ':';
    out += path.string();
  }
  return out;
}

using D = Display;

// Grouped and ordered as the fields of Config; describe_config() prints in this order.
constexpr VariableSpec kVariables[] = {
    // --- models ---
    {"FOREGROUND_SEG_MODEL_NAME", D::kPlain,
     [](std::string_view v, Config& c) {
       return assign(parse_required_string(v), c.foreground_model);
     },
     [](const Config& c) { return c.foreground_model; }},
    {"PEOPLE_SEG_MODEL_NAME", D::kPlain,
     [](std::string_view v, Config& c) { return assign(parse_required_string(v), c.people_model); },
     [](const Config& c) { return c.people_model; }},
    {"PEOPLE_DETECTOR_MODEL_NAME", D::kPlain,
     [](std::string_view v, Config& c) {
       return assign(parse_required_string(v), c.people_detector_model);
     },
     [](const Config& c) { return c.people_detector_model; }},
    {"PERSON_MIN_SCORE", D::kPlain,
     [](std::string_view v, Config& c) {
       return assign_number(
           v, c.person_min_score, [](double x) { return x >= 0.0 && x <= 1.0; }, "between 0 and 1");
     },
     [](const Config& c) { return format_number(c.person_min_score); }},
    {"MODEL_CACHE", D::kPlain,
     [](std::string_view v, Config& c) { return assign(parse_required_string(v), c.model_cache); },
     [](const Config& c) { return c.model_cache.string(); }},
    {"USE_FP16", D::kPlain,
     [](std::string_view v, Config& c) { return assign(parse_bool(v), c.use_fp16); },
     [](const Config& c) { return bool_text(c.use_fp16); }},
    {"DEVICE", D::kPlain,
     [](std::string_view v, Config& c) { return assign(parse_device(v), c.device); },
     [](const Config& c) { return c.device; }},
    {"CPU_THREADS", D::kPlain,
     [](std::string_view v, Config& c) { return assign_int(v, c.cpu_threads, 0); },
     [](const Config& c) { return std::to_string(c.cpu_threads); }},
    {"HF_TOKEN", D::kSecret,
     [](std::string_view v, Config& c) {
       c.hf_token = std::string(trim(v));
       return Status::Ok();
     },
     [](const Config& c) { return c.hf_token; }},

    // --- memory management ---
    {"MAX_CONCURRENT_IMAGES", D::kPlain,
     // Bounded so that lanes × MAX_CONCURRENT_IMAGES (worker threads, tasks in the engine) can
     // never overflow an int.
     [](std::string_view v, Config& c) { return assign_int(v, c.max_concurrent_images, 1, 1024); },
     [](const Config& c) { return std::to_string(c.max_concurrent_images); }},
    {"MIN_CONCURRENT_IMAGES", D::kPlain,
     [](std::string_view v, Config& c) { return assign_int(v, c.min_concurrent_images, 1); },
     [](const Config& c) { return std::to_string(c.min_concurrent_images); }},
    {"GPU_MEMORY_THRESHOLD", D::kPlain,
     [](std::string_view v, Config& c) {
       return assign_number(
           v, c.gpu_memory_threshold, [](double x) { return x > 0.0 && x <= 1.0; },
           "greater than 0 and at most 1");
     },
     [](const Config& c) { return format_number(c.gpu_memory_threshold); }},
    {"GPU_MEMORY_LIMIT_MB", D::kPlain,
     [](std::string_view v, Config& c) {
       // ≤ 2^24 MiB (16 TiB): × 2^20 bytes stays far inside int64.
       return assign(parse_integer(v, 0, std::int64_t{1} << 24), c.gpu_memory_limit_mb);
     },
     [](const Config& c) { return std::to_string(c.gpu_memory_limit_mb); }},
    {"RETRY_ON_OOM", D::kPlain,
     [](std::string_view v, Config& c) { return assign(parse_bool(v), c.retry_on_oom); },
     [](const Config& c) { return bool_text(c.retry_on_oom); }},
    {"MAX_OOM_RETRIES", D::kPlain,
     [](std::string_view v, Config& c) { return assign_int(v, c.max_oom_retries, 0); },
     [](const Config& c) { return std::to_string(c.max_oom_retries); }},
    {"GPU_CLEANUP_EVERY_N", D::kPlain,
     [](std::string_view v, Config& c) { return assign_int(v, c.gpu_cleanup_every_n, 0); },
     [](const Config& c) { return std::to_string(c.gpu_cleanup_every_n); }},
    {"MODEL_IDLE_UNLOAD_SECONDS", D::kPlain,
     [](std::string_view v, Config& c) { return assign_int(v, c.model_idle_unload_seconds, 0); },
     [](const Config& c) { return std::to_string(c.model_idle_unload_seconds); }},
    {"MAX_MODEL_BATCH", D::kPlain,
     [](std::string_view v, Config& c) { return assign_int(v, c.max_model_batch, 1, 64); },
     [](const Config& c) { return std::to_string(c.max_model_batch); }},
    {"CUDA_STREAMS", D::kPlain,
     [](std::string_view v, Config& c) { return assign(parse_cuda_streams(v), c.cuda_streams); },
     [](const Config& c) { return c.cuda_streams; }},
    {"CONCURRENCY_TUNING", D::kPlain,
     [](std::string_view v, Config& c) {
       return assign(parse_concurrency_tuning(v), c.concurrency_tuning);
     },
     [](const Config& c) { return c.concurrency_tuning; }},
    {"CALIBRATION_CACHE", D::kPlain,
     [](std::string_view v, Config& c) {
       c.calibration_cache = std::string(trim(v));
       return Status::Ok();
     },
     [](const Config& c) { return c.calibration_cache; }},
    {"SEGMENTOR_INJECT_OOM_RATE", D::kPlain,
     [](std::string_view v, Config& c) {
       return assign_number(
           v, c.inject_oom_rate, [](double x) { return x >= 0.0 && x <= 1.0; }, "between 0 and 1");
     },
     [](const Config& c) { return format_number(c.inject_oom_rate); }},

    // --- images ---
    {"MAX_IMAGE_PIXELS", D::kPlain,
     [](std::string_view v, Config& c) {
       return assign(parse_integer(v, 1, kInt64Max), c.max_image_pixels);
     },
     [](const Config& c) { return std::to_string(c.max_image_pixels); }},
    {"MASK_QUALITY", D::kPlain,
     // Unused; any finite number is accepted so that old deployments keep starting.
     [](std::string_view v, Config& c) { return assign_number(v, c.mask_quality, nullptr, ""); },
     [](const Config& c) { return format_number(c.mask_quality); }},

    // --- paths ---
    {"DATA_ROOT_CONTAINER", D::kPlain,
     [](std::string_view v, Config& c) { return assign(parse_absolute_path(v), c.data_root); },
     [](const Config& c) { return c.data_root.string(); }},
    {"FOREGROUND_MASK_REL_PATH", D::kPlain,
     [](std::string_view v, Config& c) {
       return assign(parse_relative_path(v), c.foreground_mask_rel_path);
     },
     [](const Config& c) { return c.foreground_mask_rel_path; }},
    {"PEOPLE_MASK_REL_PATH", D::kPlain,
     [](std::string_view v, Config& c) {
       return assign(parse_relative_path(v), c.people_mask_rel_path);
     },
     [](const Config& c) { return c.people_mask_rel_path; }},
    {"PRODUCT_MASK_REL_PATH", D::kPlain,
     [](std::string_view v, Config& c) {
       return assign(parse_relative_path(v), c.product_mask_rel_path);
     },
     [](const Config& c) { return c.product_mask_rel_path; }},
    {"INPUT_ROOTS", D::kPlain,
     [](std::string_view v, Config& c) { return assign(parse_path_list(v), c.input_roots); },
     [](const Config& c) { return join_paths(c.input_roots); }},

    // --- pipeline worker ---
    {"BUS_BROKER", D::kUrl,
     [](std::string_view v, Config& c) { return assign(parse_amqp_url(v), c.bus_broker); },
     [](const Config& c) { return c.bus_broker; }},
    {"POSTGRES_DSN", D::kUrl,
     [](std::string_view v, Config& c) {
       c.postgres_dsn = std::string(trim(v));
       return Status::Ok();
     },
     [](const Config& c) { return c.postgres_dsn; }},
    {"POSTGRES_USER", D::kPlain,
     [](std::string_view v, Config& c) {
       return assign(parse_required_string(v), c.postgres_user);
     },
     [](const Config& c) { return c.postgres_user; }},
    {"POSTGRES_PASSWORD", D::kSecret,
     // Verbatim: blanks can be part of a password, and trust authentication needs none.
     [](std::string_view v, Config& c) {
       c.postgres_password = std::string(v);
       return Status::Ok();
     },
     [](const Config& c) { return c.postgres_password; }},
    {"POSTGRES_HOST", D::kPlain,
     [](std::string_view v, Config& c) {
       return assign(parse_required_string(v), c.postgres_host);
     },
     [](const Config& c) { return c.postgres_host; }},
    {"POSTGRES_PORT", D::kPlain,
     [](std::string_view v, Config& c) { return assign_int(v, c.postgres_port, 1, kMaxPort); },
     [](const Config& c) { return std::to_string(c.postgres_port); }},
    {"POSTGRES_DB", D::kPlain,
     [](std::string_view v, Config& c) { return assign(parse_required_string(v), c.postgres_db); },
     [](const Config& c) { return c.postgres_db; }},
    {"MAX_CONCURRENT_BATCHES", D::kPlain,
     [](std::string_view v, Config& c) {
       return assign_int(v, c.max_concurrent_batches, 1, kMaxPrefetch);
     },
     [](const Config& c) { return std::to_string(c.max_concurrent_batches); }},
    {"BATCH_TIMEOUT_SECONDS", D::kPlain,
     [](std::string_view v, Config& c) { return assign_int(v, c.batch_timeout_seconds, 1); },
     [](const Config& c) { return std::to_string(c.batch_timeout_seconds); }},
    {"COMPLETION_THRESHOLD_PERCENTAGE", D::kPlain,
     [](std::string_view v, Config& c) {
       return assign_number(
           v, c.completion_threshold_percentage, [](double x) { return x >= 0.0 && x <= 100.0; },
           "between 0 and 100");
     },
     [](const Config& c) { return format_number(c.completion_threshold_percentage); }},
    {"METRICS_PORT", D::kPlain,
     [](std::string_view v, Config& c) { return assign_int(v, c.metrics_port, 0, kMaxPort); },
     [](const Config& c) { return std::to_string(c.metrics_port); }},
    {"SHUTDOWN_GRACE_SECONDS", D::kPlain,
     [](std::string_view v, Config& c) { return assign_int(v, c.shutdown_grace_seconds, 0); },
     [](const Config& c) { return std::to_string(c.shutdown_grace_seconds); }},

    // --- logging ---
    {"LOG_LEVEL", D::kPlain,
     [](std::string_view v, Config& c) { return assign(parse_log_level(v), c.log_level); },
     [](const Config& c) { return c.log_level; }},
    {"LOG_FORMAT", D::kPlain,
     [](std::string_view v, Config& c) { return assign(parse_log_format(v), c.log_format); },
     [](const Config& c) { return c.log_format; }},
};

}  // namespace

std::span<const VariableSpec> variable_specs() { return kVariables; }

std::string display_value(Display display, std::string_view value) {
  switch (display) {
    case Display::kPlain:
      return std::string(value);
    case Display::kSecret:
      return value.empty() ? std::string() : std::string("***");
    case Display::kUrl:
      return mask_url_password(value);
  }
  return "***";
}

}  // namespace segmentor::config_internal
