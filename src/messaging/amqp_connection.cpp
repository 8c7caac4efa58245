#include "messaging/amqp_connection.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <sys/time.h>

#include <cstring>
#include <vector>

namespace segmentor::messaging {
namespace {

amqp_bytes_t bytes_of(std::string_view text) {
  amqp_bytes_t bytes;
  bytes.len = text.size();
  // rabbitmq-c takes non-const pointers but only reads through them.
  bytes.bytes = const_cast<char*>(text.data());
  return bytes;
}

std::string string_of(amqp_bytes_t bytes) {
  if (bytes.len == 0 || bytes.bytes == nullptr) return {};
  return std::string(static_cast<const char*>(bytes.bytes), bytes.len);
}

timeval to_timeval(std::chrono::milliseconds duration) {
  timeval tv{};
  auto ms = std::max<std::int64_t>(0, duration.count());
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

// Our headers as an amqp_table_t. The entries point into `headers`, which must outlive the table.
class TableBuilder {
 public:
  explicit TableBuilder(const Headers& headers) {
    entries_.reserve(headers.size());
    for (const Header& header : headers) {
      amqp_table_entry_t entry{};
      entry.key = bytes_of(header.key);
      if (const auto* number = std::get_if<std::int64_t>(&header.value)) {
        entry.value.kind = AMQP_FIELD_KIND_I64;
        entry.value.value.i64 = *number;
      } else if (const auto* text = std::get_if<std::string>(&header.value)) {
        entry.value.kind = AMQP_FIELD_KIND_UTF8;
        entry.value.value.bytes = bytes_of(*text);
      } else if (const auto* flag = std::get_if<bool>(&header.value)) {
        entry.value.kind = AMQP_FIELD_KIND_BOOLEAN;
        entry.value.value.boolean = *flag ? 1 : 0;
      } else {
        entry.value.kind = AMQP_FIELD_KIND_F64;
        entry.value.value.f64 = std::get<double>(header.value);
      }
      entries_.push_back(entry);
    }
  }
  amqp_table_t table() {
    amqp_table_t table{};
    table.num_entries = static_cast<int>(entries_.size());
    table.entries = entries_.empty() ? nullptr : entries_.data();
    return table;
  }

 private:
  std::vector<amqp_table_entry_t> entries_;
};

Headers headers_of(const amqp_table_t& table) {
  Headers headers;
  for (int i = 0; i < table.num_entries; ++i) {
    const amqp_table_entry_t& entry = table.entries[i];
    const amqp_field_value_t& value = entry.value;
    std::string key = string_of(entry.key);
    switch (value.kind) {
      case AMQP_FIELD_KIND_BOOLEAN: headers.push_back({key, value.value.boolean != 0}); break;
      case AMQP_FIELD_KIND_I8: headers.push_back({key, std::int64_t{value.value.i8}}); break;
      case AMQP_FIELD_KIND_U8: headers.push_back({key, std::int64_t{value.value.u8}}); break;
      case AMQP_FIELD_KIND_I16: headers.push_back({key, std::int64_t{value.value.i16}}); break;
      case AMQP_FIELD_KIND_U16: headers.push_back({key, std::int64_t{value.value.u16}}); break;
      case AMQP_FIELD_KIND_I32: headers.push_back({key, std::int64_t{value.value.i32}}); break;
      case AMQP_FIELD_KIND_U32: headers.push_back({key, std::int64_t{value.value.u32}}); break;
      case AMQP_FIELD_KIND_I64: headers.push_back({key, value.value.i64}); break;
      case AMQP_FIELD_KIND_U64:
        headers.push_back({key, static_cast<std::int64_t>(value.value.u64)});
        break;
      case AMQP_FIELD_KIND_F32: headers.push_back({key, double{value.value.f32}}); break;
      case AMQP_FIELD_KIND_F64: headers.push_back({key, value.value.f64}); break;
      case AMQP_FIELD_KIND_UTF8:
      case AMQP_FIELD_KIND_BYTES: headers.push_back({key, string_of(value.value.bytes)}); break;
      default: break;  // tables, arrays, decimals, timestamps: not carried (wire_format.h)
    }
  }
  return headers;
}

bool is_fatal_library_error(int code) {
  // Everything but a plain timeout leaves the connection unusable.
  return code != AMQP_STATUS_OK && code != AMQP_STATUS_TIMEOUT;
}

}  // namespace

std::string BrokerUrl::display() const {
  return host + ":" + std::to_string(port) + "/" + (vhost == "/" ? "" : vhost);
}

Result<BrokerUrl> parse_broker_url(std::string_view url) {
  // amqp_parse_url writes into its argument and points the result into it.
  std::vector<char> buffer(url.begin(), url.end());
  buffer.push_back('\0');
  amqp_connection_info info{};
  amqp_default_connection_info(&info);
  int rc = amqp_parse_url(buffer.data(), &info);
  if (rc != AMQP_STATUS_OK) {
    return invalid_argument(std::string("BUS_BROKER is not a valid amqp:// URL (") +
                            amqp_error_string2(rc) + ")");
  }
  BrokerUrl out;
  out.host = info.host != nullptr ? info.host : "";
  out.port = info.port;
  out.user = info.user != nullptr ? info.user : "";
  out.password = info.password != nullptr ? info.password : "";
  out.vhost = (info.vhost == nullptr || info.vhost[0] == '\0') ? "/" : info.vhost;
  out.tls = info.ssl != 0;
  if (out.host.empty()) return invalid_argument("BUS_BROKER has no host");
  return out;
}

AmqpConnection::AmqpConnection(amqp_connection_state_t_* state) : state_(state) {}

AmqpConnection::~AmqpConnection() {
  if (logged_in_ && healthy_) {
    // Best effort; a dead peer answers with a socket error, bounded by the RPC timeout.
    (void)amqp_connection_close(state_, AMQP_REPLY_SUCCESS);
  }
  amqp_destroy_connection(state_);
}

Result<std::unique_ptr<AmqpConnection>> AmqpConnection::create(const BrokerUrl& url,
                                                               const ConnectOptions& options) {
  if (url.tls) {
    return invalid_argument("amqps:// is not supported by this build; use amqp://");
  }
  amqp_connection_state_t state = amqp_new_connection();
  if (state == nullptr) return internal_error("amqp_new_connection failed (out of memory)");
  std::unique_ptr<AmqpConnection> connection(new AmqpConnection(state));
  const std::string where = "broker " + url.display();

  amqp_socket_t* socket = amqp_tcp_socket_new(state);
  if (socket == nullptr) return internal_error("amqp_tcp_socket_new failed");
  timeval connect_tv = to_timeval(options.connect_timeout);
  int rc = amqp_socket_open_noblock(socket, url.host.c_str(), url.port, &connect_tv);
  if (rc != AMQP_STATUS_OK) {
    connection->healthy_ = false;
    return unavailable(where + ": cannot connect: " + amqp_error_string2(rc));
  }
  (void)amqp_set_handshake_timeout(state, &connect_tv);
  timeval rpc_tv = to_timeval(options.rpc_timeout);
  (void)amqp_set_rpc_timeout(state, &rpc_tv);

  // Client properties: the connection's name shows up in the broker's management tools.
  Headers client_properties = {{"connection_name", options.connection_name}};
  TableBuilder properties(client_properties);
  amqp_table_t table = properties.table();
  amqp_rpc_reply_t reply = amqp_login_with_properties(
      state, url.vhost.c_str(), 0, AMQP_DEFAULT_FRAME_SIZE, options.heartbeat_seconds, &table,
      AMQP_SASL_METHOD_PLAIN, url.user.c_str(), url.password.c_str());
  if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
    connection->healthy_ = false;
    std::string detail;
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
      detail = amqp_error_string2(reply.library_error);
      if (reply.library_error == AMQP_STATUS_CONNECTION_CLOSED) {
        detail += " (wrong user/password or vhost '" + url.vhost + "'?)";
      }
    } else if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
               reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
      auto* close = static_cast<amqp_connection_close_t*>(reply.reply.decoded);
      detail = std::to_string(close->reply_code) + " " + string_of(close->reply_text);
    } else {
      detail = "unexpected reply";
    }
    return unavailable(where + ": login failed: " + detail);
  }
  connection->logged_in_ = true;
  return connection;
}

