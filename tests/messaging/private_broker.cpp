#include "private_broker.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace segmentor::messaging::testing {
namespace {

const std::string kScript = std::string(SEGMENTOR_SOURCE_DIR) + "/scripts/test-services/rabbitmq.sh";

Result<std::string> run(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return internal_error("popen failed: " + command);
  std::string out;
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) out.append(buffer.data(), n);
  int rc = pclose(pipe);
  if (rc != 0) return internal_error(command + " failed (" + std::to_string(rc) + "): " + out);
  return out;
}

std::string trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace

Result<std::unique_ptr<PrivateBroker>> PrivateBroker::create(std::string* skip_reason) {
  if (!std::filesystem::exists("/usr/lib/rabbitmq/bin/rabbitmq-server")) {
    *skip_reason = "rabbitmq-server is not installed";
    return std::unique_ptr<PrivateBroker>();
  }
  char pattern[] = "/tmp/segmentor-broker-test.XXXXXX";
  if (mkdtemp(pattern) == nullptr) return internal_error("mkdtemp failed");
  std::string dir = pattern;
  SEGMENTOR_ASSIGN_OR_RETURN(std::string url, run(kScript + " start " + dir));
  return std::unique_ptr<PrivateBroker>(new PrivateBroker(dir, trim(url)));
}

PrivateBroker::~PrivateBroker() { (void)run(kScript + " stop " + dir_ + " 2>&1"); }

Status PrivateBroker::restart() {
  SEGMENTOR_ASSIGN_OR_RETURN(std::string url, run(kScript + " restart " + dir_));
  if (trim(url) != url_) return internal_error("restart moved the broker to " + url);
  return Status::Ok();
}

Status PrivateBroker::crash_and_start() {
  SEGMENTOR_RETURN_IF_ERROR(run(kScript + " kill " + dir_).status());
  SEGMENTOR_ASSIGN_OR_RETURN(std::string url, run(kScript + " start " + dir_));
  if (trim(url) != url_) return internal_error("start moved the broker to " + url);
  return Status::Ok();
}

Result<std::string> PrivateBroker::ctl(const std::string& args) const {
  return run(kScript + " ctl " + dir_ + " " + args);
}

Result<std::unique_ptr<AmqpConnection>> connect(const std::string& url) {
  SEGMENTOR_ASSIGN_OR_RETURN(BrokerUrl parsed, parse_broker_url(url));
  ConnectOptions options;
  options.connection_name = "segmentor-test-inspector";
  SEGMENTOR_ASSIGN_OR_RETURN(auto conn, AmqpConnection::create(parsed, options));
  SEGMENTOR_RETURN_IF_ERROR(conn->open_channel(1));
  return conn;
}

std::vector<InboundDelivery> take(AmqpConnection& conn, const std::string& queue, int count,
                                  std::chrono::milliseconds timeout) {
  std::vector<InboundDelivery> out;
  static std::uint16_t next_channel = 100;
  std::uint16_t channel = next_channel++;
  if (!conn.open_channel(channel).ok()) return out;
  auto tag = conn.consume(channel, queue);
  if (!tag.ok()) return out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (static_cast<int>(out.size()) < count && std::chrono::steady_clock::now() < deadline) {
    auto event = conn.poll(std::chrono::milliseconds(100));
    if (!event.ok()) break;
    if (!event->has_value()) continue;
    if (auto* delivery = std::get_if<InboundDelivery>(&**event)) {
      (void)conn.ack(delivery->channel, delivery->delivery_tag);
      out.push_back(std::move(*delivery));
    }
  }
  (void)conn.close_channel(channel);
  return out;
}

long message_count(AmqpConnection& conn, const std::string& queue) {
  auto state = conn.declare_queue(1, queue, /*passive=*/true);
  if (!state.ok()) {
    (void)conn.open_channel(1);  // a failed passive declare closes the channel
    return -1;
  }
  return static_cast<long>(state->message_count);
}

}  // namespace segmentor::messaging::testing
