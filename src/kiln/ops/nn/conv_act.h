// The activations Kiln's own convolution kernels (depthwise, stem, pointwise) apply to their
// sums in registers, before the store, and what those kernels' tiles share.
#pragma once

#include "kiln/ops/common/vec.h"

namespace kiln::nn {

enum class ConvAct { None, Relu, Clip, HardSwish, Silu };  // Clip's bounds come with each call

// fn.template operator()<A>() for the activation `a`: a kernel picks its tiles per activation.
template <typename Fn>
void with_act(ConvAct a, Fn&& fn) {
  switch (a) {
    case ConvAct::None: return fn.template operator()<ConvAct::None>();
    case ConvAct::Relu: return fn.template operator()<ConvAct::Relu>();
    case ConvAct::Clip: return fn.template operator()<ConvAct::Clip>();
    case ConvAct::HardSwish: return fn.template operator()<ConvAct::HardSwish>();
    case ConvAct::Silu: return fn.template operator()<ConvAct::Silu>();
  }
}

// Pixels per tile of the kernels that broadcast one input value against G vectors of 16 output
// channels (stem, pointwise): 24 sums beside the G filter vectors and the broadcast input.
constexpr int broadcast_tile_width(int g) { return g == 1 ? 24 : g == 2 ? 12 : g == 3 ? 8 : 6; }

#if defined(KILN_VEC)
template <ConvAct A>
inline Vec::V activate(Vec::V v, Vec::V lo, Vec::V hi) {
  if constexpr (A == ConvAct::Relu) return Vec::relu(v);
  if constexpr (A == ConvAct::Clip) return Vec::min(Vec::max(v, lo), hi);
  if constexpr (A == ConvAct::HardSwish) return fastmath::native::hard_swish(v);
  if constexpr (A == ConvAct::Silu) return fastmath::native::silu(v);
  return v;
}
#endif

}  // namespace kiln::nn
