// Status and Result<T>: the project's one way of reporting expected failures.
//
// Exceptions are for programming errors only. Adapters that call LibTorch, libpqxx or rabbitmq-c
// catch their exceptions and turn them into a Status; out-of-memory keeps its own code so the
// recovery ladder can tell it apart from everything else.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace segmentor {

enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,  // bad input from a user or a message: fix the input, do not retry
  kNotFound,         // a file, model or row that should exist does not
  kCorruptData,      // a file that exists but cannot be decoded
  kTooLarge,         // refused by a size limit (pixels, path length)
  kOutOfMemory,      // device or host allocation failure: the recovery ladder's business
  kUnavailable,      // a transient outage (broker, database): retry later
  kIo,               // the filesystem said no
  kInternal,         // a bug or an unexpected library failure
};

std::string_view to_string(ErrorCode code);

// A success, or an error code with a message written for the person who reads the log.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {
    assert(code != ErrorCode::kOk);
  }
  static Status Ok() { return {}; }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "corrupt data: photo.jpg: premature end of data"
  std::string to_string() const;

  // Returns a copy whose message is "<prefix>: <message>", code unchanged.
  Status with_context(std::string_view prefix) const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string message) {
  return {ErrorCode::kInvalidArgument, std::move(message)};
}
inline Status not_found(std::string message) { return {ErrorCode::kNotFound, std::move(message)}; }
inline Status corrupt_data(std::string message) {
  return {ErrorCode::kCorruptData, std::move(message)};
}
inline Status too_large(std::string message) { return {ErrorCode::kTooLarge, std::move(message)}; }
inline Status out_of_memory(std::string message) {
  return {ErrorCode::kOutOfMemory, std::move(message)};
}
inline Status unavailable(std::string message) {
  return {ErrorCode::kUnavailable, std::move(message)};
}
inline Status io_error(std::string message) { return {ErrorCode::kIo, std::move(message)}; }
inline Status internal_error(std::string message) {
  return {ErrorCode::kInternal, std::move(message)};
}

// A value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : data_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(data_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(data_); }
  const T& value() const& {
    assert(ok());
    return std::get<T>(data_);
  }
  T& value() & {
    assert(ok());
    return std::get<T>(data_);
  }
  T&& value() && {
    assert(ok());
    return std::get<T>(std::move(data_));
  }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  // The error; Status::Ok() when this holds a value.
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(data_); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace segmentor

#define SEGMENTOR_CONCAT_INNER(a, b) a##b
#define SEGMENTOR_CONCAT(a, b) SEGMENTOR_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function when `expr` is not ok.
#define SEGMENTOR_RETURN_IF_ERROR(expr)          \
  do {                                           \
    ::segmentor::Status _segmentor_st = (expr);  \
    if (!_segmentor_st.ok()) return _segmentor_st; \
  } while (false)

// `lhs = value of expr`, or returns its Status from the enclosing function.
#define SEGMENTOR_ASSIGN_OR_RETURN(lhs, expr) \
  SEGMENTOR_ASSIGN_OR_RETURN_IMPL(SEGMENTOR_CONCAT(_segmentor_result_, __LINE__), lhs, expr)
#define SEGMENTOR_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                    \
  if (!tmp.ok()) return tmp.status();                   \
  lhs = std::move(tmp).value()
