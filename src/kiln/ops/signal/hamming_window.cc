// HammingWindow (opset 17): a0 = 25/46, a1 = 21/46 (see window_functions.h).
#include "kiln/ops/signal/window_functions.h"

namespace kiln {
namespace {

struct Hamming {
  static constexpr double a0 = 25.0 / 46.0, a1 = 21.0 / 46.0, a2 = 0.0;
};
const OpRegistration kHammingWindow{"", "HammingWindow", 17, make_kernel<signal::CosineWindow<Hamming>>};

}  // namespace
}  // namespace kiln
