// The process-wide seed of Kiln's random operators (RandomNormal, RandomUniform, their *Like
// forms, Bernoulli, Multinomial). Nodes without a `seed` attribute take a fresh key from this
// stream on every run, so set_random_seed(n) makes the runs that follow reproducible; nodes
// with a `seed` attribute ignore it.
#pragma once

#include <cstdint>

namespace kiln {

void set_random_seed(uint64_t seed);
// The next key of the process-wide stream (thread-safe).
uint64_t next_random_seed();

}  // namespace kiln
