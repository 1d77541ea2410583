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

// The two distributions, as their ops' attributes give them.
struct Normal {  // mean, scale
  explicit Normal(const ir::Node& node) : mean(node.attr_float("mean", 0.0f)), scale(node.attr_float("scale", 1.0f)) {}
  template <typename T>
  void fill(T* out, int64_t n, uint64_t key) const { fill_normal(out, n, key, mean, scale); }
  double mean, scale;
};

struct Uniform {  // low, high
  explicit Uniform(const ir::Node& node) : low(node.attr_float("low", 0.0f)), high(node.attr_float("high", 1.0f)) {
    if (!(low <= high)) fail(ErrorCode::InvalidGraph, "low ", low, " must not exceed high ", high);
  }
  template <typename T>
  void fill(T* out, int64_t n, uint64_t key) const { fill_uniform(out, n, key, low, high); }
  double low, high;
};

// RandomNormal, RandomUniform: a tensor of the `shape` attribute, of type `dtype` (float by
// default), drawn from Dist.
template <typename Dist>
class RandomOfShape : public Kernel {
 public:
  explicit RandomOfShape(const ir::Node& node)
      : op_(node.op_type), keys_(node), dist_(node), dtype_(read_dtype(node, DType::Float32)),
        shape_(node.attr_ints("shape")) {
    if (!node.has_attr("shape")) fail(ErrorCode::InvalidGraph, op_, " needs the shape attribute");
    for (int64_t d : shape_)
      if (d < 0) fail(ErrorCode::InvalidGraph, "shape must not have negative dimensions, got ", shape_str(shape_));
    dispatch(RandomTypes{}, dtype_, op_.c_str(), []<typename T>() {});
  }
  void prepare(OpContext& ctx) override { ctx.set_output(0, dtype_, shape_); }
  void compute(OpContext& ctx) override {
    Tensor& y = ctx.output(0);
    const uint64_t key = keys_.next();
    dispatch(RandomTypes{}, dtype_, op_.c_str(), [&]<typename T>() { dist_.fill(y.data<T>(), y.size(), key); });
  }

 private:
  std::string op_;
  KeySource keys_;
  Dist dist_;
  DType dtype_;
  Shape shape_;
};

// RandomNormalLike, RandomUniformLike: the input's shape; the type is `dtype`, or the input's.
template <typename Dist>
class RandomLike : public Kernel {
 public:
  explicit RandomLike(const ir::Node& node)
      : op_(node.op_type), keys_(node), dist_(node), has_dtype_(node.has_attr("dtype")),
        dtype_(read_dtype(node, DType::Undefined)) {}
  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    out_ = has_dtype_ ? dtype_ : x.dtype();
    dispatch(RandomTypes{}, out_, (op_ + " output").c_str(), []<typename T>() {});
    ctx.set_output(0, out_, x.shape());
  }
  void compute(OpContext& ctx) override {
    Tensor& y = ctx.output(0);
    const uint64_t key = keys_.next();
    dispatch(RandomTypes{}, out_, op_.c_str(), [&]<typename T>() { dist_.fill(y.data<T>(), y.size(), key); });
  }

 private:
  std::string op_;
  KeySource keys_;
  Dist dist_;
  bool has_dtype_;
  DType dtype_, out_ = DType::Undefined;
};

}  // namespace kiln::random
