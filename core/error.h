// yolo::Error and the check macros used everywhere in yolocore.
// A user's mistake (bad shape, bad file, wrong device) throws yolo::Error via YOLO_CHECK;
// a broken internal invariant aborts through YOLO_ASSERT (Note [Two kinds of failure]).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace yolo {

// Note [Two kinds of failure]
// YOLO_CHECK(cond, msg) is for conditions a caller can violate: it throws yolo::Error whose text
// says what went wrong and how to fix it. YOLO_ASSERT(cond) is for invariants of our own code:
// it prints file and line and aborts, because continuing would hide a bug. The library never
// calls exit(); only main() turns an Error into an exit status.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

[[noreturn]] void throw_error(const char* file, int line, const std::string& message);
[[noreturn]] void assert_fail(const char* file, int line, const char* expression);

}  // namespace yolo

// YOLO_CHECK(cond, a << b << c): throws yolo::Error("a b c (at file:line)") when cond is false.
#define YOLO_CHECK(cond, ...)                                            \
  do {                                                                   \
    if (!(cond)) {                                                       \
      std::ostringstream yolo_check_stream_;                             \
      yolo_check_stream_ << __VA_ARGS__;                                 \
      ::yolo::throw_error(__FILE__, __LINE__, yolo_check_stream_.str()); \
    }                                                                    \
  } while (0)

// YOLO_FAIL(a << b): unconditional throw with the same format.
#define YOLO_FAIL(...)                                                 \
  do {                                                                 \
    std::ostringstream yolo_check_stream_;                             \
    yolo_check_stream_ << __VA_ARGS__;                                 \
    ::yolo::throw_error(__FILE__, __LINE__, yolo_check_stream_.str()); \
  } while (0)

#define YOLO_ASSERT(cond)                                        \
  do {                                                           \
    if (!(cond)) ::yolo::assert_fail(__FILE__, __LINE__, #cond); \
  } while (0)

// Shared body of CUDA_CHECK, CUBLAS_CHECK, CUDNN_CHECK and NCCL_CHECK (core/cuda_check.h,
// core/nccl_check.h): evaluates `expr` once; if the status differs from `ok`, throws yolo::Error
// "<lib> error <code> (<name_fn(code)>) in <expr> (at file:line)". Statement-safe.
#define YOLO_GPU_CHECK_GEN(expr, ok, name_fn, lib)                                       \
  do {                                                                                   \
    auto yolo_gpu_status_ = (expr);                                                      \
    if (yolo_gpu_status_ != (ok)) {                                                      \
      std::ostringstream yolo_gpu_stream_;                                               \
      yolo_gpu_stream_ << lib << " error " << static_cast<int>(yolo_gpu_status_) << " (" \
                       << name_fn(yolo_gpu_status_) << ") in " << #expr;                 \
      ::yolo::throw_error(__FILE__, __LINE__, yolo_gpu_stream_.str());                   \
    }                                                                                    \
  } while (0)
