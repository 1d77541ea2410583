// Places buffers with known sizes and lifetimes in one arena so that buffers whose lifetimes
// overlap never overlap in memory (greedy by size, lowest fitting offset).
#pragma once

#include <cstddef>
#include <vector>

namespace kiln {

struct BufferUse {
  size_t bytes = 0;
  int first = 0;  // step that writes it
  int last = 0;   // last step that reads it (inclusive)
};

struct MemoryPlan {
  std::vector<size_t> offsets;  // per BufferUse, 64-byte aligned
  size_t arena_bytes = 0;
};

MemoryPlan plan_memory(const std::vector<BufferUse>& buffers);

}  // namespace kiln
