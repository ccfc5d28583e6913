// Epoch index orders (DistributedSampler semantics, torch's CPU randperm) for the data loader.
#include "yolo/data/sampler.h"

#include <numeric>
#include <random>

#include "core/error.h"

namespace yolo {

std::vector<int64_t> torch_randperm(int64_t n, uint64_t seed) {
  YOLO_CHECK(n >= 0, "randperm: negative length " << n);
  std::vector<int64_t> r(static_cast<size_t>(n));
  std::iota(r.begin(), r.end(), int64_t{0});
  // std::mt19937 with a 32-bit seed uses the same initialisation and tempering as torch's
  // at::mt19937 (both are the reference MT19937 of Matsumoto and Nishimura).
  std::mt19937 gen(static_cast<uint32_t>(seed & 0xffffffffu));
  for (int64_t i = 0; i + 1 < n; ++i) {
    const int64_t z =
        static_cast<int64_t>(static_cast<uint64_t>(gen()) % static_cast<uint64_t>(n - i));
    std::swap(r[static_cast<size_t>(i)], r[static_cast<size_t>(i + z)]);
  }
  return r;
}

namespace {

void check_options(const SamplerOptions& o) {
  YOLO_CHECK(o.size >= 0, "sampler: negative dataset size " << o.size);
  if (o.rank >= 0) {
    YOLO_CHECK(o.world >= 1 && o.rank < o.world, "sampler: rank "
                                                     << o.rank << " is not in [0, world=" << o.world
                                                     << "); pass rank -1 for a single process");
  } else {
    YOLO_CHECK(o.rank == -1, "sampler: rank " << o.rank << " (use -1 for a single process)");
  }
}

}  // namespace

int64_t samples_per_rank(const SamplerOptions& o) {
  check_options(o);
  if (o.rank < 0) return o.size;
  return (o.size + o.world - 1) / o.world;
}

int64_t batches_per_epoch(int64_t samples, int64_t batch_size) {
  YOLO_CHECK(batch_size >= 1, "sampler: batch size " << batch_size << " must be at least 1");
  return (samples + batch_size - 1) / batch_size;
}

std::vector<int64_t> epoch_indices(const SamplerOptions& o, int64_t epoch) {
  check_options(o);
  std::vector<int64_t> indices;
  if (o.shuffle) {
    indices = torch_randperm(o.size, o.seed + static_cast<uint64_t>(epoch));
  } else {
    indices.resize(static_cast<size_t>(o.size));
    std::iota(indices.begin(), indices.end(), int64_t{0});
  }
  if (o.rank < 0 || o.size == 0) return indices;

  const int64_t per_rank = samples_per_rank(o);
  const int64_t total = per_rank * o.world;
  std::vector<int64_t> mine;
  mine.reserve(static_cast<size_t>(per_rank));
  // Position k of the padded list is indices[k % size]: the padding repeats the list from its
  // start.
  for (int64_t k = o.rank; k < total; k += o.world) {
    mine.push_back(indices[static_cast<size_t>(k % o.size)]);
  }
  return mine;
}

}  // namespace yolo
