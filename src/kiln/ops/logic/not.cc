// Not: logical negation of a bool tensor.
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct NotFn {
  bool operator()(bool x) const { return !x; }
};
const OpRegistration kNot{"Not", make_kernel<Unary<NotFn, TypeList<bool>>>};
}  // namespace
}  // namespace kiln
