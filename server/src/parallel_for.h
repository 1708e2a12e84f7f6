#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

namespace tinyfleet::server {

// Runs fn(i) for every i in [0, n) on up to `threads` threads (the caller's among them),
// each taking the next index; returns when all are done. fn must be safe to run
// concurrently for different i.
template <class Fn>
void parallel_for(size_t n, size_t threads, Fn&& fn) {
  std::atomic<size_t> next{0};
  const auto work = [&] {
    for (size_t i = next++; i < n; i = next++) fn(i);
  };
  std::vector<std::thread> helpers;
  for (size_t k = 1; k < std::min(threads, n); ++k) helpers.emplace_back(work);
  work();
  for (auto& h : helpers) h.join();
}

}  // namespace tinyfleet::server
