// NCCL_CHECK: the statement-safe check for NCCL calls (dist/ sources only, which link NCCL).
//   NCCL_CHECK(ncclAllReduce(buf, buf, n, ncclFloat32, ncclSum, comm, stream));
#pragma once

#include <nccl.h>

#include "core/error.h"

#define NCCL_CHECK(expr) YOLO_GPU_CHECK_GEN(expr, ncclSuccess, ncclGetErrorString, "NCCL")
