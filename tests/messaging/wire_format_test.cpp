#include "messaging/wire_format.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>

namespace segmentor::messaging {
namespace {

using namespace std::chrono_literals;

TEST(WireFormat, QueueNamesFollowTheContract) {
  EXPECT_EQ(queue_for("products.image.ready"), "queue.products.image.ready");
  EXPECT_EQ(dead_letter_queue_for("products.image.ready"), "queue.products.image.ready.dlq");
  EXPECT_EQ(kExchange, "product_video_matching");
}

TEST(WireFormat, PrefetchIsOneForBatchTopics) {
  EXPECT_EQ(prefetch_for("products.images.ready.batch", 5), 1);
  EXPECT_EQ(prefetch_for("videos.keyframes.ready.batch", 5), 1);
  EXPECT_EQ(prefetch_for("products.image.ready", 5), 5);
  EXPECT_EQ(prefetch_for("videos.keyframes.ready", 2), 2);
  EXPECT_EQ(prefetch_for("videos.keyframes.ready", 0), 1);
  EXPECT_FALSE(is_batch_topic("batch"));
}

TEST(WireFormat, Uuid4IsCanonicalAndUnique) {
  const std::regex pattern("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = uuid4();
    ASSERT_TRUE(std::regex_match(id, pattern)) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(WireFormat, TimestampIsUtcIso8601WithMicroseconds) {
  // 2024-05-01T12:34:56.789012Z
  std::chrono::system_clock::time_point when{std::chrono::microseconds(1714566896789012)};
  EXPECT_EQ(utc_iso8601(when), "2024-05-01T12:34:56.789012Z");
  EXPECT_EQ(utc_iso8601(std::chrono::system_clock::time_point{}), "1970-01-01T00:00:00.000000Z");
}

TEST(WireFormat, MetadataIsAddedAndReplaced) {
  std::chrono::system_clock::time_point when{std::chrono::seconds(0)};
  nlohmann::json payload = {{"job_id", "j1"}, {"_metadata", {{"topic", "old"}}}};
  auto body = with_metadata(payload, "products.image.masked", "corr-1", when);
  ASSERT_TRUE(body.ok()) << body.status().to_string();
  EXPECT_EQ((*body)["job_id"], "j1");
  EXPECT_EQ((*body)["_metadata"]["topic"], "products.image.masked");
  EXPECT_EQ((*body)["_metadata"]["correlation_id"], "corr-1");
  EXPECT_EQ((*body)["_metadata"]["timestamp"], "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ((*body)["_metadata"].size(), 3u);
}

TEST(WireFormat, MetadataNeedsAnObject) {
  auto body = with_metadata(nlohmann::json::array(), "t", "c", std::chrono::system_clock::now());
  ASSERT_FALSE(body.ok());
  EXPECT_EQ(body.status().code(), ErrorCode::kInvalidArgument);
}

TEST(WireFormat, CorrelationIdComesFromPropertyThenMetadataThenNew) {
  nlohmann::json body = {{"_metadata", {{"correlation_id", "from-body"}}}};
  EXPECT_EQ(resolve_correlation_id("from-prop", &body), "from-prop");
  EXPECT_EQ(resolve_correlation_id("", &body), "from-body");
  nlohmann::json empty_meta = {{"_metadata", {{"correlation_id", ""}}}};
  std::string minted = resolve_correlation_id("", &empty_meta);
  EXPECT_EQ(minted.size(), 36u);
  EXPECT_NE(minted, resolve_correlation_id("", nullptr));
  nlohmann::json not_object = 3;
  EXPECT_EQ(resolve_correlation_id("", &not_object).size(), 36u);
}

TEST(WireFormat, HeaderIntAcceptsIntegersAndDigitStrings) {
  Headers headers = {{"a", std::int64_t{3}}, {"b", std::string("7")}, {"c", std::string("x")},
                     {"d", std::int64_t{-1}}, {"e", true}};
  EXPECT_EQ(header_int(headers, "a"), 3);
  EXPECT_EQ(header_int(headers, "b"), 7);
  EXPECT_EQ(header_int(headers, "c"), std::nullopt);
  EXPECT_EQ(header_int(headers, "d"), std::nullopt);
  EXPECT_EQ(header_int(headers, "e"), std::nullopt);
  EXPECT_EQ(header_int(headers, "missing"), std::nullopt);
}

TEST(WireFormat, TruncationCountsCodePointsAndNeverSplitsOne) {
  EXPECT_EQ(truncate_utf8("abcdef", 3), "abc");
  EXPECT_EQ(truncate_utf8("ab", 3), "ab");
  // "é" is two bytes, "€" three: 3 code points = "aé€".
  EXPECT_EQ(truncate_utf8("a\xC3\xA9\xE2\x82\xAC" "bc", 3), "a\xC3\xA9\xE2\x82\xAC");
  std::string long_reason(600, 'x');
  EXPECT_EQ(truncate_utf8(long_reason, kMaxFailureReasonChars).size(), 500u);
}

TEST(WireFormat, RetryDelaysAreOneTwoFourSeconds) {
  RetryPolicy policy;
  EXPECT_EQ(retry_delay(policy, 0), 1000ms);
  EXPECT_EQ(retry_delay(policy, 1), 2000ms);
  EXPECT_EQ(retry_delay(policy, 2), 4000ms);
  EXPECT_FALSE(retries_exhausted(policy, 2));
  EXPECT_TRUE(retries_exhausted(policy, 3));
}

TEST(WireFormat, RetryHeadersReplaceTheCount) {
  Headers original = {{"keep", std::string("me")}, {"x-retry-count", std::int64_t{1}}};
  Headers headers = retry_headers(original, 2);
  ASSERT_EQ(headers.size(), 2u);
  EXPECT_EQ(header_int(headers, "x-retry-count"), 2);
  EXPECT_EQ(std::get<std::string>(*find_header(headers, "keep")), "me");
  EXPECT_EQ(header_int(retry_headers({}, 1), "x-retry-count"), 1);
}

TEST(WireFormat, DeadLetterHeadersCarryTheFailure) {
  Headers headers = dead_letter_headers({{"x-retry-count", std::int64_t{3}}},
                                        "products.image.ready", std::string(800, 'r'),
                                        "MalformedMessage", 3);
  EXPECT_EQ(std::get<std::string>(*find_header(headers, "x-original-topic")),
            "products.image.ready");
  EXPECT_EQ(std::get<std::string>(*find_header(headers, "x-failure-reason")).size(), 500u);
  EXPECT_EQ(std::get<std::string>(*find_header(headers, "x-error-type")), "MalformedMessage");
  EXPECT_EQ(header_int(headers, "x-retry-count"), 3);
  EXPECT_EQ(headers.size(), 4u);
}

}  // namespace
}  // namespace segmentor::messaging
