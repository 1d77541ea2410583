// A session owns a model, its execution plan and a pool of frames. run() is safe to call from
// many threads at once: each run borrows a frame of its own.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kiln/exec/frame.h"
#include "kiln/ir/graph.h"
#include "kiln/plan/execution_plan.h"

namespace kiln {

enum class OptLevel { Disabled = 0, Basic = 1, Extended = 2, All = 99 };

struct SessionConfig {
  int intra_op_threads = 0;  // 0: one per core
  OptLevel optimization = OptLevel::All;
  std::map<std::string, std::string> entries;  // add_session_config_entry
  KernelSource kernels;                        // ops given to this session only
  bool profile = false;                        // record an event per node and run
};

class Session {
 public:
  Session(std::shared_ptr<ir::Model> model, SessionConfig config);
  ~Session();

  // Feeds by name; `fetch` names the outputs wanted (empty: all, in graph order).
  // `ctx` may carry a terminate flag and a run tag; the session's profiler, when profiling is
  // on, is added to it.
  std::vector<Value> run(const std::vector<std::pair<std::string, Value>>& feeds,
                         const std::vector<std::string>& fetch, RunContext ctx = {});
  // Null unless SessionConfig::profile.
  Profiler* profiler() { return profiler_.get(); }

  const ir::Model& model() const { return *model_; }
  // The optimized model as ONNX can hold it: packed weights back in their plain layout.
  ir::Model optimized_model() const;
  const SessionConfig& config() const { return config_; }
  int threads() const { return threads_; }
  // Declared inputs a caller must feed (initializers excluded).
  std::vector<const ir::ValueInfo*> inputs() const;
  std::vector<const ir::ValueInfo*> outputs() const;
  // Inputs that are also initializers: a feed replaces the stored value for that run.
  std::vector<const ir::ValueInfo*> overridable_initializers() const;

 private:
  std::unique_ptr<Frame> borrow_frame();
  void return_frame(std::unique_ptr<Frame> frame);
  void check_feed(const ir::ValueInfo& info, const Value& v) const;

  std::shared_ptr<ir::Model> model_;
  SessionConfig config_;
  int threads_;
  ExecutionPlan plan_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Frame>> idle_;
  std::unique_ptr<Profiler> profiler_;
};

// Every op of the graph (and its subgraphs) that has no kernel, as "Domain::Op (opset N)".
std::vector<std::string> unsupported_ops(const ir::Model& model,
                                         const KernelSource& source = KernelSource::registry_only());

}  // namespace kiln
