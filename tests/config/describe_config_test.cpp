#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "config/config.h"

namespace segmentor {
namespace {

// describe_config() output as (name, value) pairs, in order.
std::vector<std::pair<std::string, std::string>> lines_of(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const std::size_t eq = line.find('=');
    EXPECT_NE(eq, std::string::npos) << line;
    if (eq == std::string::npos) continue;
    out.emplace_back(line.substr(0, eq), line.substr(eq + 1));
  }
  return out;
}

std::string value_of(const std::string& text, std::string_view name) {
  for (const auto& [key, value] : lines_of(text)) {
    if (key == name) return value;
  }
  ADD_FAILURE() << name << " not described";
  return "";
}

TEST(DescribeConfig, OneLinePerKnownVariableInOrder) {
  const std::string text = describe_config(Config{});
  const auto lines = lines_of(text);
  const auto names = known_variable_names();
  ASSERT_EQ(lines.size(), names.size());
  for (std::size_t i = 0; i < names.size(); ++i) EXPECT_EQ(lines[i].first, names[i]);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
}

TEST(DescribeConfig, ShowsDefaultsInTheirParsedForm) {
  const std::string text = describe_config(Config{});
  EXPECT_EQ(value_of(text, "GPU_MEMORY_THRESHOLD"), "0.85");
  EXPECT_EQ(value_of(text, "COMPLETION_THRESHOLD_PERCENTAGE"), "90");
  EXPECT_EQ(value_of(text, "USE_FP16"), "true");
  EXPECT_EQ(value_of(text, "MAX_IMAGE_PIXELS"), "100000000");
  EXPECT_EQ(value_of(text, "DATA_ROOT_CONTAINER"), "/app/data");
  EXPECT_EQ(value_of(text, "INPUT_ROOTS"), "");
  EXPECT_EQ(value_of(text, "HF_TOKEN"), "");
  EXPECT_EQ(value_of(text, "POSTGRES_PASSWORD"), "***");
  EXPECT_EQ(value_of(text, "BUS_BROKER"), "amqp://guest:***@localhost:5672/");
}

TEST(DescribeConfig, NoSecretTextAppearsAnywhere) {
  Config config;
  config.postgres_password = "pg-Secret-1";
  config.hf_token = "hf_Secret2Token";
  config.bus_broker = "amqps://worker:bus-Secret-3@rabbit.internal:5671/prod";
  config.postgres_dsn = "postgresql://app:dsn-Secret-4@db:5432/pvm?password=dsn-Secret-5&x=1";
  const std::string text = describe_config(config);
  for (const char* secret :
       {"pg-Secret-1", "hf_Secret2Token", "bus-Secret-3", "dsn-Secret-4", "dsn-Secret-5"}) {
    EXPECT_EQ(text.find(secret), std::string::npos) << secret << " leaked:\n" << text;
  }
  EXPECT_EQ(value_of(text, "BUS_BROKER"), "amqps://worker:***@rabbit.internal:5671/prod");
  EXPECT_EQ(value_of(text, "POSTGRES_DSN"), "postgresql://app:***@db:5432/pvm?password=***&x=1");
  EXPECT_EQ(value_of(text, "HF_TOKEN"), "***");

  config.postgres_dsn = "host=db user=app password='dsn secret 6' dbname=pvm";
  const std::string keyword_text = describe_config(config);
  EXPECT_EQ(keyword_text.find("dsn secret 6"), std::string::npos) << keyword_text;
  EXPECT_EQ(value_of(keyword_text, "POSTGRES_DSN"), "host=db user=app password=*** dbname=pvm");
}

TEST(DescribeConfig, ParsesBackToTheSameConfig) {
  Config config;
  config.foreground_model = "/models/custom fg.pt";
  config.use_fp16 = false;
  config.device = "cuda:2";
  config.cpu_threads = 6;
  config.max_concurrent_images = 12;
  config.min_concurrent_images = 3;
  config.gpu_memory_threshold = 0.7;
  config.gpu_memory_limit_mb = 30000;
  config.retry_on_oom = false;
  config.max_oom_retries = 5;
  config.gpu_cleanup_every_n = 100;
  config.model_idle_unload_seconds = 600;
  config.inject_oom_rate = 0.1 + 0.2;  // not exactly representable in short decimal
  config.max_image_pixels = 4'000'000'000;
  config.mask_quality = 0.5;
  config.data_root = "/srv/data";
  config.foreground_mask_rel_path = "m/fg";
  config.input_roots = {"/srv/in", "/mnt/other"};
  config.postgres_host = "db.internal";
  config.postgres_port = 6000;
  config.max_concurrent_batches = 7;
  config.batch_timeout_seconds = 60;
  config.completion_threshold_percentage = 95.5;
  config.metrics_port = 0;
  config.shutdown_grace_seconds = 5;
  config.log_level = "DEBUG";
  config.log_format = "text";

  Environment env;
  for (const auto& [name, value] : lines_of(describe_config(config))) env[name] = value;
  auto parsed = parse_config(env);
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  // Masked values cannot round-trip; everything else must.
  EXPECT_EQ(parsed->postgres_password, "***");
  EXPECT_EQ(parsed->bus_broker, "amqp://guest:***@localhost:5672/");
  parsed->postgres_password = config.postgres_password;
  parsed->bus_broker = config.bus_broker;
  EXPECT_EQ(*parsed, config);
}

TEST(MaskUrlPassword, MasksOnlyThePassword) {
  EXPECT_EQ(mask_url_password("amqp://guest:guest@host/"), "amqp://guest:***@host/");
  EXPECT_EQ(mask_url_password("amqp://host:5672/"), "amqp://host:5672/");
  EXPECT_EQ(mask_url_password("amqp://user@host:5672/"), "amqp://user@host:5672/");
  EXPECT_EQ(mask_url_password("postgresql://u:p%40ss@h/db"), "postgresql://u:***@h/db");
  EXPECT_EQ(mask_url_password(""), "");
  EXPECT_EQ(mask_url_password("host=db dbname=x"), "host=db dbname=x");
}

TEST(MaskUrlPassword, HidesUnencodedPasswordsWhole) {
  // See Note [Masking errs towards hiding].
  EXPECT_EQ(mask_url_password("amqp://u:p@ss/w?rd#x@host/vh"), "amqp://u:***@host/vh");
  EXPECT_EQ(mask_url_password("postgresql://h/db?user=u&PASSWORD=a#b"),
            "postgresql://h/db?user=u&PASSWORD=***#b");
  EXPECT_EQ(mask_url_password("password = 'it\\'s secret' host=h"), "password = *** host=h");
  EXPECT_EQ(mask_url_password("host=h\tpassword=x"), "host=h\tpassword=***");
  // "password" only as a whole keyword.
  EXPECT_EQ(mask_url_password("mypassword=x"), "mypassword=x");
}

}  // namespace
}  // namespace segmentor
