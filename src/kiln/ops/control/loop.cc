// Loop: runs the body while the trip count and the condition allow, threading loop-carried
// values through and stacking the per-iteration scan outputs.
#include <limits>

#include "kiln/ops/control/subgraph.h"

namespace kiln {
namespace {

class Loop : public Kernel {
 public:
  explicit Loop(const ir::Node& node) : body_(node, "body") {}
  void prepare(OpContext&) override {}
  void compute(OpContext& ctx) override {
    int64_t max_trips = std::numeric_limits<int64_t>::max();
    if (ctx.has_input(0) && ctx.input(0).size() > 0) max_trips = int64_t(ctx.input(0).scalar_as_double());
    bool cond = true;
    if (ctx.has_input(1) && ctx.input(1).size() > 0) cond = ctx.input(1).scalar_as_double() != 0;
    const int carried = ctx.num_inputs() - 2;
    if (carried < 0) fail(ErrorCode::InvalidGraph, "Loop needs the M and cond inputs (possibly empty names)");
    if (body_.num_inputs() != size_t(carried + 2))
      fail(ErrorCode::InvalidGraph, "the body takes ", body_.num_inputs(), " inputs; the node gives ", carried, " + 2");
    const int scans = int(body_.num_outputs()) - 1 - carried;
    if (scans < 0) fail(ErrorCode::InvalidGraph, "the body has too few outputs: ", body_.num_outputs());

    std::vector<Value> state;
    for (int i = 0; i < carried; ++i) state.push_back(ctx.input_value(2 + i));
    std::vector<std::vector<Tensor>> scan_items(static_cast<size_t>(scans));
    for (int64_t iter = 0; iter < max_trips && cond; ++iter) {
      Tensor it(DType::Int64, {});
      it.data<int64_t>()[0] = iter;
      Tensor c(DType::Bool, {});
      c.data<bool>()[0] = cond;
      std::vector<Value> feeds{Value(it), Value(c)};
      feeds.insert(feeds.end(), state.begin(), state.end());
      std::vector<Value> outs = body_.run(ctx.frame(), std::move(feeds));
      cond = outs[0].tensor().scalar_as_double() != 0;
      for (int i = 0; i < carried; ++i) state[size_t(i)] = std::move(outs[size_t(1 + i)]);
      for (int k = 0; k < scans; ++k) scan_items[size_t(k)].push_back(outs[size_t(1 + carried + k)].tensor());
    }
    for (int i = 0; i < carried; ++i) ctx.set_output_value(i, std::move(state[size_t(i)]));
    for (int k = 0; k < scans; ++k) {
      const auto& items = scan_items[size_t(k)];
      ctx.set_output_tensor(carried + k, items.empty() ? empty_scan_output(body_.graph().outputs[size_t(1 + carried + k)])
                                                       : stack(items, 0, "Loop scan output"));
    }
  }

 private:
  Subgraph body_;
};

const OpRegistration kLoop{"Loop", make_kernel<Loop>};

}  // namespace
}  // namespace kiln
