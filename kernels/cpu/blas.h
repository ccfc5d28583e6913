// GEMM for the CPU kernels (conv2d, gemm): OpenMP threads each run a single-threaded OpenBLAS GEMM
// on a slice of the problem, so all CPU work shares one thread pool (Note [One CPU thread pool]).
// Row-major, like cblas with CblasRowMajor: C (m, n) = alpha * op(A) * op(B) + beta * C.
#pragma once

#include <cstdint>

namespace yolo::cpu {

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
          const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
          int64_t ldc);

// Rows per OpenBLAS call when C (m, n) = A (m, k) B (k, n) is cut into small blocks (Note [Small
// GEMM blocks] in kernels/cpu/blas.cpp), or 0 when such a product runs whole.
int64_t small_gemm_rows(int64_t n, int64_t k);

// C (m, n) = act(op(A) * op(B) + bias): bias (n) added to every row (nullptr: none), then SiLU
// when silu. The product is computed in blocks of rows and each block gets its bias and activation
// right away, while it is still in cache (the fused Conv's epilogue), instead of in extra passes.
void gemm_bias_act(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
                   int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
                   const float* bias, bool silu);
void gemm_bias_act(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const double* a,
                   int64_t lda, const double* b, int64_t ldb, double* c, int64_t ldc,
                   const double* bias, bool silu);

}  // namespace yolo::cpu
