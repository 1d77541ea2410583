// The activations Kiln's convolution kernels apply (nn::ConvAct), on a double: the reference
// their tests compare against. Clip's bounds are the ones those tests pass, -0.5 and 1.5.
#pragma once

#include <algorithm>
#include <cmath>

#include "kiln/ops/nn/conv_act.h"

namespace kiln::test {

constexpr float kClipLo = -0.5f, kClipHi = 1.5f;

inline double reference_activation(double v, nn::ConvAct act) {
  switch (act) {
    case nn::ConvAct::None: return v;
    case nn::ConvAct::Relu: return std::max(v, 0.0);
    case nn::ConvAct::Clip: return std::min(std::max(v, double(kClipLo)), double(kClipHi));
    case nn::ConvAct::HardSwish: return v * std::min(std::max(v / 6 + 0.5, 0.0), 1.0);
    case nn::ConvAct::Silu: return v / (1 + std::exp(-v));
  }
  return v;
}

}  // namespace kiln::test
