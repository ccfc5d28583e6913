// CUDA GEMM (cuBLAS, strict f32 compute), reductions and BCE-with-logits; twins of
// kernels/cpu/linalg.cpp, compared with them by tests/test_linalg.cpp. f32 only.
// Reductions are deterministic and capture-safe (Note [Deterministic reductions]).
#include <algorithm>
#include <climits>
#include <cstdint>

#include "core/cuda_check.h"
#include "core/cuda_state.h"
#include "kernels/cuda/common.cuh"
#include "kernels/linalg.h"

namespace yolo {
namespace {

using cuda::aligned16;
using cuda::block_sum;

// Note [Deterministic reductions]
// A full reduction runs in two launches: stage 1 has a grid whose size depends on n alone (at most
// kMaxPartials blocks); each thread strides over the input, each block sums its threads in a fixed
// tree (warp shuffles, then one warp over the warp sums) and writes one partial to a scratch
// buffer from ctx.empty; stage 2 is one block that sums the partials the same way and applies the
// final scale. No float atomics and no host synchronisation, so the result is bitwise repeatable
// and the pair can be captured into a CUDA graph.
constexpr int kThreads = 256;
constexpr int kMaxPartials = 1024;

int reduce_grid(int64_t n) {
  const int64_t blocks = (n + 4 * kThreads - 1) / (4 * kThreads);
  return static_cast<int>(blocks < 1 ? 1 : (blocks > kMaxPartials ? kMaxPartials : blocks));
}

int elementwise_grid(const Context& ctx, int64_t work) {
  const int64_t cap = int64_t(ctx.cuda().props.multiProcessorCount) * 16;
  const int64_t blocks = (work + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 1 ? 1 : (blocks > cap ? cap : blocks));
}

// Terms of a full reduction: element i, or the sum of the four elements 4j..4j+3 (16-byte loads).
struct ValueTerm {
  const float* x;
  __device__ float operator()(int64_t i) const { return x[i]; }
  __device__ float vec(int64_t j) const {
    const float4 v = reinterpret_cast<const float4*>(x)[j];
    return (v.x + v.y) + (v.z + v.w);
  }
};

// PyTorch's stable per-element BCE-with-logits: (1 - t) z + lw softplus(-z), lw = 1 + (pw - 1) t.
__device__ float bce_term(float z, float t, float pw) {
  const float lw = 1.0f + (pw - 1.0f) * t;
  return (1.0f - t) * z + lw * (fmaxf(-z, 0.0f) + log1pf(expf(-fabsf(z))));
}

struct BceTerm {
  const float* z;
  const float* t;
  float pw;
  __device__ float operator()(int64_t i) const { return bce_term(z[i], t[i], pw); }
  __device__ float vec(int64_t j) const {
    const float4 a = reinterpret_cast<const float4*>(z)[j];
    const float4 b = reinterpret_cast<const float4*>(t)[j];
    return (bce_term(a.x, b.x, pw) + bce_term(a.y, b.y, pw)) +
           (bce_term(a.z, b.z, pw) + bce_term(a.w, b.w, pw));
  }
};

// Stage 1: partial[blockIdx.x] = sum of the terms this block strides over.
template <typename Term>
__global__ void reduce_partial_kernel(Term term, int64_t n, bool vec, float* partial) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  float acc = 0.0f;
  int64_t scalar_begin = 0;
  if (vec) {
    const int64_t n4 = n / 4;
    for (int64_t j = tid; j < n4; j += stride) acc += term.vec(j);
    scalar_begin = n4 * 4;
  }
  for (int64_t i = scalar_begin + tid; i < n; i += stride) acc += term(i);
  const float s = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// Stage 2 (one block): out[0] = (sum of partials) / divisor.
__global__ void reduce_final_kernel(const float* partial, int count, float divisor, float* out) {
  float acc = 0.0f;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
  const float s = block_sum(acc);
  if (threadIdx.x == 0) out[0] = s / divisor;
}

template <typename Term>
void reduce_all(Context& ctx, const Term& term, int64_t n, bool vec, float divisor, float* out) {
  cudaStream_t stream = ctx.cuda().stream;
  const int grid = reduce_grid(n);
  Tensor partial = ctx.empty({grid}, DType::f32);
  reduce_partial_kernel<<<grid, kThreads, 0, stream>>>(term, n, vec, partial.data<float>());
  YOLO_LAUNCH_CHECK();
  reduce_final_kernel<<<1, kThreads, 0, stream>>>(partial.data<float>(), grid, divisor, out);
  YOLO_LAUNCH_CHECK();
}

// sum_channels stage 1: block (32, 8) owns 32 columns and rows [blockIdx.y * rows_per_block, ...);
// partial[blockIdx.y][c] = the sum over those rows, reduced over threadIdx.y in a fixed order.
__global__ void channel_partial_kernel(const float* x, int64_t m, int64_t c, int64_t rows_per_block,
                                       float* partial) {
  __shared__ float acc_rows[8][33];
  const int64_t col = blockIdx.x * 32 + threadIdx.x;
  const int64_t row_begin = blockIdx.y * rows_per_block;
  const int64_t row_end = min(m, row_begin + rows_per_block);
  float acc = 0.0f;
  if (col < c) {
    for (int64_t r = row_begin + threadIdx.y; r < row_end; r += blockDim.y) acc += x[r * c + col];
  }
  acc_rows[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && col < c) {
    float s = 0.0f;
    for (int k = 0; k < 8; ++k) s += acc_rows[k][threadIdx.x];
    partial[blockIdx.y * c + col] = s;
  }
}

// sum_channels stage 2: out[c] (+)= sum over the row blocks, in order.
__global__ void channel_final_kernel(const float* partial, int64_t blocks, int64_t c,
                                     bool accumulate, float* out) {
  const int64_t col = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (col >= c) return;
  float s = 0.0f;
  for (int64_t b = 0; b < blocks; ++b) s += partial[b * c + col];
  out[col] = accumulate ? out[col] + s : s;
}

__device__ float stable_sigmoid(float z) {
  if (z >= 0.0f) return 1.0f / (1.0f + expf(-z));
  const float e = expf(z);
  return e / (1.0f + e);
}

__device__ float bce_grad(float z, float t, float pw, float scale) {
  const float lw = 1.0f + (pw - 1.0f) * t;
  return (lw * stable_sigmoid(z) - pw * t) * scale;
}

// dz = dloss[0] / n * (lw sigmoid(z) - pw t); float4 body when vec, scalar tail.
__global__ void bce_bwd_kernel(const float* z, const float* t, float pw, const float* dloss,
                               int64_t n, bool vec, float* dz) {
  const float scale = dloss[0] / float(n);
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  int64_t scalar_begin = 0;
  if (vec) {
    const int64_t n4 = n / 4;
    for (int64_t j = tid; j < n4; j += stride) {
      const float4 a = reinterpret_cast<const float4*>(z)[j];
      const float4 b = reinterpret_cast<const float4*>(t)[j];
      float4 r;
      r.x = bce_grad(a.x, b.x, pw, scale);
      r.y = bce_grad(a.y, b.y, pw, scale);
      r.z = bce_grad(a.z, b.z, pw, scale);
      r.w = bce_grad(a.w, b.w, pw, scale);
      reinterpret_cast<float4*>(dz)[j] = r;
    }
    scalar_begin = n4 * 4;
  }
  for (int64_t i = scalar_begin + tid; i < n; i += stride) dz[i] = bce_grad(z[i], t[i], pw, scale);
}

}  // namespace

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLAS gets B first, with the
// row-major leading dimensions (the stored column counts) unchanged.
void gemm_cuda(Context& ctx, bool trans_a, bool trans_b, double alpha, const Tensor& a,
               const Tensor& b, double beta, const Tensor& c) {
  const int64_t m = c.dim(0), n = c.dim(1);
  const int64_t k = trans_a ? a.dim(0) : a.dim(1);
  if (m == 0 || n == 0) return;
  YOLO_CHECK(
      m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && a.dim(1) <= INT_MAX && b.dim(1) <= INT_MAX,
      "gemm: dimensions of a " << shape_str(a.shape()) << " and b " << shape_str(b.shape())
                               << " exceed cuBLAS's 32-bit limit");
  const float alpha_f = float(alpha), beta_f = float(beta);
  const int lda = int(a.dim(1) > 0 ? a.dim(1) : 1), ldb = int(b.dim(1) > 0 ? b.dim(1) : 1);
  cublasHandle_t handle = ctx.cuda().cublas;
  CUBLAS_CHECK(cublasSetPointerMode(handle, CUBLAS_POINTER_MODE_HOST));
  CUBLAS_CHECK(cublasGemmEx(
      handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, int(n),
      int(m), int(k), &alpha_f, b.data<float>(), CUDA_R_32F, ldb, a.data<float>(), CUDA_R_32F, lda,
      &beta_f, c.data<float>(), CUDA_R_32F, int(n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

void sum_all_cuda(Context& ctx, const Tensor& x, const Tensor& out) {
  const float* px = x.data<float>();
  reduce_all(ctx, ValueTerm{px}, x.numel(), aligned16(px), 1.0f, out.data<float>());
}

void mean_all_cuda(Context& ctx, const Tensor& x, const Tensor& out) {
  const float* px = x.data<float>();
  reduce_all(ctx, ValueTerm{px}, x.numel(), aligned16(px), float(x.numel()), out.data<float>());
}

void sum_channels_cuda(Context& ctx, const Tensor& x, const Tensor& out, bool accumulate) {
  const int64_t c = x.dim(-1);
  if (c == 0) return;
  const int64_t m = x.numel() / c;
  // At most 256 row blocks, fixed by m alone: the summation order never depends on the device.
  const int64_t rows_per_block = std::max<int64_t>(32, (m + 255) / 256);
  const int64_t blocks = m > 0 ? (m + rows_per_block - 1) / rows_per_block : 1;
  cudaStream_t stream = ctx.cuda().stream;
  Tensor partial = ctx.empty({blocks, c}, DType::f32);
  const dim3 grid(unsigned((c + 31) / 32), unsigned(blocks));
  channel_partial_kernel<<<grid, dim3(32, 8), 0, stream>>>(x.data<float>(), m, c, rows_per_block,
                                                           partial.data<float>());
  YOLO_LAUNCH_CHECK();
  channel_final_kernel<<<unsigned((c + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
      partial.data<float>(), blocks, c, accumulate, out.data<float>());
  YOLO_LAUNCH_CHECK();
}

void bce_with_logits_fwd_cuda(Context& ctx, const Tensor& logits, const Tensor& targets,
                              double pos_weight, const Tensor& out) {
  const float* z = logits.data<float>();
  const float* t = targets.data<float>();
  reduce_all(ctx, BceTerm{z, t, float(pos_weight)}, logits.numel(), aligned16(z) && aligned16(t),
             float(logits.numel()), out.data<float>());
}

void bce_with_logits_bwd_cuda(Context& ctx, const Tensor& logits, const Tensor& targets,
                              double pos_weight, const Tensor& dloss, const Tensor& dlogits) {
  const int64_t n = logits.numel();
  if (n == 0) return;
  const float* z = logits.data<float>();
  const float* t = targets.data<float>();
  float* dz = dlogits.data<float>();
  const bool vec = aligned16(z) && aligned16(t) && aligned16(dz);
  bce_bwd_kernel<<<elementwise_grid(ctx, (n + 3) / 4), kThreads, 0, ctx.cuda().stream>>>(
      z, t, float(pos_weight), dloss.data<float>(), n, vec, dz);
  YOLO_LAUNCH_CHECK();
}

}  // namespace yolo
