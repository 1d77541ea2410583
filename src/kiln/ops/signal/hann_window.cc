// HannWindow (opset 17): a0 = a1 = 0.5 (see window_functions.h).
#include "kiln/ops/signal/window_functions.h"

namespace kiln {
namespace {

struct Hann {
  static constexpr double a0 = 0.5, a1 = 0.5, a2 = 0.0;
};
const OpRegistration kHannWindow{"", "HannWindow", 17, make_kernel<signal::CosineWindow<Hann>>};

}  // namespace
}  // namespace kiln
