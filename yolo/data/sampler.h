// The order in which an epoch visits a dataset, as PyTorch 1.13's samplers produce it: torch's CPU
// randperm (Fisher-Yates over mt19937) seeded with seed + epoch, DistributedSampler's padding and
// rank striding, and the DataLoader's consecutive batches (drop_last false).
//   SamplerOptions o{.size = n, .shuffle = true, .seed = 0, .rank = 1, .world = 2};
//   std::vector<int64_t> order = epoch_indices(o, epoch);   // this rank's samples, in order
#pragma once

#include <cstdint>
#include <vector>

namespace yolo {

// torch.randperm(n, generator=g) after g.manual_seed(seed) on the CPU (PyTorch 1.13): r = 0..n-1,
// then for i in [0, n-1): z = mt19937() % (n - i), swap(r[i], r[i + z]). The generator is seeded
// with the low 32 bits of seed, as torch's mt19937 is.
std::vector<int64_t> torch_randperm(int64_t n, uint64_t seed);

struct SamplerOptions {
  int64_t size = 0;     // dataset length
  bool shuffle = true;  // train: true; val and rect batches: false
  uint64_t seed = 0;    // DistributedSampler's seed (the reference leaves it at 0)
  int rank = -1;        // -1: one process; else this process's rank in [0, world)
  int world = 1;        // number of ranks (used when rank >= 0)
};

// Note [Epoch order]
// rank >= 0 (DDP): exactly DistributedSampler(shuffle, seed, drop_last=False) after set_epoch:
// indices = randperm(size) from seed + epoch (or 0..size-1), padded to total = ceil(size / world) *
// world by repeating the list from its start as often as needed, then this rank takes
// indices[rank : total : world].
// rank == -1: randperm(size) seeded with seed + epoch, no padding. The reference's single-process
// loader uses a RandomSampler drawing from one generator that runs on across epochs (seeded 0 once
// at create_dataloader), so its epoch e order is not a function of e alone. Seeding per epoch
// makes an epoch's order reproducible on its own (resume, any worker count) at the price of not
// being the same permutation as the reference's; the distribution is the same.
std::vector<int64_t> epoch_indices(const SamplerOptions& options, int64_t epoch);

// Samples this rank sees per epoch: size (rank -1) or ceil(size / world).
int64_t samples_per_rank(const SamplerOptions& options);
// Batches per epoch for batch_size (the last one partial): ceil(samples / batch_size).
int64_t batches_per_epoch(int64_t samples, int64_t batch_size);

}  // namespace yolo
