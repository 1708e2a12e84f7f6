#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace tinyfleet::storage {

// What went wrong, in terms a caller can act on. The server maps these 1:1 onto
// gRPC status codes.
enum class ErrorCode {
  kNotFound,            // a referenced object does not exist
  kAlreadyExists,       // a unique name or number is taken
  kInvalidArgument,     // the request itself is malformed
  kFailedPrecondition,  // the object is not in a state that allows the change
  kUnavailable,         // the database could not be reached
  kInternal,            // anything else: a bug or a broken invariant
};

const char* to_string(ErrorCode code);

struct Error {
  ErrorCode code;
  std::string message;  // names the object or field, e.g. "model 'kws' does not exist"
};

// Thrown only inside the storage room (within a transaction body); Database::transact
// catches it, rolls back, and hands the Error back as a value.
class StorageException : public std::runtime_error {
 public:
  explicit StorageException(Error error)
      : std::runtime_error(error.message), error_(std::move(error)) {}
  const Error& error() const { return error_; }

 private:
  Error error_;
};

[[noreturn]] inline void fail(ErrorCode code, std::string message) {
  throw StorageException(Error{code, std::move(message)});
}

// A value or the Error that prevented it: errors cross module lines as values.
template <class T>
class Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Expected(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// For operations that return nothing but may fail.
struct Done {};

}  // namespace tinyfleet::storage