int AmqpConnection::socket_fd() const { return amqp_get_sockfd(state_); }

int AmqpConnection::heartbeat_seconds() const { return amqp_get_heartbeat(state_); }

bool AmqpConnection::has_buffered_data() const {
  return amqp_frames_enqueued(state_) != 0 || amqp_data_in_buffer(state_) != 0;
}

Status AmqpConnection::library_error(std::string_view what, int code) {
  if (is_fatal_library_error(code)) healthy_ = false;
  return unavailable(std::string(what) + ": " + amqp_error_string2(code));
}

Status AmqpConnection::check_rpc(std::string_view what, std::uint16_t channel) {
  amqp_rpc_reply_t reply = amqp_get_rpc_reply(state_);
  switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL: return Status::Ok();
    case AMQP_RESPONSE_NONE: return internal_error(std::string(what) + ": no RPC reply");
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      // A timed-out RPC leaves the reply in flight: the connection's state is unknown.
      healthy_ = false;
      return unavailable(std::string(what) + ": " + amqp_error_string2(reply.library_error));
    case AMQP_RESPONSE_SERVER_EXCEPTION: break;
  }
  if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
    auto* close = static_cast<amqp_connection_close_t*>(reply.reply.decoded);
    std::string text = string_of(close->reply_text);
    amqp_connection_close_ok_t close_ok{};
    (void)amqp_send_method(state_, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &close_ok);
    healthy_ = false;
    return unavailable(std::string(what) + ": broker closed the connection: " +
                       std::to_string(close->reply_code) + " " + text);
  }
  if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    auto* close = static_cast<amqp_channel_close_t*>(reply.reply.decoded);
    int code = close->reply_code;
    std::string text = string_of(close->reply_text);
    // Answer close-ok so the channel number can be opened again.
    amqp_channel_close_ok_t close_ok{};
    (void)amqp_send_method(state_, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok);
    std::string message = std::string(what) + ": broker closed the channel: " +
                          std::to_string(code) + " " + text;
    if (code == AMQP_NOT_FOUND) return not_found(message);
    if (code == AMQP_PRECONDITION_FAILED) return invalid_argument(message);
    return internal_error(message);
  }
  return internal_error(std::string(what) + ": unexpected broker reply");
}

