// fleetctl rollouts, telemetry.
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "cli.h"
#include "tinyfleet/v1/rollouts.grpc.pb.h"
#include "tinyfleet/v1/telemetry.grpc.pb.h"

namespace tinyfleet::fleetctl {

namespace {

nlohmann::json to_json(const v1::Rollout& r) {
  nlohmann::json phases = nlohmann::json::array(), gates = nlohmann::json::array();
  for (const auto& p : r.phases()) {
    phases.push_back({{"index", p.index()},
                      {"percent", p.percent()},
                      {"state", p.state()},
                      {"devices", p.devices()},
                      {"admitted", p.admitted()},
                      {"updated", p.updated()},
                      {"failed", p.failed()},
                      {"reporting", p.reporting()}});
  }
  for (const auto& g : r.gate_results()) {
    gates.push_back({{"metric", g.metric()},
                     {"op", g.op()},
                     {"threshold", g.threshold()},
                     {"value", g.value()},
                     {"known", g.known()},
                     {"passed", g.passed()},
                     {"verdict", g.verdict()},
                     {"lo", g.has_interval() ? nlohmann::json(g.lo()) : nlohmann::json()},
                     {"hi", g.has_interval() ? nlohmann::json(g.hi()) : nlohmann::json()},
                     {"timed_out", g.timed_out()},
                     {"reference", g.reference()}});
  }
  return {{"name", r.name()},
          {"model", r.model()},
          {"version", r.version()},
          {"state", r.state()},
          {"current_phase", r.current_phase()},
          {"reason", r.reason()},
          {"selected_devices", r.selected_devices()},
          {"rolled_back_devices", r.rolled_back_devices()},
          {"phases", phases},
          {"gates", gates}};
}

// The rollout as lines: a header, a progress bar per phase, the gate values.
std::vector<std::string> render(const v1::Rollout& r) {
  std::vector<std::string> lines;
  char buf[512];
  std::snprintf(buf, sizeof buf, "rollout %s: %s v%u to %u devices  [%s]%s%s", r.name().c_str(),
                r.model().c_str(), r.version(), r.selected_devices(), r.state().c_str(),
                r.reason().empty() ? "" : "  ", r.reason().c_str());
  lines.push_back(buf);
  uint32_t before = 0;
  for (const auto& p : r.phases()) {
    const uint32_t n = p.devices();
    const double done = n ? double(p.updated() + p.failed()) / n : 0;
    std::snprintf(buf, sizeof buf,
                  "  phase %u %3u%% %s %3u/%-3u updated  %u offered  %u failed  %u reporting  %s",
                  p.index(), p.percent(), progress_bar(done, 24).c_str(), p.updated(), n,
                  p.admitted(), p.failed(), p.reporting(), p.state().c_str());
    lines.push_back(buf);
    before += n;
  }
  if (r.rolled_back_devices() > 0) {
    std::snprintf(buf, sizeof buf, "  returned to the previous model: %u devices",
                  r.rolled_back_devices());
    lines.push_back(buf);
  }
  std::string gates;
  for (const auto& g : r.gate_results()) {
    char v[200], interval[80] = "", against[40] = "";
    if (g.has_interval()) std::snprintf(interval, sizeof interval, " [%.3g, %.3g]", g.lo(), g.hi());
    if (!g.reference().empty())
      std::snprintf(against, sizeof against, " vs %s", g.reference().c_str());
    const char* verdict = g.verdict() == "wait" ? "wait" : g.passed() ? "ok" : "FAIL";
    if (g.known()) {
      std::snprintf(v, sizeof v, "%s=%.3g%s %s%s %s %.3g%s", g.metric().c_str(), g.value(),
                    interval, verdict, g.timed_out() ? " (timed out)" : "", g.op().c_str(),
                    g.threshold(), against);
    } else {
      std::snprintf(v, sizeof v, "%s=? (%s %.3g)", g.metric().c_str(), g.op().c_str(),
                    g.threshold());
    }
    gates += std::string(gates.empty() ? "" : "  ") + v;
  }
  if (!gates.empty()) lines.push_back("  gates: " + gates);
  return lines;
}

int exit_for(const std::string& state) {
  if (state == "completed") return kOk;
  if (state == "paused") return kPaused;
  if (state == "rolled_back" || state == "aborted" || state == "rolling_back" ||
      state == "aborting") {
    return kFailed;
  }
  return kOk;
}

int watch(const Connection& c, const std::string& name) {
  auto stub = v1::Rollouts::NewStub(c.channel());
  v1::RolloutRef req;
  req.set_name(name);
  auto ctx = c.context();
  auto reader = stub->WatchRollout(ctx.get(), req);
  v1::Rollout r;
  const bool tty = isatty(STDOUT_FILENO) && !c.json;
  size_t drawn = 0;
  std::string last_text;
  while (reader->Read(&r)) {
    if (c.json) {
      std::printf("%s\n", to_json(r).dump().c_str());
    } else {
      const auto lines = render(r);
      std::string text;
      for (const auto& l : lines) text += l + "\n";
      if (text != last_text) {  // print only what a person would see change
        last_text = text;
        if (tty && drawn > 0) std::printf("\033[%zuA", drawn);  // redraw in place
        for (const auto& l : lines) std::printf(tty ? "\033[2K%s\n" : "%s\n", l.c_str());
        drawn = lines.size();
      }
    }
    std::fflush(stdout);
    if (r.state() == "paused") {
      ctx->TryCancel();
      break;
    }
  }
  auto s = reader->Finish();
  if (!s.ok() && s.error_code() != grpc::StatusCode::CANCELLED) return report(s, "watch " + name);
  return exit_for(r.state());
}

}  // namespace

int cmd_rollouts(const Args& a, const Connection& c) {
  auto stub = v1::Rollouts::NewStub(c.channel());
  const std::string verb = a.positional.size() > 1 ? a.positional[1] : "list";
  if (verb == "list") {
    v1::ListRolloutsRequest req;
    req.set_active_only(a.has("active"));
    v1::ListRolloutsResponse resp;
    // Every page (fleetd returns at most 100 rollouts a call).
    do {
      v1::ListRolloutsResponse page;
      auto s = stub->ListRollouts(c.context().get(), req, &page);
      if (!s.ok()) return report(s, "list rollouts");
      for (auto& r : *page.mutable_rollouts()) *resp.add_rollouts() = std::move(r);
      req.set_page_token(page.next_page_token());
    } while (!req.page_token().empty());
    if (c.json) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& r : resp.rollouts()) out.push_back(to_json(r));
      std::printf("%s\n", out.dump().c_str());
      return kOk;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& r : resp.rollouts()) {
      uint32_t updated = 0;
      for (const auto& p : r.phases()) updated += p.updated();
      rows.push_back({r.name(), r.model() + " v" + std::to_string(r.version()), r.state(),
                      std::to_string(r.current_phase()),
                      std::to_string(updated) + "/" + std::to_string(r.selected_devices()),
                      r.reason()});
    }
    print_table({"NAME", "MODEL", "STATE", "PHASE", "UPDATED", "REASON"}, rows);
    return kOk;
  }
  if (a.positional.size() < 3) usage_error("rollouts " + verb + " NAME");
  const std::string name = a.positional[2];
  if (verb == "create") {
    v1::CreateRolloutRequest req;
    req.set_name(name);
    req.set_model(a.get("model"));
    if (req.model().empty() || !a.has("version")) {
      usage_error(
          "rollouts create NAME --model M --version N [--classes a,b] [--tags t] "
          "[--devices ids] [--phases 1:60,10:60,100:0] [--gates EXPR] "
          "[--on-failure rollback|pause] [--rate N] [--watch]");
    }
    req.set_version(static_cast<uint32_t>(a.number("version", 0)));
    for (const auto& k : a.list("classes")) req.mutable_selector()->add_device_classes(k);
    for (const auto& t : a.list("tags")) req.mutable_selector()->add_tags(t);
    for (const auto& d : a.list("devices")) req.mutable_selector()->add_device_ids(d);
    req.mutable_selector()->set_fleet(a.get("fleet", "default"));
    for (const auto& p : a.list("phases")) {
      const auto colon = p.find(':');
      auto* ph = req.add_phases();
      try {
        ph->set_percent(static_cast<uint32_t>(std::stoul(p.substr(0, colon))));
        if (colon != std::string::npos) {
          ph->set_bake_seconds(static_cast<uint32_t>(std::stoul(p.substr(colon + 1))));
        }
      } catch (const std::exception&) {
        usage_error("--phases takes PERCENT:BAKE_SECONDS,... not '" + p + "'");
      }
    }
    req.set_gates(a.get("gates"));
    req.set_on_gate_failure(a.get("on-failure", "rollback"));
    req.set_rate_per_minute(static_cast<uint32_t>(a.number("rate", 600)));
    v1::Rollout r;
    auto s = stub->CreateRollout(c.context().get(), req, &r);
    if (!s.ok()) return report(s, "create rollout " + name);
    if (c.json) {
      std::printf("%s\n", to_json(r).dump().c_str());
    } else {
      std::printf("rollout %s created: %s v%u to %u devices in %d phases\n", name.c_str(),
                  r.model().c_str(), r.version(), r.selected_devices(), r.phases_size());
    }
    return a.has("watch") ? watch(c, name) : kOk;
  }
  if (verb == "watch") return watch(c, name);
  v1::RolloutRef ref;
  ref.set_name(name);
  v1::Rollout r;
  grpc::Status s;
  if (verb == "get")
    s = stub->GetRollout(c.context().get(), ref, &r);
  else if (verb == "pause")
    s = stub->PauseRollout(c.context().get(), ref, &r);
  else if (verb == "resume")
    s = stub->ResumeRollout(c.context().get(), ref, &r);
  else if (verb == "promote" && a.has("skip-gates")) {
    v1::SkipGatesRequest skip;
    skip.set_name(name);
    skip.set_reason(a.get("reason"));
    if (skip.reason().empty()) usage_error("rollouts promote NAME --skip-gates --reason TEXT");
    s = stub->SkipGates(c.context().get(), skip, &r);
  } else if (verb == "promote")
    s = stub->PromoteRollout(c.context().get(), ref, &r);
  else if (verb == "abort")
    s = stub->AbortRollout(c.context().get(), ref, &r);
  else
    usage_error("rollouts takes create, list, get, watch, pause, resume, promote or abort");
  if (!s.ok()) return report(s, verb + " rollout " + name);
  if (c.json) {
    std::printf("%s\n", to_json(r).dump().c_str());
  } else {
    for (const auto& l : render(r)) std::printf("%s\n", l.c_str());
  }
  return kOk;
}

