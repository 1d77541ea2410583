// Kiln's parallel loops run on OpenMP, the runtime Debian's oneDNN is built on: one thread
// runtime per process (mixing pools made every oneDNN call 8-16x slower on this machine).
// The thread count is a per-calling-thread setting, so concurrent run() calls of sessions with
// different intra_op_num_threads do not disturb each other.
#pragma once

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

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

// Work goes out in pieces, several per thread: thread t takes its own run of them in order (the
// share a static split would give it, so consecutive ops keep their data on the same core), then
// helps the others with the pieces they have not started. On a shared machine one thread of a
// team is often descheduled or slowed for a while, and with a fixed share each the team waited
// on it. Zen 3 under KVM, 2 threads, interleaved against one piece per thread: BERT-base 14%,
// EfficientNet-B0 13%, MobileNetV3 9%, ResNet-50 6% faster, SqueezeNet level; 4 per thread
// 1-2% behind 8.
constexpr int64_t kPiecesPerThread = 8;

namespace detail {
// fn(k) for each k in [0, pieces), over `threads` threads (the team may be smaller: the pieces of
// a missing thread are taken by the others).
template <typename Fn>
void run_pieces(int64_t pieces, int threads, Fn&& fn) {
  struct alignas(64) Next {
    std::atomic<int64_t> k;
  };
  std::unique_ptr<Next[]> next(new Next[size_t(threads)]);
  for (int t = 0; t < threads; ++t) next[size_t(t)].k.store(pieces * t / threads, std::memory_order_relaxed);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    for (int i = 0; i < threads; ++i) {
      const int u = (t + i) % threads;
      const int64_t end = pieces * (u + 1) / threads;
      for (int64_t k; (k = next[size_t(u)].k.fetch_add(1, std::memory_order_relaxed)) < end;) fn(k);
    }
  }
}
}  // namespace detail

// The most calls parallel_for(n, grain, fn) makes: for callers that keep a partial result per call.
inline int64_t parallel_pieces(int64_t n, int64_t grain) {
  if (n <= 0) return 0;
  const int64_t most = std::max<int64_t>(1, n / std::max<int64_t>(grain, 1));
  const int64_t threads = std::min<int64_t>(num_threads(), most);
  if (threads <= 1 || omp_in_parallel()) return 1;
  return std::min(most, threads * kPiecesPerThread);
}

// Calls fn(begin, end) on disjoint chunks covering [0, n), on the calling thread's team; chunks
// hold at least `grain` items, so small loops stay on the calling thread.
template <typename Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
  const int64_t pieces = parallel_pieces(n, grain);
  if (pieces <= 1) {
    if (n > 0) fn(int64_t(0), n);
    return;
  }
  const int threads = int(std::min<int64_t>(num_threads(), pieces));
  detail::run_pieces(pieces, threads, [&](int64_t k) { fn(n * k / pieces, n * (k + 1) / pieces); });
}

// Calls fn(begin, end) on contiguous chunks covering [0, n) of about equal total cost(i), on the
// calling thread's team: for items of unequal size, such as a product's column panels where the
// last is narrower.
template <typename Cost, typename Fn>
void parallel_for_balanced(int64_t n, Cost&& cost, Fn&& fn) {
  const int64_t pieces = parallel_pieces(n, 1);
  if (pieces <= 1) {
    if (n > 0) fn(int64_t(0), n);
    return;
  }
  const int threads = int(std::min<int64_t>(num_threads(), pieces));
  double total = 0;
  for (int64_t i = 0; i < n; ++i) total += double(cost(i));
  // Piece k starts at the first item whose half lies past k / pieces of the total.
  std::vector<int64_t> starts(size_t(pieces) + 1, n);
  double before = 0;
  int64_t i = 0;
  for (int64_t k = 0; k < pieces; ++k) {
    const double want = total * double(k) / double(pieces);
    for (; i < n && before + 0.5 * double(cost(i)) < want; ++i) before += double(cost(i));
    starts[size_t(k)] = i;
  }
  detail::run_pieces(pieces, threads, [&](int64_t k) {
    if (starts[size_t(k)] < starts[size_t(k) + 1]) fn(starts[size_t(k)], starts[size_t(k) + 1]);
  });
}

}  // namespace kiln