Status AmqpConnection::open_channel(std::uint16_t channel) {
  amqp_channel_open(state_, channel);
  return check_rpc("channel.open " + std::to_string(channel), channel);
}

Status AmqpConnection::close_channel(std::uint16_t channel) {
  amqp_rpc_reply_t reply = amqp_channel_close(state_, channel, AMQP_REPLY_SUCCESS);
  if (reply.reply_type == AMQP_RESPONSE_NORMAL) return Status::Ok();
  return check_rpc("channel.close " + std::to_string(channel), channel);
}

Status AmqpConnection::confirm_select(std::uint16_t channel) {
  amqp_confirm_select(state_, channel);
  return check_rpc("confirm.select on channel " + std::to_string(channel), channel);
}

Status AmqpConnection::tx_select(std::uint16_t channel) {
  amqp_tx_select(state_, channel);
  return check_rpc("tx.select on channel " + std::to_string(channel), channel);
}

Status AmqpConnection::tx_commit(std::uint16_t channel) {
  // Frames that arrive meanwhile (deliveries, heartbeats) are queued by rabbitmq-c for poll().
  amqp_tx_commit(state_, channel);
  return check_rpc("tx.commit on channel " + std::to_string(channel), channel);
}

Status AmqpConnection::declare_exchange(std::uint16_t channel, std::string_view name,
                                        std::string_view type, bool durable, bool passive) {
  amqp_exchange_declare(state_, channel, bytes_of(name), bytes_of(type), passive ? 1 : 0,
                        durable ? 1 : 0, /*auto_delete=*/0, /*internal=*/0, amqp_empty_table);
  return check_rpc("exchange.declare '" + std::string(name) + "'", channel);
}

Result<AmqpConnection::QueueState> AmqpConnection::declare_queue(
    std::uint16_t channel, std::string_view name, bool passive, bool durable,
    std::optional<std::int64_t> arguments_ttl_ms) {
  Headers arguments;
  if (arguments_ttl_ms) arguments.push_back({"x-message-ttl", *arguments_ttl_ms});
  TableBuilder table(arguments);
  amqp_queue_declare_ok_t* ok =
      amqp_queue_declare(state_, channel, bytes_of(name), passive ? 1 : 0, durable ? 1 : 0,
                         /*exclusive=*/0, /*auto_delete=*/0, table.table());
  SEGMENTOR_RETURN_IF_ERROR(check_rpc("queue.declare '" + std::string(name) + "'", channel));
  if (ok == nullptr) return internal_error("queue.declare: no reply");
  return QueueState{ok->message_count, ok->consumer_count};
}

