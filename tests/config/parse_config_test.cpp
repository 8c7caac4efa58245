#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "config/config.h"

namespace segmentor {
namespace {

Config parse_ok(const Environment& env) {
  auto config = parse_config(env);
  EXPECT_TRUE(config.ok()) << config.status().to_string();
  return config.ok() ? *config : Config{};
}

// The error message, or "" when parsing succeeded (which the caller's expectations then fail on).
std::string parse_error(const Environment& env) {
  auto config = parse_config(env);
  EXPECT_FALSE(config.ok());
  if (config.ok()) return "";
  EXPECT_EQ(config.status().code(), ErrorCode::kInvalidArgument);
  return config.status().message();
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(ParseConfig, EmptyEnvironmentGivesTheContractDefaults) {
  const Config config = parse_ok({});
  EXPECT_EQ(config, Config{});
  EXPECT_EQ(config.foreground_model, "isnet-medium");
  EXPECT_EQ(config.max_concurrent_images, 4);
  EXPECT_EQ(config.max_model_batch, 8);
  EXPECT_EQ(config.min_concurrent_images, 1);
  EXPECT_DOUBLE_EQ(config.gpu_memory_threshold, 0.85);
  EXPECT_TRUE(config.retry_on_oom);
  EXPECT_EQ(config.max_oom_retries, 3);
  EXPECT_EQ(config.max_concurrent_batches, 2);
  EXPECT_EQ(config.batch_timeout_seconds, 1800);
  EXPECT_TRUE(config.use_fp16);
  EXPECT_DOUBLE_EQ(config.completion_threshold_percentage, 90.0);
  EXPECT_EQ(config.data_root, std::filesystem::path("/app/data"));
  EXPECT_EQ(config.foreground_mask_rel_path, "masks_foreground");
  EXPECT_EQ(config.people_mask_rel_path, "masks_people");
  EXPECT_EQ(config.product_mask_rel_path, "masks_product");
  EXPECT_EQ(config.bus_broker, "amqp://guest:guest@localhost:5672/");
  EXPECT_EQ(config.postgres_user, "postgres");
  EXPECT_EQ(config.postgres_password, "dev");
  EXPECT_EQ(config.postgres_host, "postgres");
  EXPECT_EQ(config.postgres_port, 5432);
  EXPECT_EQ(config.postgres_db, "product_video_matching");
  EXPECT_EQ(config.log_level, "INFO");
}

TEST(ParseConfig, ReadsEveryType) {
  const Config config = parse_ok({
      {"FOREGROUND_SEG_MODEL_NAME", "/models/fg.pt"},
      {"USE_FP16", "off"},
      {"DEVICE", "cuda:1"},
      {"CPU_THREADS", "8"},
      {"MAX_CONCURRENT_IMAGES", "16"},
      {"MIN_CONCURRENT_IMAGES", "2"},
      {"GPU_MEMORY_THRESHOLD", "0.5"},
      {"GPU_MEMORY_LIMIT_MB", "20480"},
      {"RETRY_ON_OOM", "No"},
      {"MAX_IMAGE_PIXELS", "5000000000"},
      {"DATA_ROOT_CONTAINER", "/srv/data/"},
      {"PRODUCT_MASK_REL_PATH", "./out/product"},
      {"INPUT_ROOTS", "/srv/a:/srv/b"},
      {"POSTGRES_PORT", "6543"},
      {"COMPLETION_THRESHOLD_PERCENTAGE", "99.5"},
      {"LOG_LEVEL", "warn"},
      {"LOG_FORMAT", "TEXT"},
      {"CUDA_STREAMS", "Worker"},
      {"CONCURRENCY_TUNING", "Throughput"},
      {"MAX_MODEL_BATCH", "1"},
  });
  EXPECT_EQ(config.foreground_model, "/models/fg.pt");
  EXPECT_FALSE(config.use_fp16);
  EXPECT_EQ(config.device, "cuda:1");
  EXPECT_EQ(config.cpu_threads, 8);
  EXPECT_EQ(config.max_concurrent_images, 16);
  EXPECT_EQ(config.min_concurrent_images, 2);
  EXPECT_DOUBLE_EQ(config.gpu_memory_threshold, 0.5);
  EXPECT_EQ(config.gpu_memory_limit_mb, 20480);
  EXPECT_FALSE(config.retry_on_oom);
  EXPECT_EQ(config.max_image_pixels, 5'000'000'000);  // needs 64 bits
  EXPECT_EQ(config.data_root, std::filesystem::path("/srv/data"));
  EXPECT_EQ(config.product_mask_rel_path, "out/product");
  EXPECT_EQ(config.input_roots, (std::vector<std::filesystem::path>{"/srv/a", "/srv/b"}));
  EXPECT_EQ(config.postgres_port, 6543);
  EXPECT_DOUBLE_EQ(config.completion_threshold_percentage, 99.5);
  EXPECT_EQ(config.log_level, "WARNING");
  EXPECT_EQ(config.log_format, "text");
  EXPECT_EQ(config.cuda_streams, "worker");
  EXPECT_EQ(config.concurrency_tuning, "throughput");
  EXPECT_EQ(config.max_model_batch, 1);
}

TEST(ParseConfig, BadBooleanNamesVariableAndValue) {
  EXPECT_EQ(parse_error({{"RETRY_ON_OOM", "maybe"}}),
            "RETRY_ON_OOM='maybe' is not a boolean (use true/false, 1/0, yes/no, on/off)");
  // Python read any unknown spelling as false; we refuse it.
  EXPECT_TRUE(contains(parse_error({{"USE_FP16", "enabled"}}), "USE_FP16='enabled'"));
}

TEST(ParseConfig, BadIntegersNameVariableAndValue) {
  EXPECT_EQ(parse_error({{"MAX_OOM_RETRIES", "3x"}}), "MAX_OOM_RETRIES='3x' is not an integer");
  EXPECT_TRUE(contains(parse_error({{"BATCH_TIMEOUT_SECONDS", "1800.0"}}),
                       "BATCH_TIMEOUT_SECONDS='1800.0' is not an integer"));
  // Fits in 64 bits but not in the int field.
  EXPECT_TRUE(contains(parse_error({{"CPU_THREADS", "3000000000"}}),
                       "CPU_THREADS='3000000000' is out of range"));
  EXPECT_TRUE(contains(parse_error({{"MAX_MODEL_BATCH", "0"}}), "MAX_MODEL_BATCH='0'"));
  EXPECT_TRUE(contains(parse_error({{"MAX_MODEL_BATCH", "65"}}), "MAX_MODEL_BATCH='65'"));
  EXPECT_TRUE(contains(parse_error({{"GPU_MEMORY_LIMIT_MB", "99999999999999999999"}}),
                       "GPU_MEMORY_LIMIT_MB='99999999999999999999' is out of range"));
}

TEST(ParseConfig, BadNumbersNameVariableAndValue) {
  EXPECT_EQ(parse_error({{"GPU_MEMORY_THRESHOLD", "85%"}}),
            "GPU_MEMORY_THRESHOLD='85%' is not a number");
  EXPECT_TRUE(contains(parse_error({{"MASK_QUALITY", "nan"}}), "MASK_QUALITY='nan'"));
}

TEST(ParseConfig, BadEnumsNameVariableAndValue) {
  EXPECT_TRUE(contains(parse_error({{"LOG_LEVEL", "verbose"}}), "LOG_LEVEL='verbose' is not"));
  EXPECT_TRUE(contains(parse_error({{"LOG_FORMAT", "xml"}}), "LOG_FORMAT='xml' is not"));
  EXPECT_TRUE(contains(parse_error({{"CUDA_STREAMS", "many"}}), "CUDA_STREAMS='many' is not"));
  EXPECT_TRUE(contains(parse_error({{"CONCURRENCY_TUNING", "fast"}}),
                       "CONCURRENCY_TUNING='fast' is not a tuning mode"));
  EXPECT_TRUE(contains(parse_error({{"DEVICE", "gpu0"}}), "DEVICE='gpu0' is not a device"));
  EXPECT_TRUE(contains(parse_error({{"BUS_BROKER", "localhost:5672"}}),
                       "BUS_BROKER='localhost:5672' is not an AMQP URL"));
}

TEST(ParseConfig, RangesAreChecked) {
  struct Case {
    const char* name;
    const char* value;
    bool ok;
  };
  const Case cases[] = {
      {"GPU_MEMORY_THRESHOLD", "0", false},
      {"GPU_MEMORY_THRESHOLD", "-0.1", false},
      {"GPU_MEMORY_THRESHOLD", "0.0001", true},
      {"GPU_MEMORY_THRESHOLD", "1", true},
      {"GPU_MEMORY_THRESHOLD", "1.01", false},
      {"MIN_CONCURRENT_IMAGES", "0", false},
      {"MIN_CONCURRENT_IMAGES", "1", true},
      {"MAX_CONCURRENT_IMAGES", "0", false},
      {"MAX_OOM_RETRIES", "-1", false},
      {"MAX_OOM_RETRIES", "0", true},
      {"COMPLETION_THRESHOLD_PERCENTAGE", "0", true},
      {"COMPLETION_THRESHOLD_PERCENTAGE", "100", true},
      {"COMPLETION_THRESHOLD_PERCENTAGE", "100.5", false},
      {"COMPLETION_THRESHOLD_PERCENTAGE", "-1", false},
      {"METRICS_PORT", "0", true},
      {"METRICS_PORT", "65535", true},
      {"METRICS_PORT", "65536", false},
      {"METRICS_PORT", "-1", false},
      {"POSTGRES_PORT", "0", false},
      {"POSTGRES_PORT", "65536", false},
      {"SEGMENTOR_INJECT_OOM_RATE", "0", true},
      {"SEGMENTOR_INJECT_OOM_RATE", "1", true},
      {"SEGMENTOR_INJECT_OOM_RATE", "1.5", false},
      {"SEGMENTOR_INJECT_OOM_RATE", "-0.5", false},
      {"GPU_MEMORY_LIMIT_MB", "0", true},
      {"GPU_MEMORY_LIMIT_MB", "-1", false},
      // Issue 11, item 9: bounded so the arithmetic on them cannot overflow.
      {"GPU_MEMORY_LIMIT_MB", "16777216", true},
      {"GPU_MEMORY_LIMIT_MB", "9223372036854775807", false},
      {"MAX_CONCURRENT_IMAGES", "1024", true},
      {"MAX_CONCURRENT_IMAGES", "2147483647", false},
      {"MAX_IMAGE_PIXELS", "0", false},
      {"MAX_IMAGE_PIXELS", "1", true},
      {"CPU_THREADS", "-1", false},
      {"GPU_CLEANUP_EVERY_N", "-1", false},
      {"MODEL_IDLE_UNLOAD_SECONDS", "-1", false},
      {"SHUTDOWN_GRACE_SECONDS", "-1", false},
      {"SHUTDOWN_GRACE_SECONDS", "0", true},
      {"MAX_CONCURRENT_BATCHES", "0", false},
      {"MAX_CONCURRENT_BATCHES", "65536", false},  // AMQP prefetch is 16 bits
      {"BATCH_TIMEOUT_SECONDS", "0", false},
  };
  for (const auto& c : cases) {
    auto config = parse_config({{c.name, c.value}});
    EXPECT_EQ(config.ok(), c.ok) << c.name << "=" << c.value;
    if (!config.ok()) {
      EXPECT_TRUE(contains(config.status().message(),
                           std::string(c.name) + "='" + c.value + "' is out of range"))
          << config.status().message();
    }
  }
}

TEST(ParseConfig, MaxBelowMinIsAnError) {
  const std::string message =
      parse_error({{"MIN_CONCURRENT_IMAGES", "6"}, {"MAX_CONCURRENT_IMAGES", "3"}});
  EXPECT_TRUE(contains(message, "MAX_CONCURRENT_IMAGES=3 is less than MIN_CONCURRENT_IMAGES=6"))
      << message;
  // Against the default MAX (4) too.
  EXPECT_TRUE(contains(parse_error({{"MIN_CONCURRENT_IMAGES", "5"}}), "MAX_CONCURRENT_IMAGES=4"));
  EXPECT_EQ(parse_ok({{"MIN_CONCURRENT_IMAGES", "4"}}).min_concurrent_images, 4);
}

TEST(ParseConfig, ReportsEveryProblemTogether) {
  const std::string message = parse_error({
      {"RETRY_ON_OOM", "maybe"},
      {"POSTGRES_PORT", "http"},
      {"FOREGROUND_MASK_REL_PATH", "../escape"},
      {"LOG_LEVEL", "loud"},
      {"MIN_CONCURRENT_IMAGES", "8"},  // valid alone, but above the default MAX of 4
      {"SOME_OTHER_SERVICE_SETTING", "whatever"},
  });
  EXPECT_TRUE(contains(message, "RETRY_ON_OOM='maybe'"));
  EXPECT_TRUE(contains(message, "POSTGRES_PORT='http'"));
  EXPECT_TRUE(contains(message, "FOREGROUND_MASK_REL_PATH='../escape'"));
  EXPECT_TRUE(contains(message, "LOG_LEVEL='loud'"));
  EXPECT_TRUE(contains(message, "MIN_CONCURRENT_IMAGES=8"));
  EXPECT_FALSE(contains(message, "SOME_OTHER_SERVICE_SETTING"));
  EXPECT_EQ(std::count(message.begin(), message.end(), '\n'), 4) << message;  // five lines
}

TEST(ParseConfig, MinMaxCheckSkippedWhenEitherIsBad) {
  // One typo gives one line, not a second confusing comparison line.
  const std::string message =
      parse_error({{"MIN_CONCURRENT_IMAGES", "2"}, {"MAX_CONCURRENT_IMAGES", "lots"}});
  EXPECT_EQ(message, "MAX_CONCURRENT_IMAGES='lots' is not an integer");
}

TEST(ParseConfig, UnknownVariablesAreIgnored) {
  EXPECT_EQ(parse_ok({{"PATH", "/usr/bin"}, {"HOME", "/root"}, {"use_fp16", "bogus"}}), Config{});
}

TEST(ParseConfig, EmptyRequiredValuesAreErrors) {
  for (const char* name :
       {"FOREGROUND_SEG_MODEL_NAME", "MODEL_CACHE", "USE_FP16", "DEVICE", "MAX_CONCURRENT_IMAGES",
        "GPU_MEMORY_THRESHOLD", "DATA_ROOT_CONTAINER", "PEOPLE_MASK_REL_PATH", "BUS_BROKER",
        "POSTGRES_HOST", "POSTGRES_PORT", "LOG_LEVEL"}) {
    const std::string message = parse_error({{name, ""}});
    EXPECT_TRUE(contains(message, std::string(name) + "='' is empty")) << message;
  }
}

TEST(ParseConfig, EmptyOptionalValuesAreAllowed) {
  const Config config = parse_ok(
      {{"HF_TOKEN", ""}, {"POSTGRES_DSN", ""}, {"INPUT_ROOTS", ""}, {"POSTGRES_PASSWORD", ""}});
  EXPECT_TRUE(config.hf_token.empty());
  EXPECT_TRUE(config.postgres_dsn.empty());
  EXPECT_TRUE(config.input_roots.empty());
  EXPECT_TRUE(config.postgres_password.empty());
}

TEST(ParseConfig, RelativeMaskPaths) {
  // The upstream default was written "./masks_foreground".
  EXPECT_EQ(parse_ok({{"FOREGROUND_MASK_REL_PATH", "./masks_foreground"}}).foreground_mask_rel_path,
            "masks_foreground");
  EXPECT_EQ(parse_ok({{"PEOPLE_MASK_REL_PATH", "masks/people/"}}).people_mask_rel_path,
            "masks/people");
  EXPECT_TRUE(contains(parse_error({{"PRODUCT_MASK_REL_PATH", "/abs/product"}}),
                       "PRODUCT_MASK_REL_PATH='/abs/product' must be a relative path"));
  EXPECT_TRUE(contains(parse_error({{"PRODUCT_MASK_REL_PATH", "masks/../../etc"}}),
                       "PRODUCT_MASK_REL_PATH='masks/../../etc' must not contain '..'"));
  EXPECT_FALSE(parse_config({{"PEOPLE_MASK_REL_PATH", "./"}}).ok());
}

TEST(ParseConfig, PathsMustBeAbsoluteWhereTheyAreRoots) {
  EXPECT_TRUE(contains(parse_error({{"DATA_ROOT_CONTAINER", "data"}}),
                       "DATA_ROOT_CONTAINER='data' is not an absolute path"));
  EXPECT_TRUE(contains(parse_error({{"INPUT_ROOTS", "/ok:relative/dir"}}),
                       "INPUT_ROOTS='/ok:relative/dir'"));
}

TEST(ParseConfig, EffectiveInputRootsFallBackToDataRoot) {
  EXPECT_EQ(parse_ok({{"DATA_ROOT_CONTAINER", "/data"}}).effective_input_roots(),
            (std::vector<std::filesystem::path>{"/data"}));
  EXPECT_EQ(parse_ok({{"DATA_ROOT_CONTAINER", "/data"}, {"INPUT_ROOTS", "/in1:/in2"}})
                .effective_input_roots(),
            (std::vector<std::filesystem::path>{"/in1", "/in2"}));
}

TEST(ParseConfig, BadBrokerUrlErrorMasksThePassword) {
  const std::string message = parse_error({{"BUS_BROKER", "http://user:hunter2@rabbit/"}});
  EXPECT_TRUE(contains(message, "BUS_BROKER='http://user:***@rabbit/'")) << message;
  EXPECT_FALSE(contains(message, "hunter2"));
}

}  // namespace
}  // namespace segmentor