int cmd_telemetry(const Args& a, const Connection& c) {
  auto stub = v1::Telemetry::NewStub(c.channel());
  v1::TelemetryQuery req;
  req.set_device_id(a.get("device"));
  req.set_rollout(a.get("rollout"));
  const double since_s = a.number("since", 600);
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  req.set_since_unix_ms(now_ms - static_cast<int64_t>(since_s * 1000));
  req.set_limit(static_cast<uint32_t>(a.number("limit", 20)));
  req.set_bucket_seconds(static_cast<uint32_t>(a.number("bucket", 10)));
  v1::TelemetryQueryResponse resp;
  auto s = stub->Query(c.context().get(), req, &resp);
  if (!s.ok()) return report(s, "query telemetry");
  if (c.json) {
    nlohmann::json out = {{"windows", nlohmann::json::array()},
                          {"buckets", nlohmann::json::array()}};
    for (const auto& w : resp.windows()) {
      out["windows"].push_back({{"device", w.device_id()},
                                {"ts_ms", w.ts_unix_ms()},
                                {"artifact", w.artifact_sha256()},
                                {"inferences", w.inferences()},
                                {"latency_p95_us", w.latency_p95_us()},
                                {"energy_uj", w.energy_uj()},
                                {"output_psi", w.output_psi()},
                                {"input_drift", w.input_drift()},
                                {"probe_accuracy", w.probe_accuracy()}});
    }
    for (const auto& b : resp.buckets()) {
      out["buckets"].push_back({{"start_ms", b.start_unix_ms()},
                                {"windows", b.windows()},
                                {"output_psi", b.output_psi()},
                                {"input_drift", b.input_drift()},
                                {"energy_uj", b.energy_uj()},
                                {"latency_p95_us", b.latency_p95_us()},
                                {"probe_accuracy", b.probe_accuracy()}});
    }
    std::printf("%s\n", out.dump().c_str());
    return kOk;
  }
  std::vector<double> psi, drift, energy, latency, accuracy;
  for (const auto& b : resp.buckets()) {
    psi.push_back(b.output_psi());
    drift.push_back(b.input_drift());
    energy.push_back(b.energy_uj());
    latency.push_back(b.latency_p95_us());
    accuracy.push_back(b.probe_accuracy());
  }
  auto last = [](const std::vector<double>& v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.4g", v.empty() ? 0.0 : v.back());
    return std::string(b);
  };
  std::printf("over the last %.0f s, %zu buckets of %u s:\n", since_s, psi.size(),
              req.bucket_seconds());
  print_table({"METRIC", "OVER TIME", "LATEST"},
              {{"input drift", sparkline(drift), last(drift)},
               {"output PSI", sparkline(psi), last(psi)},
               {"energy uJ/inf", sparkline(energy), last(energy)},
               {"latency p95 us", sparkline(latency), last(latency)},
               {"probe accuracy", sparkline(accuracy), last(accuracy)}});
  std::vector<std::vector<std::string>> rows;
  for (const auto& w : resp.windows()) {
    char m[256];
    std::snprintf(m, sizeof m, "%u|%.0f|%.2f|%.3f|%.3f|%s", w.inferences(), w.latency_p95_us(),
                  w.energy_uj(), w.output_psi(), w.input_drift(),
                  w.probe_accuracy() < 0 ? "-" : std::to_string(w.probe_accuracy()).c_str());
    std::vector<std::string> row = {w.device_id(), w.artifact_sha256().substr(0, 12)};
    std::string cell;
    for (char ch : std::string(m)) {
      if (ch == '|') {
        row.push_back(cell);
        cell.clear();
      } else {
        cell += ch;
      }
    }
    row.push_back(cell);
    rows.push_back(row);
  }
  std::printf(
      "\nlatest windows (WIN PSI: one device's window alone; a few dozen inferences bias it "
      "far above 0 on clean data, so gates and the output PSI above pool class counts over "
      "devices instead):\n");
  print_table({"DEVICE", "ARTIFACT", "INFER", "P95 US", "UJ/INF", "WIN PSI", "DRIFT", "ACCURACY"},
              rows);
  return kOk;
}

}  // namespace tinyfleet::fleetctl
