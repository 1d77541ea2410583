#include "kiln/ops/random/random_seed.h"

#include <mutex>
#include <random>

#include "kiln/ops/random/random_common.h"

namespace kiln {
namespace {

struct SeedStream {
  std::mutex mu;
  uint64_t state = (uint64_t(std::random_device{}()) << 32) ^ std::random_device{}();
};

SeedStream& stream() {
  static SeedStream s;
  return s;
}

}  // namespace

void set_random_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(stream().mu);
  stream().state = seed;
}

uint64_t next_random_seed() {
  std::lock_guard<std::mutex> lock(stream().mu);
  return random::splitmix64(stream().state++);
}

}  // namespace kiln
