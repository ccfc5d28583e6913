// Argument checks shared by the kernel dispatchers (kernels/<family>.cpp): each throws yolo::Error
// naming the op, the argument and what would be valid.
#pragma once

#include "core/context.h"

namespace yolo {

// t is a defined NHWC activation (4 dimensions) on ctx's device, in a dtype that device's kernels
// take: f32 or f64 on the CPU, f32, f16 or bf16 on CUDA.
void check_activation(const char* op, const char* name, const Tensor& t, const Context& ctx);

}  // namespace yolo
