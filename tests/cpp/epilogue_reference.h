// GemmEpilogue's activations in double, for tests of the kernels that apply them.
#pragma once

#include <algorithm>
#include <cmath>

#include "kiln/ops/math/packed_gemm.h"

namespace kiln::test {

inline double epilogue_act(double v, GemmEpilogue::Act a) {
  switch (a) {
    case GemmEpilogue::Act::None: return v;
    case GemmEpilogue::Act::Relu: return std::max(v, 0.0);
    case GemmEpilogue::Act::Gelu: return 0.5 * v * std::erfc(-v / std::sqrt(2.0));
    case GemmEpilogue::Act::GeluTanh:
      return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    case GemmEpilogue::Act::HardSwish: return v * std::min(std::max(v / 6 + 0.5, 0.0), 1.0);
    case GemmEpilogue::Act::Silu: return v / (1 + std::exp(-v));
  }
  return v;
}

}  // namespace kiln::test
