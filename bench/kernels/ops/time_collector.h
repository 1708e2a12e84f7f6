#pragma once

// A console reporter that also keeps each run's time per iteration (ns) by benchmark
// name, for the summary table the kernel benchmarks print after Google Benchmark's: the
// median of a benchmark's repetitions when it has them, else its one run.
#include <benchmark/benchmark.h>

#include <map>
#include <string>
#include <vector>

namespace tinyfleet::bench {

class TimeCollector : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      if (r.error_occurred) continue;
      const std::string& name = r.run_name.function_name;
      if (r.run_type == Run::RT_Aggregate) {
        if (r.aggregate_name == "median") medians_[name] = r.GetAdjustedRealTime();
      } else {
        times_[name] = r.GetAdjustedRealTime();
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
  // The time of `name`, or 0 when it did not run.
  double time(const std::string& name) const {
    const auto median = medians_.find(name);
    if (median != medians_.end()) return median->second;
    const auto it = times_.find(name);
    return it == times_.end() ? 0.0 : it->second;
  }

 private:
  std::map<std::string, double> times_, medians_;
};

}  // namespace tinyfleet::bench
