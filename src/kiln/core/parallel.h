// Kiln's parallel loops run on OpenMP, the runtime Debian's oneDNN is built on: one thread
// runtime per process (mixing pools made every oneDNN call 8-16x slower on this machine).
// The thread count is a per-calling-thread setting, so concurrent run() calls of sessions with
// different intra_op_num_threads do not disturb each other.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace kiln {

inline int num_threads() { return omp_get_max_threads(); }
inline void set_num_threads(int n) { omp_set_num_threads(std::max(1, n)); }

// Limits the calling thread's OpenMP team to `n` threads (n <= 0: no change) for a scope.
class ThreadLimit {
 public:
  explicit ThreadLimit(int n) : saved_(num_threads()) {
    if (n > 0) set_num_threads(n);
  }
  ~ThreadLimit() { set_num_threads(saved_); }
  ThreadLimit(const ThreadLimit&) = delete;
  ThreadLimit& operator=(const ThreadLimit&) = delete;

 private:
  int saved_;
};

// Threads for a oneDNN primitive of `flops` work: one below 0.3 MFLOP, where splitting a few
// microseconds over a team costs more than it saves (and a descheduled thread stalls the team
// on a busy machine); else the caller's team (0). oneDNN fixes a primitive's thread count when
// it is created, so kernels decide this in prepare and hold a ThreadLimit around creation and
// execution alike.
inline int primitive_threads(double flops) { return flops < 3e5 ? 1 : 0; }

// Calls fn(begin, end) on disjoint chunks covering [0, n); chunks hold at least `grain` items,
// so small loops stay on the calling thread.
template <typename Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  int threads = int(std::min<int64_t>(num_threads(), std::max<int64_t>(1, n / std::max<int64_t>(grain, 1))));
  if (threads <= 1 || omp_in_parallel()) {
    fn(int64_t(0), n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num();
    int nt = omp_get_num_threads();
    int64_t begin = n * t / nt, end = n * (t + 1) / nt;
    if (begin < end) fn(begin, end);
  }
}

// Calls fn(begin, end) once per thread of the calling thread's team, on contiguous chunks
// covering [0, n) of about equal total cost(i): for items of unequal size, such as a product's
// column panels where the last is narrower.
template <typename Cost, typename Fn>
void parallel_for_balanced(int64_t n, Cost&& cost, Fn&& fn) {
  if (n <= 0) return;
  const int threads = int(std::min<int64_t>(num_threads(), n));
  if (threads <= 1 || omp_in_parallel()) {
    fn(int64_t(0), n);
    return;
  }
  double total = 0;
  for (int64_t i = 0; i < n; ++i) total += double(cost(i));
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    // Chunk k starts at the first item whose half lies past k / nt of the total.
    auto start = [&](int k) {
      if (k >= nt) return n;
      const double want = total * k / nt;
      double before = 0;
      int64_t i = 0;
      for (; i < n && before + 0.5 * double(cost(i)) < want; ++i) before += double(cost(i));
      return i;
    };
    const int64_t begin = start(t), end = start(t + 1);
    if (begin < end) fn(begin, end);
  }
}

}  // namespace kiln
