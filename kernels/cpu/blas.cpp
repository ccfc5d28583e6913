// Parallel GEMM over single-threaded OpenBLAS calls (see kernels/cpu/blas.h).
#include "kernels/cpu/blas.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <limits>
#include <mutex>
#include <vector>

#include "kernels/cpu/vec_math.h"

namespace yolo::cpu {
namespace {

// Note [One CPU thread pool]
// The CPU kernels parallelise with OpenMP, and Debian's OpenBLAS threads with its own pthreads.
// Two pools on the same cores fight: libgomp's workers spin after each region (the default wait
// policy) while OpenBLAS's threads wait for cores; on a 16-core host that made kxk convs 10-40x
// slower (3x3 over 80x80x32: 22 ms vs 0.58 ms with OMP_WAIT_POLICY=passive). So OpenBLAS runs
// single-threaded and every GEMM is split here across the OpenMP team: by rows of C when there
// are enough, else by columns, else (small C, long reduction, e.g. a conv's filter gradient) by
// slices of k into per-thread partial products that are summed in a fixed order, so results do
// not depend on timing.
void single_threaded_blas() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

// Below this many multiply-adds one call on the calling thread is faster than waking the team.
constexpr double kParallelMacs = 1 << 18;

void blas(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c,
              blasint(ldc));
}
void blas(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
          int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c,
              blasint(ldc));
}

// Note [Small GEMM blocks]
// A row-major C (m x n) = A (m x k) B (k x n) with few columns and a short reduction (a 1x1 conv's
// backward-data: n = input channels, k = output channels, m = pixels) runs far below OpenBLAS's
// peak as one call: it zeroes C in a separate pass and packs all of A. Cut into blocks of rows
// with m * n * k <= kSmallGemmMacs, OpenBLAS 0.3.21 takes its small-matrix kernels instead (no
// packing, C written once), and where it has none the blocks cost one small repack of B each.
// yolov5n 1x1 backward-data at batch 8, 320x320, 2 cores: 64 -> 32 at 40x40 308 -> 193 us,
// 32 -> 16 at 80x80 518 -> 353 us, detect 64 -> 255 at 40x40 2.38 -> 1.84 ms. Transposed
// operands measured slower in blocks (the forward's A B^T), so only A B is cut; and only when a
// block keeps at least 16 rows.
constexpr double kSmallGemmMacs = 1e6;

// Rows per call (Note [Small GEMM blocks]); "no limit" when the product runs whole.
int64_t small_block_rows(bool ta, bool tb, int64_t n, int64_t k) {
  const int64_t rows = ta || tb ? 0 : small_gemm_rows(n, k);
  return rows > 0 ? rows : std::numeric_limits<int64_t>::max();
}

template <typename T>
void gemm_impl(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
               const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  single_threaded_blas();
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (threads == 1 || double(m) * double(n) * double(k) < kParallelMacs || k == 0) {
    blas(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  // Split the longer side of C: every thread packs the whole of the other operand, so splitting
  // rows repeats B's packing (k x n) per thread and splitting columns repeats A's (m x k). (A
  // conv's weight gradient, C = dy^T (og x rows) x patch (rows x k*k*c) with og < k*k*c, spent
  // about as long packing the patch twice as multiplying when split by rows.)
  const bool small_c = m < 16 * threads && n < 16 * threads;
  const bool long_k = k >= 64 * int64_t(threads);
  if (!(small_c && long_k) && m >= threads && (m >= n || n < threads)) {
    const int64_t step = (m + threads - 1) / threads;
    const int64_t block = small_block_rows(ta, tb, n, k);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int t = 0; t < threads; ++t) {
      const int64_t m0 = t * step, m1 = std::min(m, m0 + step);
      for (int64_t r = m0; r < m1;) {
        const int64_t rows = std::min(block, m1 - r);
        blas(ta, tb, rows, n, k, alpha, ta ? a + r : a + r * lda, lda, b, ldb, beta, c + r * ldc,
             ldc);
        r += rows;
      }
    }
    return;
  }
  if (!(small_c && long_k) && n >= threads) {
    const int64_t step = (n + threads - 1) / threads;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int t = 0; t < threads; ++t) {
      const int64_t n0 = t * step, n1 = std::min(n, n0 + step);
      if (n0 >= n1) continue;
      blas(ta, tb, m, n1 - n0, k, alpha, a, lda, tb ? b + n0 * ldb : b + n0, ldb, beta, c + n0,
           ldc);
    }
    return;
  }
  // Small C, long reduction: per-thread partial products over slices of k.
  const int64_t step = (k + threads - 1) / threads;
  std::vector<T> partial(size_t(threads) * size_t(m * n));
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int t = 0; t < threads; ++t) {
    const int64_t k0 = t * step, k1 = std::min(k, k0 + step);
    T* p = partial.data() + size_t(t) * size_t(m * n);
    if (k0 >= k1) {
      std::fill(p, p + m * n, T(0));
      continue;
    }
    blas(ta, tb, m, n, k1 - k0, alpha, ta ? a + k0 * lda : a + k0, lda, tb ? b + k0 : b + k0 * ldb,
         ldb, T(0), p, n);
  }
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      T s = beta == T(0) ? T(0) : beta * c[i * ldc + j];
      for (int t = 0; t < threads; ++t) s += partial[size_t(t) * size_t(m * n) + size_t(i * n + j)];
      c[i * ldc + j] = s;
    }
  }
}

