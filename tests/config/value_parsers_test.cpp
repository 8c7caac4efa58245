#include "config/value_parsers.h"

#include <gtest/gtest.h>

#include <limits>

namespace segmentor::config_internal {
namespace {

TEST(ParseBool, AcceptsEverySpellingInAnyCase) {
  for (const char* text : {"1", "true", "TRUE", "True", "yes", "YES", "on", "On", " true "}) {
    auto parsed = parse_bool(text);
    ASSERT_TRUE(parsed.ok()) << text;
    EXPECT_TRUE(*parsed) << text;
  }
  for (const char* text : {"0", "false", "FALSE", "no", "No", "off", "OFF", "\tfalse"}) {
    auto parsed = parse_bool(text);
    ASSERT_TRUE(parsed.ok()) << text;
    EXPECT_FALSE(*parsed) << text;
  }
}

TEST(ParseBool, RejectsEverythingElse) {
  for (const char* text :
       {"maybe", "2", "-1", "t", "f", "y", "n", "truee", "yes please", "", " "}) {
    EXPECT_FALSE(parse_bool(text).ok()) << "'" << text << "'";
  }
  EXPECT_EQ(parse_bool("maybe").status().message(),
            "is not a boolean (use true/false, 1/0, yes/no, on/off)");
}

TEST(ParseInteger, ParsesWholeValuesOnly) {
  EXPECT_EQ(*parse_integer("42", 0, 100), 42);
  EXPECT_EQ(*parse_integer(" +7 ", 0, 100), 7);
  EXPECT_EQ(*parse_integer("-3", -5, 5), -3);
  for (const char* text : {"4x", "4.0", "0x10", "1e3", "", "++4", "+-4", "four", "4 5"}) {
    EXPECT_FALSE(parse_integer(text, -100, 100).ok()) << "'" << text << "'";
  }
  EXPECT_EQ(parse_integer("4x", 0, 100).status().message(), "is not an integer");
}

TEST(ParseInteger, ChecksRangeAndOverflow) {
  EXPECT_TRUE(parse_integer("0", 0, 10).ok());
  EXPECT_TRUE(parse_integer("10", 0, 10).ok());
  EXPECT_EQ(parse_integer("11", 0, 10).status().message(),
            "is out of range (must be between 0 and 10)");
  EXPECT_EQ(parse_integer("-1", 0, std::numeric_limits<int>::max()).status().message(),
            "is out of range (must be at least 0)");
  const auto huge = parse_integer("99999999999999999999", 0, 10);
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.status().message().find("out of range"), std::string::npos);
}

TEST(ParseNumber, ParsesFiniteNumbersOnly) {
  EXPECT_DOUBLE_EQ(*parse_number("0.85"), 0.85);
  EXPECT_DOUBLE_EQ(*parse_number("1e-3"), 0.001);
  EXPECT_DOUBLE_EQ(*parse_number("+90"), 90.0);
  EXPECT_DOUBLE_EQ(*parse_number(".5"), 0.5);
  for (const char* text : {"nan", "NaN", "inf", "-inf", "infinity", "0.5abc", "0,5", "", "1e999"}) {
    EXPECT_FALSE(parse_number(text).ok()) << "'" << text << "'";
  }
}

TEST(ParseRelativePath, NormalisesHarmlessForms) {
  EXPECT_EQ(*parse_relative_path("masks_foreground"), "masks_foreground");
  EXPECT_EQ(*parse_relative_path("./masks_foreground"), "masks_foreground");
  EXPECT_EQ(*parse_relative_path("./a//b/./c/"), "a/b/c");
}

TEST(ParseRelativePath, RejectsEscapesAndAbsolutePaths) {
  EXPECT_EQ(parse_relative_path("/masks").status().message(),
            "must be a relative path (a folder below DATA_ROOT_CONTAINER)");
  EXPECT_EQ(parse_relative_path("..").status().message(), "must not contain '..'");
  EXPECT_FALSE(parse_relative_path("a/../b").ok());
  EXPECT_FALSE(parse_relative_path("a/..").ok());
  EXPECT_FALSE(parse_relative_path("./").ok());
  EXPECT_FALSE(parse_relative_path(".").ok());
  EXPECT_FALSE(parse_relative_path("").ok());
  // ".." only as a whole component: "..masks" is an ordinary folder name.
  EXPECT_EQ(*parse_relative_path("..masks"), "..masks");
}

TEST(ParseAbsolutePath, NormalisesAndRequiresARoot) {
  EXPECT_EQ(*parse_absolute_path("/app/data/"), std::filesystem::path("/app/data"));
  EXPECT_EQ(*parse_absolute_path("/app/./x/../data"), std::filesystem::path("/app/data"));
  EXPECT_EQ(*parse_absolute_path("/"), std::filesystem::path("/"));
  EXPECT_FALSE(parse_absolute_path("app/data").ok());
  EXPECT_FALSE(parse_absolute_path("").ok());
}

TEST(ParsePathList, SplitsOnColons) {
  auto roots = parse_path_list("/a:/b/c/");
  ASSERT_TRUE(roots.ok());
  EXPECT_EQ(*roots, (std::vector<std::filesystem::path>{"/a", "/b/c"}));
  EXPECT_TRUE(parse_path_list("")->empty());
  EXPECT_FALSE(parse_path_list("/a::/b").ok());
  EXPECT_FALSE(parse_path_list("/a:").ok());
  const auto relative = parse_path_list("/a:rel");
  ASSERT_FALSE(relative.ok());
  EXPECT_NE(relative.status().message().find("'rel'"), std::string::npos);
}

TEST(ParseDevice, AcceptsKnownForms) {
  EXPECT_EQ(*parse_device("auto"), "auto");
  EXPECT_EQ(*parse_device("CPU"), "cpu");
  EXPECT_EQ(*parse_device("Cuda"), "cuda");
  EXPECT_EQ(*parse_device("cuda:1"), "cuda:1");
  EXPECT_EQ(*parse_device("CUDA:01"), "cuda:1");
  for (const char* text : {"gpu", "cuda:", "cuda:-1", "cuda:+1", "cuda:x", "cuda:1:2", "mps", ""}) {
    EXPECT_FALSE(parse_device(text).ok()) << "'" << text << "'";
  }
}

TEST(ParseLogLevel, NormalisesCaseAndWarn) {
  EXPECT_EQ(*parse_log_level("debug"), "DEBUG");
  EXPECT_EQ(*parse_log_level("Info"), "INFO");
  EXPECT_EQ(*parse_log_level("warn"), "WARNING");
  EXPECT_EQ(*parse_log_level("WARNING"), "WARNING");
  EXPECT_EQ(*parse_log_level("error"), "ERROR");
  EXPECT_EQ(*parse_log_level("critical"), "CRITICAL");
  EXPECT_FALSE(parse_log_level("verbose").ok());
  EXPECT_FALSE(parse_log_level("TRACE").ok());
}

TEST(ParseLogFormat, JsonOrText) {
  EXPECT_EQ(*parse_log_format("JSON"), "json");
  EXPECT_EQ(*parse_log_format("text"), "text");
  EXPECT_FALSE(parse_log_format("xml").ok());
}

TEST(ParseAmqpUrl, RequiresAmqpScheme) {
  EXPECT_TRUE(parse_amqp_url("amqp://guest:guest@localhost:5672/").ok());
  EXPECT_TRUE(parse_amqp_url("AMQPS://host/").ok());
  EXPECT_FALSE(parse_amqp_url("http://host/").ok());
  EXPECT_FALSE(parse_amqp_url("localhost").ok());
}

TEST(FormatNumber, ShortestRoundTrip) {
  EXPECT_EQ(format_number(0.85), "0.85");
  EXPECT_EQ(format_number(90.0), "90");
  EXPECT_EQ(format_number(0.0), "0");
  EXPECT_DOUBLE_EQ(*parse_number(format_number(0.1 + 0.2)), 0.1 + 0.2);
}

}  // namespace
}  // namespace segmentor::config_internal
