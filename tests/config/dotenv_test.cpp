#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "config/config.h"

namespace segmentor {
namespace {

Environment parse_ok(std::string_view text) {
  auto env = parse_dotenv(text, "test.env");
  EXPECT_TRUE(env.ok()) << env.status().to_string();
  return env.ok() ? *env : Environment{};
}

std::string parse_error(std::string_view text) {
  auto env = parse_dotenv(text, "test.env");
  EXPECT_FALSE(env.ok());
  return env.ok() ? "" : env.status().message();
}

TEST(ParseDotenv, PlainAssignmentsCommentsAndBlankLines) {
  const Environment env = parse_ok(
      "# a comment\n"
      "\n"
      "   \n"
      "A=1\n"
      "  # an indented comment\n"
      "B = two words  \n"
      "C=\n"
      "lower_case_9=x\n");
  EXPECT_EQ(env, (Environment{{"A", "1"}, {"B", "two words"}, {"C", ""}, {"lower_case_9", "x"}}));
}

TEST(ParseDotenv, ExportPrefix) {
  const Environment env = parse_ok("export A=1\nexport\tB=2\nexporter=3\n");
  EXPECT_EQ(env, (Environment{{"A", "1"}, {"B", "2"}, {"exporter", "3"}}));
}

TEST(ParseDotenv, InlineCommentsNeedABlankBeforeTheHash) {
  const Environment env = parse_ok(
      "A=value # trailing comment\n"
      "B=pass#word\n"
      "C= # only a comment\n"
      "D=#leading\n");
  EXPECT_EQ(env.at("A"), "value");
  EXPECT_EQ(env.at("B"), "pass#word");
  EXPECT_EQ(env.at("C"), "");
  EXPECT_EQ(env.at("D"), "#leading");
}

TEST(ParseDotenv, SingleQuotesAreLiteral) {
  const Environment env = parse_ok(
      "A='  spaced # not a comment  '\n"
      "B='back\\slash \\n \"dq\"' # comment\n"
      "C=''\n");
  EXPECT_EQ(env.at("A"), "  spaced # not a comment  ");
  EXPECT_EQ(env.at("B"), "back\\slash \\n \"dq\"");
  EXPECT_EQ(env.at("C"), "");
}

TEST(ParseDotenv, DoubleQuotesHaveEscapes) {
  const Environment env = parse_ok(
      "A=\"line1\\nline2\"\n"
      "B=\"say \\\"hi\\\"\"\n"
      "C=\"a\\\\b\"\n"
      "D=\"C:\\path\"\n"
      "E=\"# kept\" # dropped\n"
      "F=\"it's\"\n");
  EXPECT_EQ(env.at("A"), "line1\nline2");
  EXPECT_EQ(env.at("B"), "say \"hi\"");
  EXPECT_EQ(env.at("C"), "a\\b");
  EXPECT_EQ(env.at("D"), "C:\\path");  // unknown escape kept as written
  EXPECT_EQ(env.at("E"), "# kept");
  EXPECT_EQ(env.at("F"), "it's");
}

TEST(ParseDotenv, CrlfLineEndsAndLastLineWithoutNewline) {
  const Environment env = parse_ok("A=1\r\nB=\"2\"\r\nC=3");
  EXPECT_EQ(env, (Environment{{"A", "1"}, {"B", "2"}, {"C", "3"}}));
}

TEST(ParseDotenv, LaterAssignmentWinsWithinAFile) {
  EXPECT_EQ(parse_ok("A=1\nA=2\n").at("A"), "2");
}

TEST(ParseDotenv, MalformedLinesNameFileAndLine) {
  EXPECT_EQ(parse_error("A=1\n\n# c\nJUST_A_NAME\n").substr(0, 11), "test.env:4:");
  EXPECT_EQ(parse_error("1ABC=2\n").substr(0, 11), "test.env:1:");
  EXPECT_EQ(parse_error("A=1\nB-C=2\n").substr(0, 11), "test.env:2:");
  EXPECT_EQ(parse_error("A=1\nB=2\nC=\"open\n").substr(0, 11), "test.env:3:");
  EXPECT_EQ(parse_error("A='open\n").substr(0, 11), "test.env:1:");
  EXPECT_EQ(parse_error("A=\"x\" junk\n").substr(0, 11), "test.env:1:");
  EXPECT_EQ(parse_error("=value\n").substr(0, 11), "test.env:1:");
  const std::string message = parse_error("OK=1\nPOSTGRES_PASSWORD=\"s3cret\n");
  EXPECT_NE(message.find("test.env:2: POSTGRES_PASSWORD: unterminated double-quoted value"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("s3cret"), std::string::npos) << "errors must not echo values";
}

// A scratch directory removed when the test ends.
class ReadEnvironmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("segmentor-config-" + std::to_string(::getpid()) + "-" + info->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path write_dotenv(const std::string& text) {
    const auto path = dir_ / ".env";
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  // A null-terminated environ-style block over `entries`, which must outlive it.
  static std::vector<char*> block(std::vector<std::string>& entries) {
    std::vector<char*> out;
    for (auto& entry : entries) out.push_back(entry.data());
    out.push_back(nullptr);
    return out;
  }

  std::filesystem::path dir_;
};

TEST_F(ReadEnvironmentTest, EnvironmentWinsOverDotenv) {
  const auto path = write_dotenv("RETRY_ON_OOM=false\nLOG_LEVEL=DEBUG\n");
  std::vector<std::string> entries = {"RETRY_ON_OOM=true", "PATH=/usr/bin"};
  auto environ_block = block(entries);
  auto env = read_environment(environ_block.data(), path);
  ASSERT_TRUE(env.ok()) << env.status().to_string();
  EXPECT_EQ(env->at("RETRY_ON_OOM"), "true");
  EXPECT_EQ(env->at("LOG_LEVEL"), "DEBUG");
  EXPECT_EQ(env->at("PATH"), "/usr/bin");
}

TEST_F(ReadEnvironmentTest, AnEmptyEnvironmentValueStillWins) {
  const auto path = write_dotenv("HF_TOKEN=from-file\n");
  std::vector<std::string> entries = {"HF_TOKEN="};
  auto environ_block = block(entries);
  auto env = read_environment(environ_block.data(), path);
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->at("HF_TOKEN"), "");
}

TEST_F(ReadEnvironmentTest, MissingDotenvIsFine) {
  std::vector<std::string> entries = {"A=1", "B=x=y", "NO_EQUALS_SIGN", "=nameless"};
  auto environ_block = block(entries);
  auto env = read_environment(environ_block.data(), dir_ / "does-not-exist.env");
  ASSERT_TRUE(env.ok()) << env.status().to_string();
  EXPECT_EQ(*env, (Environment{{"A", "1"}, {"B", "x=y"}}));
}

TEST_F(ReadEnvironmentTest, FirstDuplicateInTheEnvironmentWins) {
  std::vector<std::string> entries = {"A=first", "A=second"};
  auto environ_block = block(entries);
  auto env = read_environment(environ_block.data(), dir_ / "none");
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->at("A"), "first");  // as getenv() would answer
}

TEST_F(ReadEnvironmentTest, NullEnvironmentReadsOnlyTheFile) {
  const auto path = write_dotenv("export A='1'\n");
  auto env = read_environment(nullptr, path);
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(*env, (Environment{{"A", "1"}}));
}

TEST_F(ReadEnvironmentTest, MalformedDotenvNamesTheFileAndLine) {
  const auto path = write_dotenv("A=1\nB=2\nthis is not an assignment\n");
  auto env = read_environment(nullptr, path);
  ASSERT_FALSE(env.ok());
  EXPECT_EQ(env.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(env.status().message().rfind(path.string() + ":3: ", 0), 0u) << env.status().message();
}

TEST_F(ReadEnvironmentTest, ADirectoryIsNotADotenvFile) {
  auto env = read_environment(nullptr, dir_);
  ASSERT_FALSE(env.ok());
  EXPECT_EQ(env.status().code(), ErrorCode::kIo);
}

TEST_F(ReadEnvironmentTest, FeedsParseConfig) {
  const auto path = write_dotenv("export MAX_CONCURRENT_IMAGES=8 # more\nUSE_FP16='no'\n");
  std::vector<std::string> entries = {"MAX_CONCURRENT_IMAGES=6"};
  auto environ_block = block(entries);
  auto env = read_environment(environ_block.data(), path);
  ASSERT_TRUE(env.ok());
  auto config = parse_config(*env);
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  EXPECT_EQ(config->max_concurrent_images, 6);
  EXPECT_FALSE(config->use_fp16);
}

}  // namespace
}  // namespace segmentor
