// Space-to-depth forward and its backward (the inverse permutation, assigned then accumulated).
#include "autograd/reorg.h"

#include "kernels/reorg.h"

namespace yolo::ag {

Var space_to_depth(Tape& tape, const Var& x) {
  Context& ctx = tape.ctx();
  const Tensor& xv = x.value();
  YOLO_CHECK(xv.ndim() == 4, "space_to_depth: x must be (N, H, W, C), got " << shape_str(xv.shape()));
  Tensor y = ctx.empty({xv.dim(0), xv.dim(1) / 2, xv.dim(2) / 2, 4 * xv.dim(3)}, xv.dtype());
  space_to_depth_fwd(ctx, xv, y);
  const bool rec = tape.needs_grad({&x});
  Var out = tape.make_output(y, rec);
  if (rec) {
    tape.record(out, [&tape, x](const Tensor& dy) {
      Tensor dx = tape.grad_target(x);
      space_to_depth_bwd(tape.ctx(), dy, dx);
      tape.accumulate_into(x, dx);
    });
  }
  return out;
}

}  // namespace yolo::ag
