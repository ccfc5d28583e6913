// Run-time ISA detection for kernels/cpu/cpu_isa.h: __builtin_cpu_supports once, then the cap.
#include "kernels/cpu/cpu_isa.h"

#include <atomic>

namespace yolo::cpu {
namespace {

Isa detect() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  const bool fma = __builtin_cpu_supports("fma");
  if (fma && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
    return Isa::avx512;
  if (fma && __builtin_cpu_supports("avx2")) return Isa::avx2;
#endif
  return Isa::baseline;
}

std::atomic<Isa> g_cap{Isa::avx512};

}  // namespace

Isa isa() {
  static const Isa best = detect();
  const Isa cap = g_cap.load(std::memory_order_relaxed);
  return best < cap ? best : cap;
}

Isa set_isa_cap(Isa cap) {
  return g_cap.exchange(cap);
}

}  // namespace yolo::cpu
