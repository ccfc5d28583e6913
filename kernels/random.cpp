// Dispatch for kernels/random.h.
#include "kernels/random.h"

#include "kernels/dispatch.h"

namespace yolo {

static void check_fill(const char* op, Context& ctx, const Tensor& t) {
  check_defined(op, "t", t);
  check_dtype(op, "t", t, DType::f32);
  YOLO_CHECK(t.device() == ctx.device(),
             op << ": tensor on " << t.device().str() << ", context on " << ctx.device().str());
}

void fill_uniform(Context& ctx, const Tensor& t, uint64_t seed, uint64_t offset, float lo,
                  float hi) {
  check_fill("fill_uniform", ctx, t);
  YOLO_DISPATCH(ctx, fill_uniform, ctx, t, seed, offset, lo, hi);
}

void fill_normal(Context& ctx, const Tensor& t, uint64_t seed, uint64_t offset, float mean,
                 float std) {
  check_fill("fill_normal", ctx, t);
  YOLO_DISPATCH(ctx, fill_normal, ctx, t, seed, offset, mean, std);
}

}  // namespace yolo
