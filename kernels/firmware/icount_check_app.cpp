// Checks the instruction counter (instruction_counter.h) against loops whose count is
// known: N iterations of a loop of k instructions (k-2 NOPs, SUBS, BNE) execute N*k
// instructions. Prints one line per loop, "icount k=K n=N expected=E measured=M", for
// the ctest (run_icount_test.cmake) to compare; the exit code is 0 when every
// measurement is within kTolerance of its expectation.
#include <cstdint>
#include <cstdio>

#include "instruction_counter.h"

namespace {

using tinyfleet::firmware::count_instructions;
using tinyfleet::firmware::InstructionCounter;

// One tick of resolution plus the call, the two counter reads and the loop set-up.
constexpr uint64_t kTolerance = InstructionCounter::kInstructionsPerTick + 24;

__attribute__((noinline)) void loop2(uint32_t n) {
  __asm volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n) : : "cc");
}
__attribute__((noinline)) void loop5(uint32_t n) {
  __asm volatile("1: nop\n nop\n nop\n subs %0, %0, #1\n bne 1b" : "+r"(n) : : "cc");
}

bool check(int k, uint32_t n, void (*loop)(uint32_t)) {
  const uint64_t expected = static_cast<uint64_t>(n) * static_cast<uint64_t>(k);
  const uint64_t measured = count_instructions([&] { loop(n); });
  std::printf("icount k=%d n=%lu expected=%llu measured=%llu\n", k, static_cast<unsigned long>(n),
              static_cast<unsigned long long>(expected), static_cast<unsigned long long>(measured));
  const uint64_t diff = measured > expected ? measured - expected : expected - measured;
  return diff <= kTolerance;
}

}  // namespace

int main() {
  InstructionCounter::start();
  bool ok = true;
  const uint32_t counts[] = {1000u, 100000u, 3000001u};
  for (uint32_t n : counts) {
    ok = check(2, n, loop2) && ok;
    ok = check(5, n, loop5) && ok;
  }
  std::printf("icount check: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
