// Argument checks and dispatch for kernels/pool.h (max pool with stride 1 and padding k/2, and the
// SPPF cascade). Bad shapes, dtypes, devices or kernel sizes throw yolo::Error naming both shapes.
#include "kernels/pool.h"

#include "kernels/checks.h"
#include "kernels/dispatch.h"

namespace yolo {
namespace {

void check_k(const char* op, int k) {
  YOLO_CHECK(k >= 1 && k % 2 == 1, op << ": kernel size k = " << k
                                      << " must be odd and positive (padding is k / 2)");
}

void check_distinct(const char* op, const char* a_name, const Tensor& a, const char* b_name,
                    const Tensor& b) {
  YOLO_CHECK(a.raw() != b.raw(), op << ": " << a_name << " and " << b_name
                                    << " must be different tensors (the op reads neighbours)");
}

}  // namespace

void maxpool_fwd(Context& ctx, const Tensor& x, const Tensor& y, int k) {
  check_k("maxpool_fwd", k);
  check_activation("maxpool_fwd", "x", x, ctx);
  check_activation("maxpool_fwd", "y", y, ctx);
  check_same_shape("maxpool_fwd", "x", x, "y", y);
  check_same_dtype("maxpool_fwd", "x", x, "y", y);
  check_distinct("maxpool_fwd", "x", x, "y", y);
  YOLO_DISPATCH(ctx, maxpool_fwd, ctx, x, y, k);
}

void maxpool_bwd(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& dx, int k) {
  check_k("maxpool_bwd", k);
  check_activation("maxpool_bwd", "x", x, ctx);
  check_activation("maxpool_bwd", "dy", dy, ctx);
  check_activation("maxpool_bwd", "dx", dx, ctx);
  check_same_shape("maxpool_bwd", "x", x, "dy", dy);
  check_same_shape("maxpool_bwd", "x", x, "dx", dx);
  check_same_dtype("maxpool_bwd", "x", x, "dy", dy);
  check_same_dtype("maxpool_bwd", "x", x, "dx", dx);
  check_distinct("maxpool_bwd", "dx", dx, "dy", dy);
  check_distinct("maxpool_bwd", "dx", dx, "x", x);
  YOLO_DISPATCH(ctx, maxpool_bwd, ctx, x, dy, dx, k);
}

void sppf_fwd(Context& ctx, const Tensor& x, const Tensor& out, int k) {
  check_k("sppf_fwd", k);
  check_activation("sppf_fwd", "x", x, ctx);
  check_activation("sppf_fwd", "out", out, ctx);
  check_shape("sppf_fwd", "out", out, {x.dim(0), x.dim(1), x.dim(2), 4 * x.dim(3)});
  check_same_dtype("sppf_fwd", "x", x, "out", out);
  YOLO_DISPATCH(ctx, sppf_fwd, ctx, x, out, k);
}

void sppf_bwd(Context& ctx, const Tensor& out, const Tensor& dout, const Tensor& dx, int k) {
  check_k("sppf_bwd", k);
  check_activation("sppf_bwd", "out", out, ctx);
  check_activation("sppf_bwd", "dout", dout, ctx);
  check_activation("sppf_bwd", "dx", dx, ctx);
  check_same_shape("sppf_bwd", "out", out, "dout", dout);
  YOLO_CHECK(out.dim(3) % 4 == 0, "sppf_bwd: out has shape " << shape_str(out.shape())
                                                             << ", whose channels are not 4C");
  check_shape("sppf_bwd", "dx", dx, {out.dim(0), out.dim(1), out.dim(2), out.dim(3) / 4});
  check_same_dtype("sppf_bwd", "out", out, "dout", dout);
  check_same_dtype("sppf_bwd", "out", out, "dx", dx);
  YOLO_DISPATCH(ctx, sppf_bwd, ctx, out, dout, dx, k);
}

}  // namespace yolo
