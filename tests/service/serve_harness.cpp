#include "serve_harness.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "messaging/events.h"
#include "messaging/wire_format.h"

namespace segmentor::testing {

namespace {

using messaging::testing::PrivateBroker;

std::unique_ptr<PrivateBroker>& broker_slot() {
  static std::unique_ptr<PrivateBroker> broker;
  return broker;
}

class BrokerEnvironment final : public ::testing::Environment {
 public:
  void SetUp() override {
    std::string skip;
    auto broker = PrivateBroker::create(&skip);
    ASSERT_TRUE(broker.ok()) << broker.status().to_string();
    broker_slot() = std::move(broker).value();
  }
  void TearDown() override { broker_slot().reset(); }
};

[[maybe_unused]] ::testing::Environment* const kBrokerEnvironment =
    ::testing::AddGlobalTestEnvironment(new BrokerEnvironment);

const std::vector<std::string>& emitted_topics() {
  static const std::vector<std::string> topics = {
      std::string(messaging::kProductImageMasked),
      std::string(messaging::kVideoKeyframesMasked),
      std::string(messaging::kProductImagesMaskedBatch),
      std::string(messaging::kVideoKeyframesMaskedBatch),
      std::string(messaging::kImageSegmentationCompleted),
      std::string(messaging::kVideoSegmentationCompleted)};
  return topics;
}

}  // namespace

PrivateBroker* shared_broker() { return broker_slot().get(); }

// --- WorkerProcess ---------------------------------------------------------------------------

WorkerProcess::WorkerProcess(std::map<std::string, std::string> env, std::filesystem::path log_file)
    : env_(std::move(env)), log_file_(std::move(log_file)) {}

WorkerProcess::~WorkerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::string WorkerProcess::log() const {
  std::ifstream in(log_file_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool WorkerProcess::start(std::chrono::seconds timeout) {
  const std::size_t log_start = log().size();
  std::vector<std::string> env_strings = {"PATH=/usr/bin:/bin"};
  for (const auto& [name, value] : env_) env_strings.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string binary = SEGMENTOR_BINARY;
  std::string env_file_flag = "--env-file";
  std::string env_file = "/nonexistent/.env";
  std::string serve = "serve";
  std::string poll = "--poll-interval-ms";
  std::string poll_value = "500";
  std::string republish = "--republish-after-seconds";
  std::string republish_value = "2";
  std::vector<char*> argv = {
      binary.data(),     env_file_flag.data(), env_file.data(),        serve.data(), poll.data(),
      poll_value.data(), republish.data(),     republish_value.data(), nullptr};
  pid_ = fork();
  if (pid_ == 0) {
    const int fd = open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
    }
    execve(binary.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (log().find("serving: consuming", log_start) != std::string::npos) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      ADD_FAILURE() << "segmentor serve exited during start-up:\n" << log();
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "segmentor serve did not start:\n" << log();
  return false;
}

void WorkerProcess::kill_now() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

bool WorkerProcess::alive() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) pid_ = -1;
  return pid_ > 0;
}

int WorkerProcess::terminate(std::chrono::seconds timeout) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return -1;
}

// --- EventCollector --------------------------------------------------------------------------

Result<std::unique_ptr<EventCollector>> EventCollector::create(const std::string& url) {
  SEGMENTOR_ASSIGN_OR_RETURN(auto conn, messaging::testing::connect(url));
  SEGMENTOR_RETURN_IF_ERROR(
      conn->declare_exchange(1, messaging::kExchange, "topic", /*durable=*/true, false));
  std::uint16_t channel = 10;
  for (const std::string& topic : emitted_topics()) {
    const std::string queue = "test.collect." + topic;
    SEGMENTOR_RETURN_IF_ERROR(conn->declare_queue(1, queue, false).status());
    SEGMENTOR_RETURN_IF_ERROR(conn->bind_queue(1, queue, messaging::kExchange, topic));
    SEGMENTOR_RETURN_IF_ERROR(conn->open_channel(channel));
    SEGMENTOR_RETURN_IF_ERROR(conn->consume(channel, queue).status());
    ++channel;
  }
  return std::unique_ptr<EventCollector>(new EventCollector(std::move(conn)));
}

void EventCollector::drain(std::chrono::milliseconds wait) {
  while (true) {
    auto event = conn_->poll(wait);
    if (!event.ok() || !event->has_value()) return;
    if (auto* delivery = std::get_if<messaging::InboundDelivery>(&**event)) {
      (void)conn_->ack(delivery->channel, delivery->delivery_tag);
      Emitted emitted;
      emitted.topic = delivery->routing_key;
      emitted.body = nlohmann::json::parse(delivery->body, nullptr, false);
      emitted.correlation_id = delivery->correlation_id;
      events_.push_back(std::move(emitted));
    }
    wait = std::chrono::milliseconds(0);
  }
}

bool EventCollector::wait_until(const std::function<bool(const std::vector<Emitted>&)>& done,
                                std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    drain(std::chrono::milliseconds(100));
    if (done(events_)) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
  }
}

std::vector<Emitted> EventCollector::of(const std::string& topic, const std::string& job_id) const {
  std::vector<Emitted> out;
  for (const Emitted& e : events_) {
    if (e.topic == topic && e.body.is_object() && e.body.value("job_id", "") == job_id) {
      out.push_back(e);
    }
  }
  return out;
}

std::vector<messaging::InboundDelivery> take_matching(const std::string& queue,
                                                      const std::string& marker, int count,
                                                      std::chrono::milliseconds timeout) {
  std::vector<messaging::InboundDelivery> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // A connection that fails (a busy broker) is tried again until the deadline: giving up at once
  // would read as "nothing dead-lettered" and hide the real cause.
  auto conn = messaging::testing::connect(shared_broker()->url());
  while (!conn.ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    conn = messaging::testing::connect(shared_broker()->url());
  }
  if (!conn.ok()) {
    ADD_FAILURE() << "cannot connect to take from " << queue << ": " << conn.status().to_string();
    return out;
  }
  while (static_cast<int>(out.size()) < count && std::chrono::steady_clock::now() < deadline) {
    for (auto& d : messaging::testing::take(**conn, queue, 100, std::chrono::milliseconds(300))) {
      if (d.body.find(marker) != std::string::npos) out.push_back(std::move(d));
    }
  }
  return out;
}

// --- UpstreamPublisher -----------------------------------------------------------------------

Result<std::unique_ptr<UpstreamPublisher>> UpstreamPublisher::create(const std::string& url) {
  messaging::BrokerOptions options;
  options.url = url;
  options.start_timeout = std::chrono::milliseconds(30000);
  SEGMENTOR_ASSIGN_OR_RETURN(auto client, messaging::BrokerClient::create(options));
  SEGMENTOR_RETURN_IF_ERROR(client->start({}));
  return std::unique_ptr<UpstreamPublisher>(new UpstreamPublisher(std::move(client)));
}

Status UpstreamPublisher::publish(std::string_view topic, nlohmann::json payload,
                                  std::string_view correlation_id) {
  return client_->publish(topic, std::move(payload), correlation_id);
}

Status UpstreamPublisher::publish_raw(std::string_view topic, std::string body) {
  messaging::OutgoingMessage message;
  message.body = std::move(body);
  return client_->publish_raw(messaging::kExchange, topic, std::move(message));
}

}  // namespace segmentor::testing
