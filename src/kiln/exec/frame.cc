#include "kiln/exec/frame.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <numeric>
#include <set>
#include <thread>

#include "kiln/core/error.h"
#include "kiln/core/parallel.h"

namespace kiln {

namespace {
int64_t slot_key(int step, int out) { return int64_t(step) * 65536 + out; }
// Address space each arena reserves (only pages in use are resident): room for the recording
// runs of most models, and for their plans to grow in place from shape to shape.
constexpr size_t kArenaReserve = size_t(1) << 30;
}  // namespace

Frame::Frame(const ExecutionPlan& plan, const Frame* parent, const KernelSource* source)
    : plan_(plan),
      parent_(parent),
      source_(source ? source : parent ? parent->source_ : &KernelSource::registry_only()) {
  const ir::Graph& g = *plan.graph;
  states_.resize(plan.steps.size());
  for (size_t s = 0; s < plan.steps.size(); ++s) {
    const ir::Node& node = g.nodes[size_t(plan.steps[s].node)];
    const KernelFactory factory = source_->find(node);
    if (!factory)
      fail(ErrorCode::NotImplemented, "no kernel for ", node.label(), " at opset ", node.opset);
    KernelInit init{node, {}};
    std::set<std::string> overridable;
    for (const auto& v : g.inputs) overridable.insert(v.name);
    for (const auto& in : node.inputs) {
      auto it = g.initializers.find(in);
      init.constants.push_back(it != g.initializers.end() && !overridable.count(in) ? &it->second : nullptr);
    }
    try {
      states_[s].kernel = factory(init);
    } catch (const Error& e) {
      fail(e.code() == ErrorCode::Fail ? ErrorCode::InvalidGraph : e.code(), node.label(), ": ", e.what());
    }
    states_[s].value_inputs = states_[s].kernel->value_inputs();
  }
  slots_.resize(plan.value_names.size());
  for (int v : plan.initializers) slots_[size_t(v)] = Value(g.initializers.at(plan.value_names[size_t(v)]));
  frees_.resize(plan.steps.size());
  for (size_t v = 0; v < plan.last_use.size(); ++v) {
    int last = plan.last_use[v];
    if (last == ExecutionPlan::kForever) continue;
    int at = last >= 0 ? last : plan.producer[v];
    if (at >= 0) frees_[size_t(at)].push_back(int(v));
  }
}

const Value* Frame::find(const std::string& name) const {
  int id = plan_.id(name);
  if (id >= 0 && slots_[size_t(id)].defined()) return &slots_[size_t(id)];
  return parent_ ? parent_->find(name) : nullptr;
}

bool Frame::needs_prepare(int step) const {
  const StepState& st = states_[size_t(step)];
  if (!st.prepared) return true;
  const Step& s = plan_.steps[size_t(step)];
  for (size_t i = 0; i < s.inputs.size(); ++i) {
    const Value* v = s.inputs[i] >= 0 ? &slots_[size_t(s.inputs[i])] : nullptr;
    if (v && !v->is_tensor()) return true;  // sequences and optionals: no shape to compare
    const Tensor* t = v ? &v->tensor() : nullptr;
    DType dt = t ? t->dtype() : DType::Undefined;
    if (dt != st.in_types[i]) return true;
    if (t && t->shape() != st.in_shapes[i]) return true;
  }
  for (size_t k = 0; k < st.value_inputs.size(); ++k) {
    int i = st.value_inputs[k];
    if (size_t(i) >= s.inputs.size() || s.inputs[size_t(i)] < 0) continue;
    const Tensor& t = slots_[size_t(s.inputs[size_t(i)])].tensor();
    if (t.dtype() == DType::String || t.dtype() == DType::Float32 || t.dtype() == DType::Float64) return true;
    if (t.to_int64s() != st.in_values[k]) return true;
  }
  return false;
}

void Frame::remember_inputs(int step) {
  StepState& st = states_[size_t(step)];
  const Step& s = plan_.steps[size_t(step)];
  st.in_types.assign(s.inputs.size(), DType::Undefined);
  st.in_shapes.assign(s.inputs.size(), {});
  for (size_t i = 0; i < s.inputs.size(); ++i) {
    if (s.inputs[i] < 0 || !slots_[size_t(s.inputs[i])].is_tensor()) continue;
    const Tensor& t = slots_[size_t(s.inputs[i])].tensor();
    st.in_types[i] = t.dtype();
    st.in_shapes[i] = t.shape();
  }
  st.in_values.assign(st.value_inputs.size(), {});
  for (size_t k = 0; k < st.value_inputs.size(); ++k) {
    int i = st.value_inputs[k];
    if (size_t(i) >= s.inputs.size() || s.inputs[size_t(i)] < 0) continue;
    if (!slots_[size_t(s.inputs[size_t(i)])].is_tensor()) continue;
    const Tensor& t = slots_[size_t(s.inputs[size_t(i)])].tensor();
    DType dt = t.dtype();
    if (dt != DType::String && dt != DType::Float32 && dt != DType::Float64 && dt != DType::Float16 &&
        dt != DType::BFloat16)
      st.in_values[k] = t.to_int64s();
  }
  st.prepared = true;
}

Tensor* Frame::sole_dying_input(int step, int in, const std::unordered_set<int>& recorded) const {
  const Step& st = plan_.steps[size_t(step)];
  if (in < 0 || size_t(in) >= st.inputs.size() || st.inputs[size_t(in)] < 0) return nullptr;
  const int v = st.inputs[size_t(in)];
  // Only an intermediate that dies here, read by no other input slot of this step.
  if (plan_.producer[size_t(v)] < 0 || plan_.last_use[size_t(v)] != step) return nullptr;
  for (size_t k = 0; k < st.inputs.size(); ++k)
    if (int(k) != in && st.inputs[k] == v) return nullptr;
  const Value& value = slots_[size_t(v)];
  if (!value.is_tensor() || !value.tensor().owner()) return nullptr;
  Tensor* t = const_cast<Tensor*>(&value.tensor());
  if (replay_) return recorded.count(step) ? t : nullptr;  // the recorded decision
  // Recording: the buffer is the slot's alone (no view, sequence or graph output shares it).
  return t->owner().use_count() == 1 ? t : nullptr;
}

const Tensor* Frame::inplace_source(int step, DType dtype, const Shape& shape) const {
  const Tensor* t = sole_dying_input(step, states_[size_t(step)].kernel->inplace_input(), inplace_steps_);
  return t && t->dtype() == dtype && t->shape() == shape ? t : nullptr;
}

Tensor* Frame::consumable(int step, int in) {
  Tensor* t = sole_dying_input(step, in, consumed_steps_);
  if (t && !replay_) consumed_steps_.insert(step);
  return t;
}

void Frame::forget_plan() {
  replay_ = false;
  planned_.clear();
  inplace_steps_.clear();
  consumed_steps_.clear();
}

Tensor& Frame::allocate(int step, int out, DType dtype, Shape shape) {
  int v = plan_.steps[size_t(step)].outputs[size_t(out)];
  Value& value = slots_[size_t(v)];
  const size_t bytes = size_t(shape_size(shape)) * dtype_size(dtype);
  const bool plannable = dtype != DType::String && plan_.last_use[size_t(v)] != ExecutionPlan::kForever && bytes > 0;
  if (out == 0 && plannable) {
    if (const Tensor* src = inplace_source(step, dtype, shape)) {
      if (!replay_) inplace_steps_.insert(step);
      value = Tensor::view(dtype, std::move(shape), const_cast<void*>(src->raw()), src->owner());
      return value.tensor();
    }
  }
  if (plannable && replay_) {
    auto it = planned_.find(slot_key(step, out));
    if (it != planned_.end() && it->second.bytes == bytes) {
      char* data = arena_->data() + it->second.offset;
      value = Tensor::view(dtype, std::move(shape), data, std::shared_ptr<void>(arena_, data));
      return value.tensor();
    }
    replay_ok_ = false;
  }
  std::shared_ptr<void> taken = plannable && !replay_ && arena_ ? arena_->take(bytes) : nullptr;
  if (taken) {
    void* data = taken.get();
    value = Tensor::view(dtype, std::move(shape), data, std::move(taken));
  } else {
    value = Tensor(dtype, std::move(shape));
    if (plannable && !replay_) heap_recorded_bytes_ += bytes;
  }
  Tensor& slot = value.tensor();
  if (plannable && !replay_) {
    recorded_owner_[slot.owner().get()] = recorded_.size();
    recorded_.push_back({slot_key(step, out), {bytes, step, step}});
  }
  if (plan_.last_use[size_t(v)] == ExecutionPlan::kForever) fresh_outputs_.insert(slot.owner().get());
  return slot;
}

void Frame::set_output(int step, int out, Value value) {
  int v = plan_.steps[size_t(step)].outputs[size_t(out)];
  if (value.is_tensor()) {
    const Tensor& t = value.tensor();
    // In replay, a buffer the plan placed for this output may not be replaced by a view whose
    // root lifetime the plan did not see: copy into the planned place instead.
    if (replay_ && planned_.count(slot_key(step, out)) && in_arena(t)) {
      Tensor& dst = allocate(step, out, t.dtype(), t.shape());
      copy_elements(t, dst);
      return;
    }
  } else if (value.is_sequence()) {
    // A sequence may outlive its items' buffers in the arena: keep them on the heap.
    bool any = false;
    for (const Tensor& t : value.items()) any |= in_arena(t);
    if (any) {
      std::vector<Tensor> items;
      for (const Tensor& t : value.items()) items.push_back(in_arena(t) ? t.clone() : t);
      value = Value::sequence(std::move(items), value.elem_type());
    }
  }
  slots_[size_t(v)] = std::move(value);
}

void Frame::finish_recording(int num_steps) {
  if (replay_) {
    if (!replay_ok_) forget_plan();  // shapes moved: record afresh next run
    return;
  }
  std::vector<BufferUse> uses;
  for (auto& r : recorded_) {
    r.use.last = std::min(r.use.last, num_steps);
    uses.push_back(r.use);
  }
  MemoryPlan mp = plan_memory(uses);
  planned_.clear();
  for (size_t i = 0; i < recorded_.size(); ++i) planned_[recorded_[i].key] = {mp.offsets[i], recorded_[i].use.bytes};
  // The plan goes over the pages the recording run touched, unless a tensor of it (or of an
  // earlier replay) is still alive somewhere and holds the arena.
  if (!arena_ || arena_.use_count() > 1 || arena_->capacity() < mp.arena_bytes) {
    arena_.reset();
    arena_ = Arena::reserve(std::max(kArenaReserve, 2 * mp.arena_bytes));
    if (!arena_) arena_ = Arena::reserve(mp.arena_bytes);
    if (!arena_) fail(ErrorCode::RuntimeException, "out of memory reserving a ", mp.arena_bytes, "-byte arena");
  }
  arena_->keep(mp.arena_bytes);
  arena_bytes_ = mp.arena_bytes;
  // Buffers that did not fit the arena came from the C heap, which keeps their pages: hand
  // them back, but not for a few megabytes, which the next recording run would only fault in
  // again.
  if (heap_recorded_bytes_ >= (size_t(16) << 20)) release_free_memory();
  heap_recorded_bytes_ = 0;
  recorded_.clear();
  recorded_owner_.clear();
  replay_ = true;
  settle_due_ = true;
  plan_inputs_ = std::move(run_inputs_);
}

void Frame::run_spread(const std::function<std::function<void()>(Kernel&)>& work_of) {
  std::vector<std::function<void()>> work;
  for (StepState& st : states_)
    if (std::function<void()> fn = work_of(*st.kernel)) work.push_back(std::move(fn));
  if (work.empty()) return;
#pragma omp parallel for schedule(dynamic, 1) if (num_threads() > 1 && !omp_in_parallel())
  for (size_t i = 0; i < work.size(); ++i) {
    try {
      work[i]();
    } catch (...) {  // the run's own prepare() meets and reports whatever went wrong
    }
  }
}

void Frame::reset_slots() {
  for (size_t v = 0; v < slots_.size(); ++v) slots_[v] = Value();
  for (int v : plan_.initializers) slots_[size_t(v)] = Value(plan_.graph->initializers.at(plan_.value_names[size_t(v)]));
  fresh_outputs_.clear();
}

bool Frame::in_arena(const Tensor& t) const {
  const char* p = static_cast<const char*>(t.raw());
  return arena_ && p >= arena_->data() && p < arena_->data() + arena_->capacity();
}

std::vector<Value> Frame::run(const std::vector<std::pair<int, Value>>& feeds, const RunContext* ctx) {
  return run(feeds, plan_.graph_outputs, ctx);
}

namespace {
NodeEvent node_event(const ir::Node& node, const std::vector<Value>& slots, const Step& step) {
  NodeEvent e;
  e.name = node.name;
  e.op_type = node.op_type;
  for (int v : step.inputs)
    if (v >= 0 && slots[size_t(v)].is_tensor()) {
      e.input_shapes.push_back(slots[size_t(v)].tensor().shape());
      e.input_types.push_back(dtype_name(slots[size_t(v)].tensor().dtype()));
    }
  for (int v : step.outputs)
    if (v >= 0 && slots[size_t(v)].is_tensor()) {
      e.output_shapes.push_back(slots[size_t(v)].tensor().shape());
      e.output_types.push_back(dtype_name(slots[size_t(v)].tensor().dtype()));
    }
  // A weight packed at load reports the shape and type it has in the model.
  if (const ir::Attribute* kn = node.attr("kiln_packed_shape"); kn && e.input_shapes.size() > 1) {
    e.input_shapes[1] = Shape(kn->ints.begin(), kn->ints.end());
    e.input_types[1] = dtype_name(DType::Float32);
  }
  return e;
}

// The factor num/den by which `now` scales the batch (dimension 0) of `before`, input by input;
// false unless every input keeps its other dimensions and all scale alike.
bool batch_scale(const std::vector<Shape>& before, const std::vector<Shape>& now, int64_t& num, int64_t& den) {
  if (before.size() != now.size() || before.empty()) return false;
  num = den = 0;
  for (size_t i = 0; i < now.size(); ++i) {
    const Shape &a = before[i], &b = now[i];
    if (a.size() != b.size() || a.empty() || a[0] <= 0 || b[0] <= 0) return false;
    if (!std::equal(a.begin() + 1, a.end(), b.begin() + 1)) return false;
    const int64_t common = std::gcd(a[0], b[0]), n = b[0] / common, d = a[0] / common;
    if (den && (n != num || d != den)) return false;
    num = n, den = d;
  }
  return num != den;
}
}  // namespace

std::vector<Value> Frame::run(const std::vector<std::pair<int, Value>>& feeds, const std::vector<int>& fetch,
                              const RunContext* run_ctx) {
  run_ctx_ = run_ctx;
  Profiler* profiler = run_ctx ? run_ctx->profiler : nullptr;
  for (const auto& [v, t] : feeds) slots_[size_t(v)] = t;
  for (int v : plan_.outer_values) {
    const Value* outer = parent_ ? parent_->find(plan_.value_names[size_t(v)]) : nullptr;
    if (!outer) fail(ErrorCode::Fail, "outer-scope value '", plan_.value_names[size_t(v)], "' is not available");
    slots_[size_t(v)] = *outer;
  }
  replay_ok_ = true;
  fresh_outputs_.clear();
  // The fed and outer-scope values' shapes, in order ([-1] for a non-tensor).
  auto for_each_input_shape = [&](auto&& fn) {
    static const Shape kNotTensor{-1};
    auto shape_of = [&](int v) -> const Shape& {
      return slots_[size_t(v)].is_tensor() ? slots_[size_t(v)].tensor().shape() : kNotTensor;
    };
    for (const auto& [v, t] : feeds) fn(shape_of(v));
    for (int v : plan_.outer_values) fn(shape_of(v));
  };
  if (replay_) {  // new shapes: record now, not after a failed replay
    size_t k = 0;
    bool same = plan_inputs_.size() == feeds.size() + plan_.outer_values.size();
    for_each_input_shape([&](const Shape& s) { same = same && plan_inputs_[k++] == s; });
    if (!same) forget_plan();
  }
  if (replay_ && arena_.use_count() > 1) {
    // A tensor of an earlier run is still alive in the arena (a Python op may keep its input):
    // the plan moves to a fresh arena rather than write over it.
    if (std::shared_ptr<Arena> fresh = Arena::reserve(arena_->capacity())) {
      arena_ = std::move(fresh);
      arena_->keep(arena_bytes_);
    } else {
      forget_plan();
    }
  }
  const int num_steps = int(plan_.steps.size());
  if (!replay_) {
    // A tensor of an earlier run that is still alive holds the arena: record in a new one.
    if (!arena_ || arena_.use_count() > 1) arena_ = Arena::reserve(std::max(kArenaReserve, arena_bytes_));
    run_inputs_.clear();
    for_each_input_shape([&](const Shape& s) { run_inputs_.push_back(s); });
    int64_t num = 0, den = 0;
    // A new batch size: the kernels make what they will need for it (oneDNN primitives) all at
    // once, spread over the threads, and the run's prepare() calls find them made. Made one by
    // one in the run, on one thread while the other waited, they took 7-8 ms of MobileNetV3's
    // and SqueezeNet's first run at 8 images, 2 threads (27-30 ms; now 24-27, warm 13-14).
    if (num_threads() > 1 && !omp_in_parallel() && batch_scale(plan_inputs_, run_inputs_, num, den))
      run_spread([&](Kernel& k) { return k.ahead(num, den); });
  } else if (settle_due_) {  // the second run at these shapes
    settle_due_ = false;
    run_spread([](Kernel& k) { return k.settle(); });
  }
  try {
    for (int s = 0; s < num_steps; ++s) {
      const Step& step = plan_.steps[size_t(s)];
      StepState& st = states_[size_t(s)];
      const ir::Node& node = plan_.graph->nodes[size_t(step.node)];
      OpContext ctx(*this, s);
      if (run_ctx && run_ctx->terminate && run_ctx->terminate->load(std::memory_order_relaxed))
        fail(ErrorCode::Fail, "Exiting due to terminate flag being set to true.");
      const int64_t t0 = profiler ? profiler->now_us() : 0;
      try {
        if (needs_prepare(s)) {
          st.out_types.assign(step.outputs.size(), DType::Undefined);
          st.out_shapes.assign(step.outputs.size(), {});
          st.out_declared.assign(step.outputs.size(), false);
          st.kernel->prepare(ctx);
          remember_inputs(s);
        }
        for (int v : step.outputs)
          if (v >= 0) slots_[size_t(v)] = Value();
        st.kernel->compute(ctx);
        for (size_t o = 0; o < step.outputs.size(); ++o) {
          int v = step.outputs[o];
          if (v < 0 || slots_[size_t(v)].defined()) continue;
          if (!st.out_declared[o])
            fail(ErrorCode::Fail, "output ", o, " ('", node.outputs[o], "') was not produced");
          ctx.output(int(o));  // declared but untouched: an empty or unwritten tensor
        }
      } catch (const Error& e) {
        fail(e.code(), node.label(), ": ", e.what());
      } catch (const std::exception& e) {
        fail(ErrorCode::RuntimeException, node.label(), ": ", e.what());
      }
      if (profiler) {
        NodeEvent e = node_event(node, slots_, step);
        e.start_us = t0;
        e.dur_us = profiler->now_us() - t0;
        e.thread = std::hash<std::thread::id>()(std::this_thread::get_id());
        profiler->record(std::move(e));
      }
      for (int v : frees_[size_t(s)]) {
        Value& value = slots_[size_t(v)];
        if (!replay_ && value.is_tensor() && value.tensor().owner()) {
          auto it = recorded_owner_.find(value.tensor().owner().get());
          if (it != recorded_owner_.end()) recorded_[it->second].use.last = std::max(recorded_[it->second].use.last, s);
        }
        value = Value();
      }
    }
  } catch (...) {
    reset_slots();
    recorded_.clear();
    recorded_owner_.clear();
    heap_recorded_bytes_ = 0;
    forget_plan();
    throw;
  }

  std::vector<Value> results;
  std::vector<const void*> handed_out;  // a few outputs: a scan, no allocations per entry
  for (int v : fetch) {
    if (!slots_[size_t(v)].is_tensor()) {
      results.push_back(slots_[size_t(v)]);
      continue;
    }
    Tensor& t = slots_[size_t(v)].tensor();
    if (!replay_ && t.owner()) {
      auto it = recorded_owner_.find(t.owner().get());
      if (it != recorded_owner_.end()) recorded_[it->second].use.last = num_steps;
    }
    const void* owner = t.owner().get();
    bool own = owner && fresh_outputs_.count(owner) &&
               std::find(handed_out.begin(), handed_out.end(), owner) == handed_out.end();
    results.push_back(own ? t : t.clone());
    handed_out.push_back(owner);
  }
  reset_slots();
  finish_recording(num_steps);
  return results;
}

// --- OpContext -------------------------------------------------------------------------------

const ir::Node& OpContext::node() const {
  return frame_.plan_.graph->nodes[size_t(frame_.plan_.steps[size_t(node_)].node)];
}

int OpContext::num_inputs() const { return int(frame_.plan_.steps[size_t(node_)].inputs.size()); }

bool OpContext::has_input(int i) const {
  const auto& in = frame_.plan_.steps[size_t(node_)].inputs;
  return i >= 0 && size_t(i) < in.size() && in[size_t(i)] >= 0;
}

const Tensor& OpContext::input(int i) const {
  if (!has_input(i)) fail(ErrorCode::InvalidArgument, "required input ", i, " is missing");
  return frame_.slots_[size_t(frame_.plan_.steps[size_t(node_)].inputs[size_t(i)])].tensor();
}

Tensor* OpContext::consumable_input(int i) { return has_input(i) ? frame_.consumable(node_, i) : nullptr; }

const Value& OpContext::input_value(int i) const {
  if (!has_input(i)) fail(ErrorCode::InvalidArgument, "required input ", i, " is missing");
  return frame_.slots_[size_t(frame_.plan_.steps[size_t(node_)].inputs[size_t(i)])];
}

int OpContext::num_outputs() const { return int(frame_.plan_.steps[size_t(node_)].outputs.size()); }

bool OpContext::has_output(int i) const {
  const auto& out = frame_.plan_.steps[size_t(node_)].outputs;
  return i >= 0 && size_t(i) < out.size() && out[size_t(i)] >= 0;
}

void OpContext::set_output(int i, DType dtype, Shape shape) {
  auto& st = frame_.states_[size_t(node_)];
  if (i < 0 || size_t(i) >= st.out_types.size()) fail(ErrorCode::Fail, "output index ", i, " out of range");
  for (int64_t d : shape)
    if (d < 0) fail(ErrorCode::Fail, "output ", i, " would have negative dimension: ", shape_str(shape));
  st.out_types[size_t(i)] = dtype;
  st.out_shapes[size_t(i)] = std::move(shape);
  st.out_declared[size_t(i)] = true;
}

Tensor& OpContext::output(int i) {
  if (!has_output(i)) fail(ErrorCode::Fail, "output ", i, " is not requested by the graph");
  int v = frame_.plan_.steps[size_t(node_)].outputs[size_t(i)];
  Value& slot = frame_.slots_[size_t(v)];
  if (slot.defined()) return slot.tensor();
  auto& st = frame_.states_[size_t(node_)];
  if (!st.out_declared[size_t(i)]) fail(ErrorCode::Fail, "output ", i, " has no shape: prepare() did not set it");
  return frame_.allocate(node_, i, st.out_types[size_t(i)], st.out_shapes[size_t(i)]);
}

Tensor& OpContext::allocate_output(int i, DType dtype, Shape shape) {
  if (!has_output(i)) fail(ErrorCode::Fail, "output ", i, " is not requested by the graph");
  return frame_.allocate(node_, i, dtype, std::move(shape));
}

void OpContext::set_output_tensor(int i, Tensor t) {
  if (!has_output(i)) return;
  frame_.set_output(node_, i, Value(std::move(t)));
}

void OpContext::set_output_value(int i, Value v) {
  if (!has_output(i)) return;
  frame_.set_output(node_, i, std::move(v));
}

}  // namespace kiln
