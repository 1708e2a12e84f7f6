#pragma once

// A console reporter that also keeps each run's time per iteration (ns) by benchmark
// name, for the summary table the kernel benchmarks print after Google Benchmark's.
#include <benchmark/benchmark.h>

#include <map>
#include <string>
#include <vector>

namespace tinyfleet::bench {

class TimeCollector : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      if (!r.error_occurred) times_[r.run_name.function_name] = r.GetAdjustedRealTime();
    }
    ConsoleReporter::ReportRuns(runs);
  }
  // The time of `name`, or 0 when it did not run.
  double time(const std::string& name) const {
    const auto it = times_.find(name);
    return it == times_.end() ? 0.0 : it->second;
  }

 private:
  std::map<std::string, double> times_;
};

}  // namespace tinyfleet::bench
