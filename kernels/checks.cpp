// Shared dispatcher argument checks (kernels/checks.h).
#include "kernels/checks.h"

namespace yolo {

void check_activation(const char* op, const char* name, const Tensor& t, const Context& ctx) {
  check_defined(op, name, t);
  check_ndim(op, name, t, 4);
  YOLO_CHECK(t.device() == ctx.device(), op << ": " << name << " is on " << t.device().str()
                                            << " but the context is on " << ctx.device().str()
                                            << " (copy it with Context::to_device/to_host)");
  const DType d = t.dtype();
  const bool ok = ctx.device().is_cpu() ? (d == DType::f32 || d == DType::f64)
                                        : (d == DType::f32 || d == DType::f16 || d == DType::bf16);
  YOLO_CHECK(ok, op << ": " << name << " has dtype " << dtype_name(d) << ", which "
                    << ctx.device().str()
                    << " does not support (cpu: f32, f64; cuda: f32, f16, bf16)");
}

}  // namespace yolo
