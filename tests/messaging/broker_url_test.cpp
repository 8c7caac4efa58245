#include <gtest/gtest.h>

#include "messaging/amqp_connection.h"

namespace segmentor::messaging {
namespace {

TEST(BrokerUrl, DefaultUrlUsesTheDefaultVhost) {
  auto url = parse_broker_url("amqp://guest:guest@localhost:5672/");
  ASSERT_TRUE(url.ok()) << url.status().to_string();
  EXPECT_EQ(url->host, "localhost");
  EXPECT_EQ(url->port, 5672);
  EXPECT_EQ(url->user, "guest");
  EXPECT_EQ(url->password, "guest");
  EXPECT_EQ(url->vhost, "/");
  EXPECT_FALSE(url->tls);
  EXPECT_EQ(url->display(), "localhost:5672/");
}

TEST(BrokerUrl, NamedVhostAndDefaults) {
  auto url = parse_broker_url("amqp://u:p@rabbit.example:5673/pvm");
  ASSERT_TRUE(url.ok()) << url.status().to_string();
  EXPECT_EQ(url->port, 5673);
  EXPECT_EQ(url->vhost, "pvm");
  EXPECT_EQ(url->display().find("p@"), std::string::npos);  // no password in logs

  auto bare = parse_broker_url("amqp://rabbit");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->port, 5672);
  EXPECT_EQ(bare->vhost, "/");
}

TEST(BrokerUrl, RejectsWhatIsNotAnAmqpUrl) {
  auto url = parse_broker_url("http://localhost/");
  ASSERT_FALSE(url.ok());
  EXPECT_EQ(url.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(url.status().message().find("BUS_BROKER"), std::string::npos);
}

}  // namespace
}  // namespace segmentor::messaging
