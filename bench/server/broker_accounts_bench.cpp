// fleetd's side of provisioning N devices: N BrokerAccounts::add calls, each rewriting the
// broker's password file durably (read, append, write, fsync file and folder). Prints
// the time at every 1,000 accounts. The broker's side (its reload cost per connected
// session, connection time) is bench/server/broker_reload_cost.py.
//   bench_broker_accounts [N=10000] [FOLDER=/dev/shm]   (a disk folder adds its fsyncs)
#include <sodium.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "tinyfleet/server/broker_accounts.h"

int main(int argc, char** argv) {
  if (sodium_init() < 0) return 1;
  const int n = argc > 1 ? std::atoi(argv[1]) : 10000;
  const std::filesystem::path dir = argc > 2 ? argv[2] : "/dev/shm";
  const auto file = dir / ("bench-passwd-" + std::to_string(getpid()));
  std::ofstream(file).close();
  {
    tinyfleet::server::BrokerAccounts accounts(file.string(), 0);  // no broker: no SIGHUP
    const auto t0 = std::chrono::steady_clock::now();
    std::printf("| accounts | seconds since start |\n|---|---|\n");
    for (int i = 0; i < n; ++i) {
      if (auto r = accounts.add("dev-" + std::to_string(i), "password"); !r) {
        std::fprintf(stderr, "add %d: %s\n", i, r.error().message.c_str());
        return 1;
      }
      if ((i + 1) % 1000 == 0 || i + 1 == n) {
        const std::chrono::duration<double> s = std::chrono::steady_clock::now() - t0;
        std::printf("| %d | %.1f |\n", i + 1, s.count());
        std::fflush(stdout);
      }
    }
  }
  std::filesystem::remove(file);
  std::filesystem::remove(file.string() + ".lock");
  return 0;
}
