// Argument checks and dispatch for kernels/detect.h. Mismatched shapes throw yolo::Error naming
// both shapes.
#include "kernels/detect.h"

#include "kernels/dispatch.h"

namespace yolo {

void detect_decode(Context& ctx, const Tensor& x, const Tensor& anchors, double stride,
                   const Tensor& out, int64_t row_offset) {
  const char* op = "detect_decode";
  check_defined(op, "x", x);
  check_defined(op, "anchors", anchors);
  check_defined(op, "out", out);
  check_ndim(op, "x", x, 4);
  check_ndim(op, "anchors", anchors, 2);
  check_ndim(op, "out", out, 3);
  for (const Tensor* t : {&x, &anchors, &out}) {
    YOLO_CHECK(t->device() == ctx.device(), op << ": a tensor is on " << t->device().str()
                                               << " but the context is on " << ctx.device().str());
  }
  const int64_t na = anchors.dim(0), no = out.dim(2);
  YOLO_CHECK(anchors.dim(1) == 2, op << ": anchors must be (na, 2), got " << shape_str(anchors.shape()));
  YOLO_CHECK(no >= 5 && x.dim(3) == na * no,
             op << ": x (N, ny, nx, na * no) and out (N, R, no) disagree with " << na
                << " anchors: x " << shape_str(x.shape()) << " vs out " << shape_str(out.shape()));
  YOLO_CHECK(out.dim(0) == x.dim(0),
             op << ": x and out disagree in batch: " << shape_str(x.shape()) << " vs "
                << shape_str(out.shape()));
  YOLO_CHECK(row_offset >= 0 && row_offset + na * x.dim(1) * x.dim(2) <= out.dim(1),
             op << ": rows [" << row_offset << ", " << row_offset + na * x.dim(1) * x.dim(2)
                << ") of out " << shape_str(out.shape()) << " do not exist (x "
                << shape_str(x.shape()) << ")");
  if (ctx.device().is_cpu()) {
    YOLO_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::f64,
               op << ": on the cpu x must be f32 or f64, got " << dtype_name(x.dtype()));
    check_same_dtype(op, "x", x, "out", out);
    check_same_dtype(op, "x", x, "anchors", anchors);
  } else {
    YOLO_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::f16 || x.dtype() == DType::bf16,
               op << ": on cuda x must be f32, f16 or bf16, got " << dtype_name(x.dtype()));
    check_dtype(op, "out", out, DType::f32);
    check_dtype(op, "anchors", anchors, DType::f32);
  }
  YOLO_DISPATCH(ctx, detect_decode, ctx, x, anchors, stride, out, row_offset);
}

}  // namespace yolo
