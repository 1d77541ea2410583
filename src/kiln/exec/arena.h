// The memory a frame's intermediates live in: one range of address space reserved up front and
// never moved, of which the frame uses a prefix. Pages once touched stay with the arena, so a
// frame fed a new shape records it in the pages of the old plan and then lays the new plan over
// the pages the recording touched. A fresh page costs a ~1.5 us fault on this kind of machine:
// with a new heap buffer per intermediate, faults were most of a small CNN's first run at a new
// batch size, and the first replay faulted its whole new arena in again.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>

namespace kiln {

class Arena : public std::enable_shared_from_this<Arena> {
 public:
  // Reserves `capacity` bytes of address space, none of it resident yet; null if the system
  // refuses the reservation.
  static std::shared_ptr<Arena> reserve(size_t capacity);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  char* data() const { return base_; }
  size_t capacity() const { return capacity_; }

  // For a recording run: the lowest free range of `bytes` (64-byte aligned), owned by the
  // returned pointer, which keeps the arena alive and gives the range back when it dies; null
  // when no free range is large enough.
  std::shared_ptr<void> take(size_t bytes);

  // A plan of `bytes` now uses the arena: pages past it are handed back to the system when they
  // are more than the plan itself (a session fed one large shape does not keep its pages).
  void keep(size_t bytes);

 private:
  Arena(char* base, size_t capacity);
  void give_back(size_t offset, size_t bytes);

  char* base_;
  size_t capacity_;
  std::mutex mu_;                  // ranges may die on any thread
  std::map<size_t, size_t> free_;  // offset -> bytes, coalesced
  size_t touched_ = 0;             // pages below this may be resident
};

}  // namespace kiln
