#include "kiln/plan/memory_plan.h"

#include <algorithm>
#include <numeric>

namespace kiln {

MemoryPlan plan_memory(const std::vector<BufferUse>& buffers) {
  MemoryPlan plan;
  plan.offsets.assign(buffers.size(), 0);
  std::vector<size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return buffers[a].bytes > buffers[b].bytes; });

  struct Placed {
    size_t offset, end;
    int first, last;
  };
  std::vector<Placed> placed;
  for (size_t i : order) {
    const BufferUse& b = buffers[i];
    size_t bytes = (b.bytes + 63) / 64 * 64;
    // Intervals taken by buffers alive at the same time, sorted by offset.
    std::vector<std::pair<size_t, size_t>> taken;
    for (const Placed& p : placed)
      if (p.first <= b.last && b.first <= p.last) taken.push_back({p.offset, p.end});
    std::sort(taken.begin(), taken.end());
    size_t offset = 0;
    for (const auto& [start, end] : taken) {
      if (offset + bytes <= start) break;
      offset = std::max(offset, end);
    }
    plan.offsets[i] = offset;
    placed.push_back({offset, offset + bytes, b.first, b.last});
    plan.arena_bytes = std::max(plan.arena_bytes, offset + bytes);
  }
  return plan;
}

}  // namespace kiln
