// The one test harness: random inputs, the tolerance rule, finite differences, and CUDA skipping.
// Every op test uses it (STYLE.md rules 8-10):
//   Tensor x = test::random({2, 5, 7, 3}, DType::f64, seed);
//   test::require_close(got, ref, kSiluFwd, "silu fwd");
//   auto cuda = test::cuda_or_skip(); if (!cuda) return;
#pragma once

#include <catch2/catch.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/context.h"
#include "core/tensor.h"

namespace yolo::test {

// |got - ref| <= atol + rtol * |ref| element-wise; NaN or Inf in `got` fails.
struct Tol {
  double atol;
  double rtol;
};

// Seed for "fresh random inputs": YOLO_TEST_SEED if set, else a new random value per process.
// Printed by every failure so a failing case can be replayed.
uint64_t base_seed();
// A distinct seed per call site / case: mixes base_seed() with `salt`.
uint64_t seed(uint64_t salt);

// Host tensor with uniform values in [lo, hi) from Philox(seed); f32 or f64.
Tensor random(const Shape& shape, DType dtype, uint64_t seed, double lo = -1.0, double hi = 1.0);
// Host copy converted to f64 / f32.
Tensor to_f64(const Tensor& t);
Tensor to_f32(const Tensor& t);
// Host tensor of dtype `dtype` (f32, f64, f16 or bf16) holding t's values, rounded to nearest even.
Tensor to_dtype(const Tensor& t, DType dtype);
// Host f32 tensor of t's values rounded through `dtype` (what an f16/bf16 kernel input holds).
Tensor round_through(const Tensor& t, DType dtype);
// Host copy of any tensor (device tensors are copied through ctx).
Tensor host(const Context& ctx, const Tensor& t);

struct CloseReport {
  bool ok = true;
  std::string message;  // worst element, its index, and the fraction of the allowed error used
};
CloseReport compare(const Tensor& got, const Tensor& ref, Tol tol);
// Catch2 assertion over compare(); `what` names the op and case. Host tensors of any float dtype.
void require_close(const Tensor& got, const Tensor& ref, Tol tol, const std::string& what);

// Central finite difference of the scalar function f with respect to every element of x (a host
// f64 tensor that f reads): returns a host f64 tensor shaped like x. Step h.
Tensor numeric_grad(const Tensor& x, const std::function<double()>& f, double h = 1e-6);
// Sum over i of a[i] * b[i] for host f64 tensors (the scalar "loss" used in gradient checks).
double dot(const Tensor& a, const Tensor& b);

// A CUDA context on device 0, or nullptr after printing (WARN) why CUDA cases are skipped; with
// YOLO_REQUIRE_CUDA=1 in the environment (a GPU machine) a missing device fails the test instead.
std::unique_ptr<Context> cuda_or_skip();

}  // namespace yolo::test
