// What one run() carries besides its feeds: a flag another thread may set to stop it, and an
// optional profiler that records one event per node.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "kiln/core/tensor.h"

namespace kiln {

struct NodeEvent {
  std::string name, op_type;
  int64_t start_us = 0, dur_us = 0;  // since the profiler started
  std::vector<Shape> input_shapes, output_shapes;
  std::vector<std::string> input_types, output_types;
  size_t thread = 0;
};

struct RunEvent {
  int64_t start_us = 0, dur_us = 0;
  std::string tag;
};

class Profiler {
 public:
  Profiler() : start_(std::chrono::steady_clock::now()) {}
  int64_t now_us() const {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start_).count();
  }
  void record(NodeEvent e) {
    std::lock_guard<std::mutex> lock(mu_);
    nodes_.push_back(std::move(e));
  }
  void record(RunEvent e) {
    std::lock_guard<std::mutex> lock(mu_);
    runs_.push_back(std::move(e));
  }
  // Everything recorded so far; the profiler starts afresh.
  std::pair<std::vector<NodeEvent>, std::vector<RunEvent>> take() {
    std::lock_guard<std::mutex> lock(mu_);
    return {std::move(nodes_), std::move(runs_)};
  }

 private:
  std::chrono::steady_clock::time_point start_;
  std::mutex mu_;
  std::vector<NodeEvent> nodes_;
  std::vector<RunEvent> runs_;
};

struct RunContext {
  const std::atomic<bool>* terminate = nullptr;
  Profiler* profiler = nullptr;
  std::string tag;
};

}  // namespace kiln