// Rows of C computed and finished together: at least kEpilogueRows (each GEMM call repacks B, so
// fewer rows would spend more time packing than multiplying), more when C is narrow, up to
// kEpilogueBytes of C (which then stays in L2 for the epilogue).
constexpr int64_t kEpilogueRows = 256;
constexpr int64_t kEpilogueBytes = int64_t(256) << 10;

// c[i][j] = act(c[i][j] + bias[j]) over rows [0, rows) (Note [ISA clones]).
template <typename T>
YOLO_ISA_CLONES void epilogue_rows(T* c, int64_t rows, int64_t n, int64_t ldc,
                                   const T* __restrict bias, bool silu) {
  for (int64_t i = 0; i < rows; ++i) {
    T* ci = c + i * ldc;
    if (bias && silu) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) {
        const T z = ci[j] + bias[j];
        ci[j] = z * sigmoid(z);
      }
    } else if (bias) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) ci[j] += bias[j];
    } else if (silu) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) ci[j] = ci[j] * sigmoid(ci[j]);
    }
  }
}

template <typename T>
void gemm_bias_act_impl(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
                        const T* b, int64_t ldb, T* c, int64_t ldc, const T* bias, bool silu) {
  single_threaded_blas();
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const int64_t block =
      std::min(small_block_rows(ta, tb, n, k),
               std::max<int64_t>(kEpilogueRows,
                                 kEpilogueBytes / int64_t(sizeof(T)) / std::max<int64_t>(n, 1)));
  const bool small = double(m) * double(n) * double(k) < kParallelMacs || k == 0;
  if (threads == 1 || small || m >= 16 * threads || (m >= threads && m >= n)) {
    // Rows split over the threads (or one thread), each in blocks: product, then epilogue.
    const int team = (threads == 1 || small) ? 1 : threads;
    const int64_t step = (m + team - 1) / team;
#pragma omp parallel for num_threads(team) schedule(static) if (team > 1)
    for (int t = 0; t < team; ++t) {
      const int64_t m0 = t * step, m1 = std::min(m, m0 + step);
      for (int64_t r = m0; r < m1; r += block) {
        const int64_t rows = std::min(block, m1 - r);
        blas(ta, tb, rows, n, k, T(1), ta ? a + r : a + r * lda, lda, b, ldb, T(0), c + r * ldc,
             ldc);
        epilogue_rows(c + r * ldc, rows, n, ldc, bias, silu);
      }
    }
    return;
  }
  // Few rows: the plain parallel product, then the epilogue in one pass.
  gemm_impl(ta, tb, m, n, k, T(1), a, lda, b, ldb, T(0), c, ldc);
  epilogue_rows(c, m, n, ldc, bias, silu);
}

}  // namespace

int64_t small_gemm_rows(int64_t n, int64_t k) {
  if (n <= 0 || k <= 0) return 0;
  const int64_t rows = int64_t(kSmallGemmMacs / double(n * k)) / 16 * 16;
  return rows >= 16 ? rows : 0;
}

void gemm_bias_act(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
                   int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
                   const float* bias, bool silu) {
  gemm_bias_act_impl(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, bias, silu);
}

void gemm_bias_act(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const double* a,
                   int64_t lda, const double* b, int64_t ldb, double* c, int64_t ldc,
                   const double* bias, bool silu) {
  gemm_bias_act_impl(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, bias, silu);
}

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  gemm_impl(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
          const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
          int64_t ldc) {
  gemm_impl(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace yolo::cpu
