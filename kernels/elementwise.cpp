// Argument checks and dispatch for kernels/elementwise.h (add, add_scaled, mul, scale, fill, copy,
// cast). Every check throws yolo::Error naming the op and both shapes / dtypes / devices.
#include "kernels/elementwise.h"

#include "kernels/dispatch.h"

namespace yolo {
namespace {

void check_on_context(const char* op, const char* name, const Tensor& t, const Context& ctx) {
  check_defined(op, name, t);
  YOLO_CHECK(t.device() == ctx.device(), op << ": " << name << " is on " << t.device().str()
                                            << " but the context is on " << ctx.device().str()
                                            << " (copy it with Context::to_device/to_host)");
}

// Arithmetic dtypes: f32 and f64 on the CPU, f32, f16 and bf16 on CUDA.
void check_math_dtype(const char* op, const char* name, const Tensor& t, const Context& ctx) {
  const DType d = t.dtype();
  const bool ok = ctx.device().is_cpu() ? (d == DType::f32 || d == DType::f64)
                                        : (d == DType::f32 || d == DType::f16 || d == DType::bf16);
  YOLO_CHECK(ok, op << ": " << name << " has dtype " << dtype_name(d) << ", which "
                    << ctx.device().str() << " does not support (cpu: f32, f64; cuda: f32, f16, bf16)");
}

void check_binary(const char* op, Context& ctx, const Tensor& a, const Tensor& b,
                  const Tensor& out) {
  check_on_context(op, "a", a, ctx);
  check_on_context(op, "b", b, ctx);
  check_on_context(op, "out", out, ctx);
  check_same_shape(op, "a", a, "b", b);
  check_same_shape(op, "a", a, "out", out);
  check_same_dtype(op, "a", a, "b", b);
  check_same_dtype(op, "a", a, "out", out);
  check_math_dtype(op, "a", a, ctx);
}

bool cast_pair_supported(DType from, DType to, bool cpu) {
  auto half_family = [](DType d) { return d == DType::f32 || d == DType::f16 || d == DType::bf16; };
  if (from == to) return true;
  if (half_family(from) && half_family(to)) return true;
  return cpu && ((from == DType::f32 && to == DType::f64) || (from == DType::f64 && to == DType::f32));
}

}  // namespace

void add(Context& ctx, const Tensor& a, const Tensor& b, const Tensor& out) {
  check_binary("add", ctx, a, b, out);
  YOLO_DISPATCH(ctx, add, ctx, a, b, out);
}

void add_scaled(Context& ctx, const Tensor& a, const Tensor& b, double alpha, const Tensor& out) {
  check_binary("add_scaled", ctx, a, b, out);
  YOLO_DISPATCH(ctx, add_scaled, ctx, a, b, alpha, out);
}

void mul(Context& ctx, const Tensor& a, const Tensor& b, const Tensor& out) {
  check_binary("mul", ctx, a, b, out);
  YOLO_DISPATCH(ctx, mul, ctx, a, b, out);
}

void scale(Context& ctx, const Tensor& x, double alpha, const Tensor& out) {
  check_on_context("scale", "x", x, ctx);
  check_on_context("scale", "out", out, ctx);
  check_same_shape("scale", "x", x, "out", out);
  check_same_dtype("scale", "x", x, "out", out);
  check_math_dtype("scale", "x", x, ctx);
  YOLO_DISPATCH(ctx, scale, ctx, x, alpha, out);
}

void fill(Context& ctx, const Tensor& t, double value) {
  check_on_context("fill", "t", t, ctx);
  const DType d = t.dtype();
  YOLO_CHECK(d == DType::f32 || d == DType::f16 || d == DType::bf16 ||
                 (d == DType::f64 && ctx.device().is_cpu()),
             "fill: t has dtype " << dtype_name(d) << ", which " << ctx.device().str()
                                  << " does not support (cpu: f32, f64, f16, bf16; cuda: f32, "
                                     "f16, bf16)");
  YOLO_DISPATCH(ctx, fill, ctx, t, value);
}

void copy(Context& ctx, const Tensor& src, const Tensor& dst) {
  check_on_context("copy", "src", src, ctx);
  check_on_context("copy", "dst", dst, ctx);
  check_same_shape("copy", "src", src, "dst", dst);
  check_same_dtype("copy", "src", src, "dst", dst);
  YOLO_DISPATCH(ctx, copy, ctx, src, dst);
}

void cast(Context& ctx, const Tensor& src, const Tensor& dst) {
  check_on_context("cast", "src", src, ctx);
  check_on_context("cast", "dst", dst, ctx);
  check_same_shape("cast", "src", src, "dst", dst);
  YOLO_CHECK(cast_pair_supported(src.dtype(), dst.dtype(), ctx.device().is_cpu()),
             "cast: " << dtype_name(src.dtype()) << " -> " << dtype_name(dst.dtype())
                      << " is not supported on " << ctx.device().str()
                      << " (f32 <-> f16 <-> bf16 everywhere, f32 <-> f64 on the cpu)");
  YOLO_DISPATCH(ctx, cast, ctx, src, dst);
}

}  // namespace yolo
