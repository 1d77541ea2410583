// A frame is everything one run needs that may change between runs: the kernels with their
// per-shape state, the value slots, and the arena. A session lends each run its own frame, so
// concurrent runs never share mutable state.
//
// Memory: the first run at a set of shapes takes every intermediate from the frame's arena as
// it comes (first fit; the heap when that is full) and records each buffer's size and
// lifetime; from then on the frame places them all in the arena by that plan. A run fed other
// shapes than the plan's records afresh right away; one whose sizes differ from the plan
// anyway (data-dependent shapes) falls back to the heap for the differing buffers and records
// on the next run.
#pragma once

#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "kiln/core/value.h"
#include "kiln/exec/arena.h"
#include "kiln/exec/kernel.h"
#include "kiln/exec/run_context.h"
#include "kiln/plan/execution_plan.h"
#include "kiln/plan/memory_plan.h"

namespace kiln {

class Frame {
 public:
  // `parent` supplies outer-scope values of a subgraph frame (and its kernel source); null for
  // a main graph, whose kernels come from `source`.
  Frame(const ExecutionPlan& plan, const Frame* parent, const KernelSource* source = nullptr);

  // Runs every step. `feeds` are (value id, tensor) for graph inputs and overridden
  // initializers; the results are the graph outputs, owned by the caller.
  // `ctx` (may be null) can stop the run and profile it; subgraph runs inherit it.
  std::vector<Value> run(const std::vector<std::pair<int, Value>>& feeds, const RunContext* ctx = nullptr);
  // Like run(), but only the listed outputs are returned, in that order.
  std::vector<Value> run(const std::vector<std::pair<int, Value>>& feeds, const std::vector<int>& fetch,
                         const RunContext* ctx = nullptr);
  const RunContext* run_context() const { return run_ctx_; }

  const ExecutionPlan& plan() const { return plan_; }
  // A value visible to a subgraph of this frame: this frame's slots, then its parent's.
  const Value* find(const std::string& name) const;
  size_t arena_bytes() const { return arena_bytes_; }

 private:
  friend class OpContext;
  struct StepState {
    std::unique_ptr<Kernel> kernel;
    std::vector<int> value_inputs;
    bool prepared = false;
    std::vector<DType> in_types;
    std::vector<Shape> in_shapes;
    std::vector<std::vector<int64_t>> in_values;
    std::vector<DType> out_types;
    std::vector<Shape> out_shapes;
    std::vector<bool> out_declared;
  };
  struct Planned {
    size_t offset, bytes;
  };

  bool needs_prepare(int step) const;
  void remember_inputs(int step);
  Tensor& allocate(int step, int out, DType dtype, Shape shape);
  // The input buffer output 0 of `step` may write into, or null.
  const Tensor* inplace_source(int step, DType dtype, const Shape& shape) const;
  // Input `in` of `step` when the step may overwrite it (OpContext::consumable_input), or null.
  Tensor* consumable(int step, int in);
  // Input `in` of `step` when it is an intermediate that dies there, read by no other input of
  // the step, and its buffer is the slot's alone; replaying, when `recorded` holds the step.
  Tensor* sole_dying_input(int step, int in, const std::unordered_set<int>& recorded) const;
  // Drops the arena plan: the next run records afresh.
  void forget_plan();
  void set_output(int step, int out, Value v);
  void finish_recording(int num_steps);
  void reset_slots();
  // Runs the work `work_of` finds in each step's kernel (its ahead() or settle()), spread over
  // the session's threads.
  void run_spread(const std::function<std::function<void()>(Kernel&)>& work_of);
  // Whether t lives in the arena by the plan.
  bool in_arena(const Tensor& t) const;

  const ExecutionPlan& plan_;
  const Frame* parent_;
  const KernelSource* source_;
  const RunContext* run_ctx_ = nullptr;
  std::vector<StepState> states_;
  std::vector<Value> slots_;
  std::vector<std::vector<int>> frees_;  // per step: values dead after it

  // Memory plan state.
  bool replay_ = false;          // the arena plan is in force
  bool replay_ok_ = true;        // this run matched the plan so far
  bool settle_due_ = false;      // the next replay first asks the kernels to settle()
  // Shapes fed (and read from outer scopes): by the recording run, and by the plan's.
  std::vector<Shape> run_inputs_, plan_inputs_;
  std::unordered_map<int64_t, Planned> planned_;  // key: step * 65536 + output
  // Shared by the tensors placed in it: a tensor that outlives its run keeps the arena too, and
  // the frame then moves on to a new one.
  std::shared_ptr<Arena> arena_;
  size_t arena_bytes_ = 0;  // the plan's
  size_t heap_recorded_bytes_ = 0;  // the recording run's buffers that did not fit the arena
  struct Recorded {
    int64_t key;
    BufferUse use;
  };
  std::vector<Recorded> recorded_;
  std::unordered_map<const void*, size_t> recorded_owner_;  // heap owner -> recorded_ index
  std::unordered_set<const void*> fresh_outputs_;           // heap buffers made for graph outputs
  std::unordered_set<int> inplace_steps_;                   // steps whose output 0 took its input's buffer
  std::unordered_set<int> consumed_steps_;                  // steps that may overwrite a dying input
};

}  // namespace kiln