Status AmqpConnection::bind_queue(std::uint16_t channel, std::string_view queue,
                                  std::string_view exchange, std::string_view routing_key) {
  amqp_queue_bind(state_, channel, bytes_of(queue), bytes_of(exchange), bytes_of(routing_key),
                  amqp_empty_table);
  return check_rpc("queue.bind '" + std::string(queue) + "' to '" + std::string(exchange) +
                   "' with '" + std::string(routing_key) + "'", channel);
}

Status AmqpConnection::purge_queue(std::uint16_t channel, std::string_view queue) {
  amqp_queue_purge(state_, channel, bytes_of(queue));
  return check_rpc("queue.purge '" + std::string(queue) + "'", channel);
}

Status AmqpConnection::delete_queue(std::uint16_t channel, std::string_view queue) {
  amqp_queue_delete(state_, channel, bytes_of(queue), 0, 0);
  return check_rpc("queue.delete '" + std::string(queue) + "'", channel);
}

Status AmqpConnection::qos(std::uint16_t channel, std::uint16_t prefetch_count) {
  // global = false: RabbitMQ applies the limit to each consumer started afterwards on this channel.
  amqp_basic_qos(state_, channel, 0, prefetch_count, /*global=*/0);
  return check_rpc("basic.qos prefetch " + std::to_string(prefetch_count), channel);
}

Result<std::string> AmqpConnection::consume(std::uint16_t channel, std::string_view queue) {
  amqp_basic_consume_ok_t* ok = amqp_basic_consume(state_, channel, bytes_of(queue),
                                                   amqp_empty_bytes, /*no_local=*/0,
                                                   /*no_ack=*/0, /*exclusive=*/0,
                                                   amqp_empty_table);
  SEGMENTOR_RETURN_IF_ERROR(check_rpc("basic.consume '" + std::string(queue) + "'", channel));
  if (ok == nullptr) return internal_error("basic.consume: no reply");
  return string_of(ok->consumer_tag);
}

Status AmqpConnection::cancel(std::uint16_t channel, std::string_view consumer_tag) {
  amqp_basic_cancel(state_, channel, bytes_of(consumer_tag));
  return check_rpc("basic.cancel '" + std::string(consumer_tag) + "'", channel);
}

Status AmqpConnection::publish(std::uint16_t channel, std::string_view exchange,
                               std::string_view routing_key, bool mandatory,
                               const OutgoingMessage& message) {
  amqp_basic_properties_t properties{};
  properties._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
  properties.content_type = bytes_of(message.content_type);
  properties.delivery_mode = message.persistent ? 2 : 1;
  if (!message.correlation_id.empty()) {
    properties._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
    properties.correlation_id = bytes_of(message.correlation_id);
  }
  TableBuilder headers(message.headers);
  if (!message.headers.empty()) {
    properties._flags |= AMQP_BASIC_HEADERS_FLAG;
    properties.headers = headers.table();
  }
  int rc = amqp_basic_publish(state_, channel, bytes_of(exchange), bytes_of(routing_key),
                              mandatory ? 1 : 0, /*immediate=*/0, &properties,
                              bytes_of(message.body));
  if (rc != AMQP_STATUS_OK) {
    return library_error("basic.publish to '" + std::string(exchange) + "' with '" +
                             std::string(routing_key) + "'",
                         rc);
  }
  return Status::Ok();
}

Status AmqpConnection::ack(std::uint16_t channel, std::uint64_t delivery_tag) {
  int rc = amqp_basic_ack(state_, channel, delivery_tag, /*multiple=*/0);
  if (rc != AMQP_STATUS_OK) return library_error("basic.ack", rc);
  return Status::Ok();
}

Status AmqpConnection::nack(std::uint16_t channel, std::uint64_t delivery_tag, bool requeue) {
  int rc = amqp_basic_nack(state_, channel, delivery_tag, /*multiple=*/0, requeue ? 1 : 0);
  if (rc != AMQP_STATUS_OK) return library_error("basic.nack", rc);
  return Status::Ok();
}

