// Tests of core/: tensors and views, argument errors, the caching allocator's policy, the flat
// parameter arena, Philox known answers, 16-bit float conversions, and CPU/CUDA RNG equality.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/arena.h"
#if YOLO_WITH_CUDA
#include "core/cuda_state.h"
#endif
#include "core/philox.h"
#include "kernels/random.h"
#include "tests/harness.h"

using namespace yolo;

TEST_CASE("tensor reshape and slice are views of one storage", "[core]") {
  Tensor t = Tensor::from_vector({4, 3}, std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  Tensor s = t.slice(1, 3);
  REQUIRE(s.shape() == Shape{2, 3});
  REQUIRE(s.data<float>()[0] == 3.0f);
  Tensor r = t.reshape({2, -1});
  REQUIRE(r.shape() == Shape{2, 6});
  r.data<float>()[7] = 42.0f;
  REQUIRE(t.data<float>()[7] == 42.0f);
  REQUIRE(s.reshape({6}).data<float>()[4] == 42.0f);
  REQUIRE_THROWS_AS(t.reshape({5, 3}), Error);
  REQUIRE_THROWS_AS(t.slice(2, 5), Error);
  REQUIRE_THROWS_AS(t.data<double>(), Error);
}

TEST_CASE("argument checks name both shapes, dtypes and devices", "[core]") {
  Tensor a = Tensor::zeros_cpu({2, 8, 8, 3});
  Tensor b = Tensor::zeros_cpu({2, 8, 8, 4});
  try {
    check_same_shape("conv2d", "x", a, "dy", b);
    FAIL("no throw");
  } catch (const Error& e) {
    const std::string m = e.what();
    REQUIRE(m.find("(2, 8, 8, 3)") != std::string::npos);
    REQUIRE(m.find("(2, 8, 8, 4)") != std::string::npos);
    REQUIRE(m.find("conv2d") != std::string::npos);
  }
  Tensor d = Tensor::zeros_cpu({2}, DType::f64);
  REQUIRE_THROWS_WITH(check_same_dtype("add", "a", a, "b", d), Catch::Contains("f32 vs f64"));
  REQUIRE_THROWS_WITH(Device::parse("gpu7"), Catch::Contains("cuda:N"));
  REQUIRE(Device::parse("cuda:1") == Device::cuda(1));
  REQUIRE(Device::parse("0") == Device::cuda(0));
}

TEST_CASE("caching allocator rounds to size classes", "[core][allocator]") {
  REQUIRE(CachingAllocator::size_class(1) == 512);
  REQUIRE(CachingAllocator::size_class(512) == 512);
  REQUIRE(CachingAllocator::size_class(513) == 1024);
  REQUIRE(CachingAllocator::size_class(8192) == 8192);
  REQUIRE(CachingAllocator::size_class(8193) == 10240);
  REQUIRE(CachingAllocator::size_class(1000000) == 1048576);
  REQUIRE(CachingAllocator::size_class(1048577) == 1310720);
  for (size_t b = 1; b < (size_t(1) << 26); b = b * 3 + 7) {
    const size_t c = CachingAllocator::size_class(b);
    REQUIRE(c >= b);
    if (b > 8192) REQUIRE(double(c) <= 1.25 * double(b) + 1);
  }
}

TEST_CASE("caching allocator reuses blocks per stream and keeps statistics", "[core][allocator]") {
  auto* raw = new CappedHostMemory(size_t(1) << 20);
  CachingAllocator alloc{std::unique_ptr<RawMemory>(raw)};
  StreamHandle s1 = reinterpret_cast<StreamHandle>(0x1), s2 = reinterpret_cast<StreamHandle>(0x2);
  void* a = alloc.allocate(1000, s1);
  alloc.deallocate(a);
  void* b = alloc.allocate(900, s1);  // same class (1024), same stream: reused
  REQUIRE(b == a);
  void* c = alloc.allocate(900, s2);  // other stream: a new block
  REQUIRE(c != a);
  AllocatorStats st = alloc.stats();
  REQUIRE(st.num_allocations == 3);
  REQUIRE(st.num_cache_hits == 1);
  REQUIRE(st.num_backend_allocs == 2);
  REQUIRE(st.allocated_bytes == 2048);
  REQUIRE(st.reserved_bytes == 2048);
  alloc.deallocate(b);
  alloc.deallocate(c);
  st = alloc.stats();
  REQUIRE(st.allocated_bytes == 0);
  REQUIRE(st.peak_allocated_bytes == 2048);
  REQUIRE(st.reserved_bytes == 2048);
  alloc.empty_cache();
  REQUIRE(alloc.stats().reserved_bytes == 0);
  REQUIRE(raw->in_use() == 0);
  alloc.reset_peak_stats();
  REQUIRE(alloc.stats().peak_allocated_bytes == 0);
}

TEST_CASE("caching allocator frees its cache and retries once on out-of-memory",
          "[core][allocator]") {
  auto* raw = new CappedHostMemory(64 * 1024);
  CachingAllocator alloc{std::unique_ptr<RawMemory>(raw)};
  // Fill the cap with cached 16 KiB blocks, then ask for a 48 KiB block: only a retry after
  // emptying the cache can serve it.
  std::vector<void*> ps;
  for (int i = 0; i < 4; ++i) ps.push_back(alloc.allocate(16 * 1024, nullptr));
  for (void* p : ps) alloc.deallocate(p);
  REQUIRE(raw->in_use() == 64 * 1024);
  void* big = alloc.allocate(48 * 1024, nullptr);
  REQUIRE(big != nullptr);
  REQUIRE(alloc.stats().num_oom_retries == 1);
  // A request that cannot fit even after the retry is a clear error.
  REQUIRE_THROWS_WITH(alloc.allocate(32 * 1024, nullptr),
                      Catch::Contains("out of memory") && Catch::Contains("--batch-size"));
  alloc.deallocate(big);
}

TEST_CASE("caching allocator private pools keep capture memory apart", "[core][allocator]") {
  CachingAllocator alloc{std::make_unique<CappedHostMemory>(size_t(1) << 20)};
  void* outside = alloc.allocate(4096, nullptr);
  alloc.deallocate(outside);
  alloc.begin_private_pool(1);
  void* inside = alloc.allocate(4096, nullptr);
  REQUIRE(inside != outside);  // the default pool's free block is not handed to the capture
  alloc.deallocate(inside);
  void* again = alloc.allocate(4096, nullptr);
  REQUIRE(again == inside);  // reused within the private pool
  alloc.deallocate(again);
  alloc.end_private_pool();
  void* after = alloc.allocate(4096, nullptr);
  REQUIRE(after == outside);  // the default pool never sees the private block
  alloc.deallocate(after);
  const size_t before = alloc.stats().reserved_bytes;
  alloc.release_private_pool(1);
  REQUIRE(alloc.stats().reserved_bytes == before - 4096);
  REQUIRE_THROWS_AS(alloc.begin_private_pool(0), Error);
}

TEST_CASE("parameter arena lays groups out contiguously with aligned views", "[core][arena]") {
  Context ctx;
  ParamArena arena;
  arena.add("model.0.conv.weight", {16, 3, 3, 3}, 1);
  arena.add("model.0.bn.weight", {16}, 0);
  arena.add("model.0.bn.bias", {16}, 2);
  arena.add("model.1.conv.weight", {5, 1, 1, 7}, 1);
  REQUIRE_THROWS_AS(arena.add("model.0.bn.bias", {16}, 2), Error);
  arena.finalize(ctx);
  REQUIRE_THROWS_AS(arena.add("late", {1}), Error);
  for (const auto& e : arena.entries()) REQUIRE(e.offset % ParamArena::kAlign == 0);
  REQUIRE(arena.group_range(0) == std::pair<int64_t, int64_t>{0, 16});
  REQUIRE(arena.group_range(1).first == 16);
  REQUIRE(arena.group_range(1).second == 16 + 432 + 48);
  REQUIRE(arena.group_range(2).first == arena.group_range(1).second);
  Tensor w = arena.param("model.1.conv.weight");
  REQUIRE(w.shape() == Shape{5, 1, 1, 7});
  w.data<float>()[3] = 7.0f;
  REQUIRE(arena.flat_params().data<float>()[arena.entry("model.1.conv.weight").offset + 3] == 7.0f);
  Tensor m = arena.add_state("momentum");
  REQUIRE(m.numel() == arena.size());
  REQUIRE(arena.state("momentum", "model.0.bn.weight").shape() == Shape{16});
  REQUIRE(arena.grad("model.0.bn.bias").data<float>()[0] == 0.0f);
  REQUIRE_THROWS_WITH(arena.param("model.9.conv.weight"), Catch::Contains("model.9.conv.weight"));
}

TEST_CASE("philox4x32-10 matches the Random123 known answers", "[core][rng]") {
  Philox4 r = philox4x32_10(Philox4{{0, 0, 0, 0}}, PhiloxKey{{0, 0}});
  REQUIRE(r.v[0] == 0x6627e8d5u);
  REQUIRE(r.v[1] == 0xe169c58du);
  REQUIRE(r.v[2] == 0xbc57ac4cu);
  REQUIRE(r.v[3] == 0x9b00dbd8u);
  r = philox4x32_10(Philox4{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}},
                    PhiloxKey{{0xffffffffu, 0xffffffffu}});
  REQUIRE(r.v[0] == 0x408f276du);
  REQUIRE(r.v[1] == 0x41c83b0eu);
  REQUIRE(r.v[2] == 0xa20bc7c6u);
  REQUIRE(r.v[3] == 0x6d5451fdu);
  r = philox4x32_10(Philox4{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
                    PhiloxKey{{0xa4093822u, 0x299f31d0u}});
  REQUIRE(r.v[0] == 0xd16cfe09u);
  REQUIRE(r.v[1] == 0x94fdccebu);
  REQUIRE(r.v[2] == 0x5001e420u);
  REQUIRE(r.v[3] == 0x24126ea1u);
}

TEST_CASE("half and bfloat16 conversions round to nearest even", "[core][dtype]") {
  REQUIRE(float_to_half(1.0f).bits == 0x3c00);
  REQUIRE(float_to_half(-2.0f).bits == 0xc000);
  REQUIRE(float_to_half(65504.0f).bits == 0x7bff);
  REQUIRE(float_to_half(65520.0f).bits == 0x7c00);                // rounds up to inf
  REQUIRE(float_to_half(5.960464477539063e-08f).bits == 0x0001);  // smallest subnormal
  REQUIRE(float_to_half(1.0f + 1.0f / 2048).bits == 0x3c00);      // tie -> even
  REQUIRE(float_to_half(1.0f + 3.0f / 2048).bits == 0x3c02);      // tie -> even (up)
  REQUIRE(std::isnan(half_to_float(float_to_half(NAN))));
  // Every finite half round-trips exactly through float.
  for (uint32_t b = 0; b < 0x10000; ++b) {
    Half h{uint16_t(b)};
    if (((b >> 10) & 0x1f) == 0x1f) continue;
    REQUIRE(float_to_half(half_to_float(h)).bits == h.bits);
  }
  REQUIRE(float_to_bf16(1.0f).bits == 0x3f80);
  REQUIRE(float_to_bf16(1.0f + 1.0f / 256).bits == 0x3f80);  // tie -> even
  REQUIRE(float_to_bf16(1.0f + 3.0f / 256).bits == 0x3f82);  // tie -> even (up)
  REQUIRE(bf16_to_float(BFloat16{0x4049}) == 3.140625f);
}

TEST_CASE("random fills are reproducible and in range", "[core][rng]") {
  Context ctx;
  Tensor a = ctx.empty({1001}, DType::f32), b = ctx.empty({1001}, DType::f32);
  fill_uniform(ctx, a, 7, 0, -2.0f, 3.0f);
  fill_uniform(ctx, b, 7, 0, -2.0f, 3.0f);
  REQUIRE(std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
  double mean = 0;
  for (float v : a.to_float_vector()) {
    REQUIRE(v >= -2.0f);
    REQUIRE(v < 3.0f);
    mean += v / 1001.0;
  }
  REQUIRE(std::fabs(mean - 0.5) < 0.2);
  // Offsets continue the stream: the block at offset 1 equals elements 4..7 of offset 0.
  Tensor c = ctx.empty({4}, DType::f32);
  fill_uniform(ctx, c, 7, 1, -2.0f, 3.0f);
  REQUIRE(std::memcmp(c.raw(), a.data<float>() + 4, 16) == 0);
  Tensor n = ctx.empty({20000}, DType::f32);
  fill_normal(ctx, n, 11, 0, 1.0f, 2.0f);
  double m = 0, s2 = 0;
  for (float v : n.to_float_vector()) m += v / 20000.0;
  for (float v : n.to_float_vector()) s2 += (v - m) * (v - m) / 20000.0;
  REQUIRE(std::fabs(m - 1.0) < 0.05);
  REQUIRE(std::fabs(std::sqrt(s2) - 2.0) < 0.05);
}

TEST_CASE("random fills are identical on CPU and CUDA", "[cuda][rng]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  Context cpu;
  const uint64_t s = test::seed(1);
  Tensor ref = cpu.empty({4099}, DType::f32);
  Tensor dev = cuda->empty({4099}, DType::f32);
  fill_uniform(cpu, ref, s, 3, 0.0f, 1.0f);
  fill_uniform(*cuda, dev, s, 3, 0.0f, 1.0f);
  Tensor got = cuda->to_host(dev);
  REQUIRE(std::memcmp(got.raw(), ref.raw(), ref.nbytes()) == 0);
  fill_normal(cpu, ref, s, 3, 0.0f, 1.0f);
  fill_normal(*cuda, dev, s, 3, 0.0f, 1.0f);
  test::require_close(cuda->to_host(dev), ref, test::Tol{1e-6, 1e-6}, "fill_normal cuda vs cpu");
}

TEST_CASE("cuda allocator caches and reports statistics", "[cuda][allocator]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  auto* alloc = dynamic_cast<CachingAllocator*>(cuda->allocator().get());
  REQUIRE(alloc != nullptr);
  const AllocatorStats before = alloc->stats();
  void* p = nullptr;
  {
    Tensor t = cuda->empty({1 << 20}, DType::f32);
    p = t.raw();
  }
  Tensor u = cuda->empty({1 << 20}, DType::f32);
  REQUIRE(u.raw() == p);
  const AllocatorStats after = alloc->stats();
  REQUIRE(after.num_cache_hits == before.num_cache_hits + 1);
  REQUIRE(after.peak_allocated_bytes >= size_t(4) << 20);
}

#if YOLO_WITH_CUDA
// CudaState::workspace: grows at least twofold, and keeps a buffer it outgrew (a captured graph may
// still use it) instead of handing it back to the cache, where the next tensor of its size would
// land on it.
TEST_CASE("cuda workspace grows twofold and keeps what it outgrew", "[cuda][allocator]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  CudaState& cs = cuda->cuda();
  const size_t start = cs.workspace_bytes();
  void* a = cs.workspace(start + (size_t(1) << 20));
  const size_t grown = cs.workspace_bytes();
  REQUIRE(grown >= std::max(start + (size_t(1) << 20), 2 * start));
  REQUIRE(cs.workspace(grown) == a);  // a request that fits reuses the buffer
  void* b = cs.workspace(grown + 1);
  REQUIRE(b != a);
  REQUIRE(cs.workspace_bytes() >= 2 * grown);
  Tensor t = cuda->empty({int64_t(grown)}, DType::u8);
  REQUIRE(t.raw() != a);
}
#endif

namespace {
enum class FakeStatus { ok = 0, busted = 7 };
const char* fake_status_name(FakeStatus s) {
  return s == FakeStatus::ok ? "OK" : "BUSTED";
}
int fake_calls = 0;
FakeStatus fake_call(FakeStatus s) {
  ++fake_calls;
  return s;
}
#define FAKE_CHECK(expr) YOLO_GPU_CHECK_GEN(expr, FakeStatus::ok, fake_status_name, "FakeLib")
}  // namespace

TEST_CASE("GPU check macros are statement-safe and name the failing call", "[core][errors]") {
  fake_calls = 0;
  // Used as the lone statement of an unbraced if/else: must parse and evaluate expr exactly once.
  if (fake_calls == 0)
    FAKE_CHECK(fake_call(FakeStatus::ok));
  else
    FAIL("else branch taken");
  REQUIRE(fake_calls == 1);
  REQUIRE_THROWS_WITH([] { FAKE_CHECK(fake_call(FakeStatus::busted)); }(),
                      Catch::Contains("FakeLib error 7 (BUSTED)") &&
                          Catch::Contains("fake_call(FakeStatus::busted)") &&
                          Catch::Contains("test_core.cpp"));
  REQUIRE(fake_calls == 2);
  REQUIRE_THROWS_WITH([] { YOLO_CHECK(1 + 1 == 3, "arithmetic is broken: " << 2); }(),
                      Catch::Contains("arithmetic is broken: 2"));
}

TEST_CASE("the tolerance rule accepts exact equality with a zero allowance and rejects NaN",
          "[core][harness]") {
  const Tensor a = Tensor::from_vector({3}, std::vector<float>{1.0f, -2.0f, 0.0f});
  CHECK(test::compare(a, a, test::Tol{0.0, 0.0}).ok);
  const Tensor b = Tensor::from_vector({3}, std::vector<float>{1.0f, -2.0f, 1e-7f});
  CHECK_FALSE(test::compare(b, a, test::Tol{0.0, 0.0}).ok);
  CHECK(test::compare(b, a, test::Tol{1e-6, 0.0}).ok);
  const Tensor n = Tensor::from_vector({3}, std::vector<float>{1.0f, NAN, 0.0f});
  CHECK_FALSE(test::compare(n, a, test::Tol{1.0, 1.0}).ok);
  CHECK_FALSE(test::compare(n, n, test::Tol{1.0, 1.0}).ok);
}

// Note [Host memory cache] in core/context.cpp.
TEST_CASE("a CPU context caches host memory: a freed block is reused", "[core]") {
  Context ctx(Device::cpu(), 1);
  auto* cache = dynamic_cast<CachingAllocator*>(ctx.allocator().get());
#if defined(__SANITIZE_ADDRESS__)
  CHECK(cache == nullptr);  // the plain allocator keeps AddressSanitizer's use-after-free checks
#else
  REQUIRE(cache != nullptr);
  void* first = nullptr;
  {
    Tensor a = ctx.empty({1 << 20}, DType::f32);
    first = a.raw();
    REQUIRE(reinterpret_cast<uintptr_t>(first) % 64 == 0);
  }
  const size_t hits = cache->stats().num_cache_hits;
  Tensor b = ctx.empty({1 << 20}, DType::f32);
  CHECK(b.raw() == first);
  CHECK(cache->stats().num_cache_hits == hits + 1);
  Context other(Device::cpu(), 1);
  CHECK(other.allocator() != ctx.allocator());  // one cache per context
#endif
}
