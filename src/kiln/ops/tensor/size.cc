// Size: the input's element count as an int64 scalar.
#include "kiln/exec/kernel.h"

namespace kiln {
namespace {
class Size : public Kernel {
 public:
  explicit Size(const ir::Node&) {}
  void prepare(OpContext& ctx) override { ctx.set_output(0, DType::Int64, {}); }
  void compute(OpContext& ctx) override { ctx.output(0).data<int64_t>()[0] = ctx.input(0).size(); }
};
const OpRegistration kSize{"Size", make_kernel<Size>};
}  // namespace
}  // namespace kiln
