// Errors that cross every layer of Kiln. Each carries a code that the Python API maps to the
// exception names ONNX Runtime users already catch (Fail, InvalidArgument, ...).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace kiln {

enum class ErrorCode {
  Fail,
  InvalidArgument,
  NoSuchFile,
  NoModel,
  InvalidGraph,
  NotImplemented,
  RuntimeException,
  InvalidProtobuf,
  EngineError,
};

const char* error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

// Throws kiln::Error with the pieces streamed together: fail(ErrorCode::InvalidArgument, "x: ", n).
template <typename... Args>
[[noreturn]] void fail(ErrorCode code, Args&&... args) {
  throw Error(code, detail::concat(std::forward<Args>(args)...));
}

}  // namespace kiln

// A check inside a kernel or pass; the message says what was expected and what came.
#define KILN_CHECK(cond, ...)                                          \
  do {                                                                 \
    if (!(cond)) ::kiln::fail(::kiln::ErrorCode::Fail, __VA_ARGS__);   \
  } while (0)
