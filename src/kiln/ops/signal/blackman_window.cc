// BlackmanWindow (opset 17): a0 = 0.42, a1 = 0.5, a2 = 0.08 (see window_functions.h).
#include "kiln/ops/signal/window_functions.h"

namespace kiln {
namespace {

struct Blackman {
  static constexpr double a0 = 0.42, a1 = 0.5, a2 = 0.08;
};
const OpRegistration kBlackmanWindow{"", "BlackmanWindow", 17, make_kernel<signal::CosineWindow<Blackman>>};

}  // namespace
}  // namespace kiln
