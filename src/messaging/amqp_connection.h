// A thin RAII adapter over one rabbitmq-c connection: every library call's reply is checked and
// turned into a Status that says what failed. No policy here (no retry, no reconnect): that is
// BrokerClient's job.
//
// Thread-compatibility: rabbitmq-c connections are not thread-safe. An AmqpConnection must be
// used by one thread at a time; BrokerClient confines it to its I/O thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/status.h"
#include "messaging/wire_format.h"

// Opaque rabbitmq-c handle, so that callers need not include <amqp.h>.
struct amqp_connection_state_t_;

namespace segmentor::messaging {

// BUS_BROKER, parsed by rabbitmq-c's amqp_parse_url.
struct BrokerUrl {
  std::string host;
  int port = 5672;
  std::string user;
  std::string password;
  // "amqp://host/" has an empty path, which rabbitmq-c reads as vhost "": like the Python
  // clients of the pipeline we map that to the default vhost "/".
  std::string vhost = "/";
  bool tls = false;
  // "host:port/vhost": safe for logs (no credentials).
  std::string display() const;
};
Result<BrokerUrl> parse_broker_url(std::string_view url);

struct ConnectOptions {
  std::chrono::milliseconds connect_timeout{5000};  // TCP connect and AMQP handshake
  std::chrono::milliseconds rpc_timeout{10000};     // each synchronous method (declare, qos, ...)
  int heartbeat_seconds = 30;                       // 0 disables heartbeats
  std::string connection_name = "product-segmentor";
};

// A message as it leaves: body bytes and the properties we set.
struct OutgoingMessage {
  std::string body;
  std::string correlation_id;  // empty: no correlation_id property
  Headers headers;
  std::string content_type = "application/json";
  bool persistent = true;  // delivery_mode = 2
};

// What the broker can send us while we wait.
struct InboundDelivery {
  std::uint16_t channel = 0;
  std::uint64_t delivery_tag = 0;
  bool redelivered = false;
  std::string exchange;
  std::string routing_key;
  std::string body;
  std::string correlation_id;
  Headers headers;
};
struct ConfirmAck {  // basic.ack on a confirm channel
  std::uint16_t channel = 0;
  std::uint64_t delivery_tag = 0;
  bool multiple = false;
};
struct ConfirmNack {  // basic.nack on a confirm channel: the broker could not store the message
  std::uint16_t channel = 0;
  std::uint64_t delivery_tag = 0;
  bool multiple = false;
};
struct Returned {  // basic.return: a mandatory publish that no queue took
  std::uint16_t channel = 0;
  int reply_code = 0;
  std::string reply_text;
  std::string routing_key;
};
struct ChannelClosed {  // the broker closed one channel (close-ok already sent)
  std::uint16_t channel = 0;
  int reply_code = 0;
  std::string reply_text;
};
struct ConsumerCancelled {  // the broker cancelled a consumer (e.g. its queue was deleted)
  std::uint16_t channel = 0;
};
using InboundEvent =
    std::variant<InboundDelivery, ConfirmAck, ConfirmNack, Returned, ChannelClosed,
                 ConsumerCancelled>;

// One open, logged-in AMQP connection. Owns the rabbitmq-c state and its socket; the destructor
// closes the connection politely when it is still healthy.
class AmqpConnection {
 public:
  // Connects and logs in. kUnavailable when the broker cannot be reached or refuses the login.
  static Result<std::unique_ptr<AmqpConnection>> create(const BrokerUrl& url,
                                                        const ConnectOptions& options);
  ~AmqpConnection();
  AmqpConnection(const AmqpConnection&) = delete;
  AmqpConnection& operator=(const AmqpConnection&) = delete;

  // False once a socket error, heartbeat timeout or connection.close was seen: reconnect.
  bool healthy() const { return healthy_; }
  int socket_fd() const;
  // Negotiated heartbeat in seconds (0 = none).
  int heartbeat_seconds() const;

  Status open_channel(std::uint16_t channel);
  Status close_channel(std::uint16_t channel);
  Status confirm_select(std::uint16_t channel);
  // Puts `channel` in transaction mode (tx.select): its publishes, acks and nacks take effect
  // only at tx_commit, together, and are discarded if the channel closes first. A channel is
  // either transactional or in confirm mode, never both.
  Status tx_select(std::uint16_t channel);
  // tx.commit; returns once the broker answered commit-ok (the publishes are stored).
  Status tx_commit(std::uint16_t channel);
  Status declare_exchange(std::uint16_t channel, std::string_view name, std::string_view type,
                          bool durable, bool passive);
  struct QueueState {
    std::uint32_t message_count = 0;
    std::uint32_t consumer_count = 0;
  };
  // Durable, not exclusive, not auto-delete, no arguments: the only kind CONTRACT §1 allows;
  // `durable` and `arguments_ttl_ms` exist so tests can prove a mismatch is refused.
  Result<QueueState> declare_queue(std::uint16_t channel, std::string_view name, bool passive,
                                   bool durable = true,
                                   std::optional<std::int64_t> arguments_ttl_ms = std::nullopt);
  Status bind_queue(std::uint16_t channel, std::string_view queue, std::string_view exchange,
                    std::string_view routing_key);
  Status purge_queue(std::uint16_t channel, std::string_view queue);
  Status delete_queue(std::uint16_t channel, std::string_view queue);
  Status qos(std::uint16_t channel, std::uint16_t prefetch_count);
  // Starts a manual-ack consumer; returns the consumer tag.
  Result<std::string> consume(std::uint16_t channel, std::string_view queue);
  Status cancel(std::uint16_t channel, std::string_view consumer_tag);

  Status publish(std::uint16_t channel, std::string_view exchange, std::string_view routing_key,
                 bool mandatory, const OutgoingMessage& message);
  Status ack(std::uint16_t channel, std::uint64_t delivery_tag);
  Status nack(std::uint16_t channel, std::uint64_t delivery_tag, bool requeue);

  // True when a frame is already buffered, so that poll() would not block.
  bool has_buffered_data() const;
  // Waits up to `timeout` (0 = just look) for one event. nullopt on timeout; kUnavailable when
  // the connection broke (then healthy() is false). Also services heartbeats.
  Result<std::optional<InboundEvent>> poll(std::chrono::milliseconds timeout);

 private:
  explicit AmqpConnection(amqp_connection_state_t_* state);
  // Checks the reply of the last synchronous method; `what` names it for the message.
  Status check_rpc(std::string_view what, std::uint16_t channel);
  Status library_error(std::string_view what, int code);

  amqp_connection_state_t_* state_;
  bool healthy_ = true;
  bool logged_in_ = false;
};

}  // namespace segmentor::messaging