Result<std::optional<InboundEvent>> AmqpConnection::poll(std::chrono::milliseconds timeout) {
  if (!healthy_) return unavailable("connection is closed");
  amqp_frame_t frame{};
  timeval tv = to_timeval(timeout);
  int rc = amqp_simple_wait_frame_noblock(state_, &frame, &tv);
  if (rc == AMQP_STATUS_TIMEOUT) return std::optional<InboundEvent>{};
  if (rc != AMQP_STATUS_OK) return library_error("waiting for the broker", rc);

  std::optional<InboundEvent> event;
  if (frame.frame_type != AMQP_FRAME_METHOD) {
    // A stray content frame (its method was consumed elsewhere): nothing to do with it.
    amqp_maybe_release_buffers(state_);
    return event;
  }
  const std::uint16_t channel = frame.channel;
  switch (frame.payload.method.id) {
    case AMQP_BASIC_DELIVER_METHOD: {
      auto* deliver = static_cast<amqp_basic_deliver_t*>(frame.payload.method.decoded);
      InboundDelivery delivery;
      delivery.channel = channel;
      delivery.delivery_tag = deliver->delivery_tag;
      delivery.redelivered = deliver->redelivered != 0;
      delivery.exchange = string_of(deliver->exchange);
      delivery.routing_key = string_of(deliver->routing_key);
      amqp_message_t message{};
      amqp_rpc_reply_t reply = amqp_read_message(state_, channel, &message, 0);
      if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
        healthy_ = false;
        return unavailable("reading a delivery's content failed");
      }
      delivery.body = string_of(message.body);
      if ((message.properties._flags & AMQP_BASIC_CORRELATION_ID_FLAG) != 0) {
        delivery.correlation_id = string_of(message.properties.correlation_id);
      }
      if ((message.properties._flags & AMQP_BASIC_HEADERS_FLAG) != 0) {
        delivery.headers = headers_of(message.properties.headers);
      }
      amqp_destroy_message(&message);
      event = std::move(delivery);
      break;
    }
    case AMQP_BASIC_ACK_METHOD: {
      auto* ack = static_cast<amqp_basic_ack_t*>(frame.payload.method.decoded);
      event = ConfirmAck{channel, ack->delivery_tag, ack->multiple != 0};
      break;
    }
    case AMQP_BASIC_NACK_METHOD: {
      auto* nack = static_cast<amqp_basic_nack_t*>(frame.payload.method.decoded);
      event = ConfirmNack{channel, nack->delivery_tag, nack->multiple != 0};
      break;
    }
    case AMQP_BASIC_RETURN_METHOD: {
      auto* returned = static_cast<amqp_basic_return_t*>(frame.payload.method.decoded);
      Returned out{channel, returned->reply_code, string_of(returned->reply_text),
                   string_of(returned->routing_key)};
      amqp_message_t message{};
      amqp_rpc_reply_t reply = amqp_read_message(state_, channel, &message, 0);
      if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
        healthy_ = false;
        return unavailable("reading a returned message failed");
      }
      amqp_destroy_message(&message);
      event = std::move(out);
      break;
    }
    case AMQP_CHANNEL_CLOSE_METHOD: {
      auto* close = static_cast<amqp_channel_close_t*>(frame.payload.method.decoded);
      ChannelClosed out{channel, close->reply_code, string_of(close->reply_text)};
      amqp_channel_close_ok_t close_ok{};
      (void)amqp_send_method(state_, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok);
      event = std::move(out);
      break;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
      auto* close = static_cast<amqp_connection_close_t*>(frame.payload.method.decoded);
      std::string text = std::to_string(close->reply_code) + " " + string_of(close->reply_text);
      amqp_connection_close_ok_t close_ok{};
      (void)amqp_send_method(state_, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &close_ok);
      healthy_ = false;
      return unavailable("broker closed the connection: " + text);
    }
    case AMQP_BASIC_CANCEL_METHOD:
      event = ConsumerCancelled{channel};
      break;
    default:
      break;  // e.g. connection.blocked: informational
  }
  amqp_maybe_release_buffers(state_);
  return event;
}

}  // namespace segmentor::messaging
