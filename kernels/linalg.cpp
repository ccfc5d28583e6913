// Argument checks and device dispatch for kernels/linalg.h (GEMM, reductions, BCE-with-logits).
// Every bad shape, dtype or device throws yolo::Error naming both tensors; the maths lives in
// kernels/cpu/linalg.cpp and kernels/cuda/linalg.cu.
#include "kernels/linalg.h"

#include "kernels/dispatch.h"

namespace yolo {
namespace {

// CPU computes in f32 or f64; CUDA in f32 only.
void check_float_on(const char* op, const Context& ctx, const char* name, const Tensor& t) {
  check_defined(op, name, t);
  YOLO_CHECK(t.device() == ctx.device(), op << ": " << name << " is on " << t.device().str()
                                            << " but the context is on " << ctx.device().str()
                                            << " (copy it with Context::to_device/to_host)");
  if (ctx.device().is_cpu()) {
    YOLO_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64,
               op << ": " << name << " has dtype " << dtype_name(t.dtype())
                  << "; the CPU kernels take f32 or f64");
  } else {
    YOLO_CHECK(t.dtype() == DType::f32, op << ": " << name << " has dtype " << dtype_name(t.dtype())
                                           << "; the CUDA kernels take f32");
  }
}

void check_scalar(const char* op, const char* name, const Tensor& t) {
  YOLO_CHECK(t.numel() == 1,
             op << ": " << name << " must hold one element, got shape " << shape_str(t.shape()));
}

void check_reduce_all(const char* op, Context& ctx, const Tensor& x, const Tensor& out) {
  check_float_on(op, ctx, "x", x);
  check_float_on(op, ctx, "out", out);
  check_same_dtype(op, "x", x, "out", out);
  check_scalar(op, "out", out);
}

void check_bce(const char* op, Context& ctx, const Tensor& logits, const Tensor& targets) {
  check_float_on(op, ctx, "logits", logits);
  check_float_on(op, ctx, "targets", targets);
  check_same_shape(op, "logits", logits, "targets", targets);
  check_same_dtype(op, "logits", logits, "targets", targets);
}

}  // namespace

void gemm(Context& ctx, bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b,
          double beta, const Tensor& c) {
  const char* op = "gemm";
  check_float_on(op, ctx, "a", a);
  check_float_on(op, ctx, "b", b);
  check_float_on(op, ctx, "c", c);
  check_ndim(op, "a", a, 2);
  check_ndim(op, "b", b, 2);
  check_ndim(op, "c", c, 2);
  check_same_dtype(op, "a", a, "b", b);
  check_same_dtype(op, "a", a, "c", c);
  const int64_t m = trans_a ? a.dim(1) : a.dim(0);
  const int64_t ka = trans_a ? a.dim(0) : a.dim(1);
  const int64_t kb = trans_b ? b.dim(1) : b.dim(0);
  const int64_t n = trans_b ? b.dim(0) : b.dim(1);
  YOLO_CHECK(ka == kb, op << ": inner dimensions disagree: a " << shape_str(a.shape())
                          << (trans_a ? " (transposed)" : "") << " gives K = " << ka << ", b "
                          << shape_str(b.shape()) << (trans_b ? " (transposed)" : "")
                          << " gives K = " << kb);
  YOLO_CHECK(c.dim(0) == m && c.dim(1) == n,
             op << ": c has shape " << shape_str(c.shape()) << ", expected " << shape_str({m, n})
                << " from a " << shape_str(a.shape()) << " and b " << shape_str(b.shape()));
  YOLO_DISPATCH(ctx, gemm, ctx, trans_a, trans_b, alpha, a, b, beta, c);
}

void sum_all(Context& ctx, const Tensor& x, const Tensor& out) {
  check_reduce_all("sum_all", ctx, x, out);
  YOLO_DISPATCH(ctx, sum_all, ctx, x, out);
}

void mean_all(Context& ctx, const Tensor& x, const Tensor& out) {
  check_reduce_all("mean_all", ctx, x, out);
  YOLO_DISPATCH(ctx, mean_all, ctx, x, out);
}

void sum_channels(Context& ctx, const Tensor& x, const Tensor& out, bool accumulate) {
  const char* op = "sum_channels";
  check_float_on(op, ctx, "x", x);
  check_float_on(op, ctx, "out", out);
  check_same_dtype(op, "x", x, "out", out);
  YOLO_CHECK(x.ndim() >= 1,
             op << ": x must have at least one dimension, got " << shape_str(x.shape()));
  YOLO_CHECK(out.numel() == x.dim(-1), op << ": out " << shape_str(out.shape())
                                          << " must hold one value per channel of x "
                                          << shape_str(x.shape()) << " (" << x.dim(-1) << ")");
  YOLO_DISPATCH(ctx, sum_channels, ctx, x, out, accumulate);
}

void bce_with_logits_fwd(Context& ctx, const Tensor& logits, const Tensor& targets,
                         double pos_weight, const Tensor& out) {
  const char* op = "bce_with_logits_fwd";
  check_bce(op, ctx, logits, targets);
  check_float_on(op, ctx, "out", out);
  check_same_dtype(op, "logits", logits, "out", out);
  check_scalar(op, "out", out);
  YOLO_DISPATCH(ctx, bce_with_logits_fwd, ctx, logits, targets, pos_weight, out);
}

void bce_with_logits_bwd(Context& ctx, const Tensor& logits, const Tensor& targets,
                         double pos_weight, const Tensor& dloss, const Tensor& dlogits) {
  const char* op = "bce_with_logits_bwd";
  check_bce(op, ctx, logits, targets);
  check_float_on(op, ctx, "dloss", dloss);
  check_float_on(op, ctx, "dlogits", dlogits);
  check_same_dtype(op, "logits", logits, "dloss", dloss);
  check_same_dtype(op, "logits", logits, "dlogits", dlogits);
  check_scalar(op, "dloss", dloss);
  check_same_shape(op, "logits", logits, "dlogits", dlogits);
  YOLO_DISPATCH(ctx, bce_with_logits_bwd, ctx, logits, targets, pos_weight, dloss, dlogits);
}

}  // namespace yolo
