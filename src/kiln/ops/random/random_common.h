// Counter-based random numbers for the random operators: element i of a run draws from
// splitmix64(key + i), so results do not depend on the thread count and chunks fill in
// parallel. Uniforms have 53 random bits (float: 24); normals come from Box-Muller on pairs.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <numbers>

#include "kiln/core/parallel.h"
#include "kiln/ops/common/elementwise.h"
#include "kiln/ops/random/random_seed.h"

namespace kiln::random {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Uniform in [0, 1) for counter i of `key`.
inline double uniform01(uint64_t key, uint64_t i) {
  return double(splitmix64(key ^ splitmix64(i)) >> 11) * 0x1.0p-53;
}

// Where a node's random keys come from: its `seed` attribute (a fixed stream: the node gives
// the same results in every new session) or the process-wide stream of set_random_seed.
class KeySource {
 public:
  explicit KeySource(const ir::Node& node) : fixed_(node.has_attr("seed")) {
    if (fixed_) {
      const float seed = node.attr_float("seed", 0.0f);
      uint32_t bits;
      std::memcpy(&bits, &seed, sizeof bits);
      state_ = splitmix64(bits);
    }
  }
  // A fresh key for one run.
  uint64_t next() { return fixed_ ? splitmix64(state_++) : next_random_seed(); }

 private:
  bool fixed_;
  uint64_t state_ = 0;
};

using RandomTypes = TypeList<float, double, Float16, BFloat16>;

// out[i] = low + (high - low) * u_i.
template <typename T>
void fill_uniform(T* out, int64_t n, uint64_t key, double low, double high) {
  parallel_for(n, 16384, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) {
      const double v = low + (high - low) * uniform01(key, uint64_t(i));
      // Rounding to a narrower type can reach `high`: keep the interval half-open.
      T t = from_compute<T>(v);
      if (double(to_compute(t)) >= high && high > low) t = from_compute<T>(low);
      out[i] = t;
    }
  });
}

// out[i] = mean + scale * z_i with z standard normal (Box-Muller over element pairs).
template <typename T>
void fill_normal(T* out, int64_t n, uint64_t key, double mean, double scale) {
  const int64_t pairs = (n + 1) / 2;
  parallel_for(pairs, 8192, [&](int64_t s, int64_t e) {
    for (int64_t p = s; p < e; ++p) {
      const double u1 = 1.0 - uniform01(key, uint64_t(2 * p));  // (0, 1]: log is finite
      const double u2 = uniform01(key, uint64_t(2 * p + 1));
      const double r = std::sqrt(-2.0 * std::log(u1)), a = 2.0 * std::numbers::pi * u2;
      out[2 * p] = from_compute<T>(mean + scale * r * std::cos(a));
      if (2 * p + 1 < n) out[2 * p + 1] = from_compute<T>(mean + scale * r * std::sin(a));
    }
  });
}

// The output type from the `dtype` attribute, or `fallback` when the attribute is absent.
inline DType read_dtype(const ir::Node& node, DType fallback) {
  if (!node.has_attr("dtype")) return fallback;
  const int64_t code = node.attr_int("dtype", 0);
  if (!dtype_valid(int32_t(code))) fail(ErrorCode::InvalidGraph, "dtype ", code, " is not an ONNX element type");
  return DType(code);
}

}  // namespace kiln::random
