// SequenceMap (opset 17): runs the body once per element of the input sequence; additional
// sequence inputs contribute their i-th element, tensors are passed whole. Each body output
// is collected into an output sequence.
#include "kiln/ops/control/subgraph.h"

namespace kiln {
namespace {

class SequenceMap : public Kernel {
 public:
  explicit SequenceMap(const ir::Node& node) : body_(node, "body") {}
  void prepare(OpContext&) override {}
  void compute(OpContext& ctx) override {
    const auto& seq = ctx.input_value(0).items();
    const size_t n = seq.size();
    for (int k = 1; k < ctx.num_inputs(); ++k) {
      const Value& v = ctx.input_value(k);
      if (v.is_sequence() && v.items().size() != n)
        fail(ErrorCode::InvalidArgument, "input ", k, " is a sequence of ", v.items().size(), " tensors; input 0 has ", n);
    }
    if (body_.num_inputs() != size_t(ctx.num_inputs()))
      fail(ErrorCode::InvalidGraph, "the body takes ", body_.num_inputs(), " inputs, the node gives ", ctx.num_inputs());
    std::vector<std::vector<Tensor>> outs(static_cast<size_t>(ctx.num_outputs()));
    for (size_t i = 0; i < n; ++i) {
      std::vector<Value> feeds{Value(seq[i])};
      for (int k = 1; k < ctx.num_inputs(); ++k) {
        const Value& v = ctx.input_value(k);
        feeds.push_back(v.is_sequence() ? Value(v.items()[i]) : v);
      }
      std::vector<Value> results = body_.run(ctx.frame(), std::move(feeds));
      for (size_t o = 0; o < outs.size(); ++o) outs[o].push_back(results[o].tensor());
    }
    for (size_t o = 0; o < outs.size(); ++o) {
      DType t = outs[o].empty() ? body_.graph().outputs[o].type.dtype : outs[o].front().dtype();
      ctx.set_output_value(int(o), Value::sequence(std::move(outs[o]), t));
    }
  }

 private:
  Subgraph body_;
};

const OpRegistration kSequenceMap{"SequenceMap", make_kernel<SequenceMap>};

}  // namespace
}  // namespace kiln
