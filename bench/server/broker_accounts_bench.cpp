// fleetd's side of provisioning N devices: N BrokerAccounts::add calls, each rewriting the
// broker's password file durably (write, fsync file and folder), from THREADS callers at
// once (fleetctl provisions with 8 requests in flight; concurrent adds share one write).
// Prints the time at every 1,000 accounts. The broker's side (its reload cost per
// connected session, connection time) is bench/server/broker_reload_cost.py.
//   bench_broker_accounts [N=10000] [FOLDER=/dev/shm] [THREADS=1]   (a disk folder adds fsyncs)
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tinyfleet/server/broker_accounts.h"

int main(int argc, char** argv) {
  if (sodium_init() < 0) return 1;
  const int n = argc > 1 ? std::atoi(argv[1]) : 10000;
  const std::filesystem::path dir = argc > 2 ? argv[2] : "/dev/shm";
  const auto file = dir / ("bench-passwd-" + std::to_string(getpid()));
  std::ofstream(file).close();
  const int threads = argc > 3 ? std::max(1, std::atoi(argv[3])) : 1;
  {
    tinyfleet::server::BrokerAccounts accounts(file.string(), 0);  // no broker: no SIGHUP
    const auto t0 = std::chrono::steady_clock::now();
    std::printf("| accounts (%d callers) | seconds since start |\n|---|---|\n", threads);
    std::atomic<int> next{0}, done{0}, failed{0};
    std::mutex print;
    std::vector<std::thread> callers;
    for (int t = 0; t < threads; ++t) {
      callers.emplace_back([&] {
        for (int i = next++; i < n; i = next++) {
          if (auto r = accounts.add("dev-" + std::to_string(i), "password"); !r) {
            std::fprintf(stderr, "add %d: %s\n", i, r.error().message.c_str());
            ++failed;
            return;
          }
          const int d = ++done;
          if (d % 1000 == 0 || d == n) {
            const std::chrono::duration<double> s = std::chrono::steady_clock::now() - t0;
            std::lock_guard<std::mutex> lock(print);
            std::printf("| %d | %.1f |\n", d, s.count());
            std::fflush(stdout);
          }
        }
      });
    }
    for (auto& c : callers) c.join();
    if (failed > 0) return 1;
  }
  std::filesystem::remove(file);
  std::filesystem::remove(file.string() + ".lock");
  return 0;
}
