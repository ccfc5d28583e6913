// The one dispatch rule for every op: run op_cpu or op_cuda on the context's device.
// A CPU-only build never references the _cuda symbols (discarded `if constexpr` branch) and throws
// a clear error instead. Used only in kernels/<family>.cpp:
//   void silu_fwd(Context& ctx, const Tensor& x, const Tensor& y) { YOLO_DISPATCH(ctx, silu_fwd,
//   ctx, x, y); }
#pragma once

#include "core/context.h"

#define YOLO_DISPATCH(ctx, op, ...)            \
  do {                                         \
    if ((ctx).device().is_cpu()) {             \
      op##_cpu(__VA_ARGS__);                   \
    } else if constexpr (::yolo::kCudaBuilt) { \
      op##_cuda(__VA_ARGS__);                  \
    } else {                                   \
      ::yolo::throw_cuda_not_built(#op);       \
    }                                          \
  } while (0)
