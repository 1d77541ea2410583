// Runs a subgraph (an If branch, a Loop or Scan body) inside the frame of the node that owns
// it: outer-scope names resolve through that frame. The body's frame lives as long as the
// kernel, so its kernels and memory plan are reused across iterations and runs.
#pragma once

#include <memory>

#include "kiln/exec/frame.h"

namespace kiln {

class Subgraph {
 public:
  Subgraph(const ir::Node& node, const std::string& attr);

  // Feeds the body's declared inputs by position; returns its outputs.
  std::vector<Value> run(Frame& parent, std::vector<Value> inputs);
  const ir::Graph& graph() const { return *graph_; }
  size_t num_inputs() const { return graph_->inputs.size(); }
  size_t num_outputs() const { return graph_->outputs.size(); }

 private:
  std::shared_ptr<ir::Graph> graph_;
  ExecutionPlan plan_;
  std::vector<int> input_ids_;
  std::unique_ptr<Frame> frame_;
  const Frame* parent_ = nullptr;
};

// An empty tensor for a scan output of a loop that ran zero times: [0] + the body's declared
// shape of that output when it is fully known, else [0].
Tensor empty_scan_output(const ir::ValueInfo& info);

// Stacks equally shaped tensors along a new axis.
Tensor stack(const std::vector<Tensor>& items, int64_t axis, const char* what);

}  // namespace kiln
