#pragma once

#include <string>
#include <utility>
#include <variant>

namespace tinyfleet::optimizer_service {

// Why a model was refused or a file could not be read; the message names the node,
// the attribute or the numbers.
struct CompileError {
  std::string message;
};

// A value or the CompileError that prevented it.
template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}             // NOLINT(google-explicit-constructor)
  Result(CompileError error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const CompileError& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, CompileError> v_;
};

}  // namespace tinyfleet::optimizer_service
