#include "tinyfleet/server/rollouts_service.h"

#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "rollouts/api_input.h"
#include "rollouts/create.h"
#include "rollouts/operator_actions.h"
#include "rollouts/repository.h"
#include "rollouts/states.h"
#include "tinyfleet/server/grpc_status.h"

namespace tinyfleet::server {

namespace {

namespace repo = rollouts::repo;
using storage::Role;

bool terminal(const std::string& state) {
  const auto s = rollouts::rollout_state_from(state);
  return s && rollouts::is_final(*s);
}

// The rollout as the API shows it; false when there is none of that name.
bool load(pqxx::work& w, const std::string& name, v1::Rollout* out) {
  const auto v = repo::view(w, name);
  if (!v) return false;
  out->Clear();
  out->set_name(v->name);
  out->set_model(v->model);
  out->set_version(v->version);
  out->set_state(v->state);
  out->set_current_phase(static_cast<uint32_t>(v->current_phase));
  out->set_reason(v->reason);
  out->set_gates(v->gates);
  out->set_on_gate_failure(v->on_failure);
  out->set_rate_per_minute(static_cast<uint32_t>(v->rate_per_minute));
  out->set_created_at(v->created_at);
  for (const auto& g : nlohmann::json::parse(v->gate_report_json, nullptr, false)) {
    if (!g.is_object()) continue;
    auto* x = out->add_gate_results();
    x->set_metric(g.value("metric", ""));
    x->set_op(g.value("op", ""));
    x->set_threshold(g.value("threshold", 0.0));
    x->set_value(g.value("value", 0.0));
    x->set_known(g.value("known", false));
    x->set_passed(g.value("passed", false));
    x->set_verdict(g.value("verdict", ""));
    const auto lo = g.find("lo"), hi = g.find("hi");
    if (lo != g.end() && hi != g.end() && lo->is_number() && hi->is_number()) {
      x->set_has_interval(true);
      x->set_lo(lo->get<double>());
      x->set_hi(hi->get<double>());
    }
    x->set_timed_out(g.value("timed_out", false));
    const auto ref = g.find("reference");
    if (ref != g.end() && ref->is_object()) x->set_reference(ref->value("group", ""));
  }
  for (const auto& p : v->phases) {
    auto* x = out->add_phases();
    x->set_index(static_cast<uint32_t>(p.index));
    x->set_percent(static_cast<uint32_t>(p.percent));
    x->set_bake_seconds(static_cast<uint32_t>(p.bake_seconds));
    x->set_state(p.state);
    x->set_devices(static_cast<uint32_t>(p.devices));
    x->set_admitted(static_cast<uint32_t>(p.admitted));
    x->set_updated(static_cast<uint32_t>(p.updated));
    x->set_failed(static_cast<uint32_t>(p.failed));
    x->set_reporting(static_cast<uint32_t>(p.reporting));
  }
  out->set_selected_devices(static_cast<uint32_t>(v->selected));
  out->set_rolled_back_devices(static_cast<uint32_t>(v->rolled_back));
  return true;
}

}  // namespace

grpc::Status RolloutsService::CreateRollout(grpc::ServerContext* ctx,
                                            const v1::CreateRolloutRequest* req, v1::Rollout* out) {
  Caller caller;
  if (auto s = auth_.authorize(*ctx, Role::kOperator, "CreateRollout", &caller); !s.ok()) return s;
  auto created = db_.transact([&](pqxx::work& w) {
    rollouts::create(w, *req, caller.name, updates_off_);
    v1::Rollout r;
    load(w, req->name(), &r);
    return r;
  });
  if (!created) return to_status(created.error());
  *out = *created;
  if (wake_) wake_();
  return grpc::Status::OK;
}

grpc::Status RolloutsService::GetRollout(grpc::ServerContext* ctx, const v1::RolloutRef* req,
                                         v1::Rollout* out) {
  if (auto s = auth_.authorize(*ctx, Role::kViewer, "GetRollout", nullptr); !s.ok()) return s;
  auto found = db_.transact([&](pqxx::work& w) { return load(w, req->name(), out); });
  if (!found) return to_status(found.error());
  if (!*found) return not_found("rollout '" + req->name() + "' does not exist");
  return grpc::Status::OK;
}

grpc::Status RolloutsService::ListRollouts(grpc::ServerContext* ctx,
                                           const v1::ListRolloutsRequest* req,
                                           v1::ListRolloutsResponse* out) {
  if (auto s = auth_.authorize(*ctx, Role::kViewer, "ListRollouts", nullptr); !s.ok()) return s;
  auto after = rollouts::parse_page_token(req->page_token());
  if (!after) {
    return invalid_argument("page_token '" + req->page_token().substr(0, 40) +
                            "' is not one this API returned");
  }
  const int size = rollouts::page_size(req->page_size());
  auto r = db_.transact([&](pqxx::work& w) {
    v1::ListRolloutsResponse list;
    const auto page = repo::names(w, req->active_only(), *after, size);
    for (const auto& name : page.names) load(w, name, list.add_rollouts());
    list.set_next_page_token(page.next_page_token);
    return list;
  });
  if (!r) return to_status(r.error());
  *out = *r;
  return grpc::Status::OK;
}

grpc::Status RolloutsService::change(grpc::ServerContext* ctx, const std::string& name,
                                     const char* method, const char* action, v1::Rollout* out,
                                     const std::string* skip_reason) {
  Caller caller;
  // Skipping the gates is an admin's call; every other command an operator's.
  const Role needed = skip_reason ? Role::kAdmin : Role::kOperator;
  if (auto s = auth_.authorize(*ctx, needed, method, &caller); !s.ok()) return s;
  rollouts::SkipGates skip;
  if (skip_reason) {
    if (auto why = rollouts::skip_gates_reason_error(*skip_reason)) return invalid_argument(*why);
    skip = {true, *skip_reason};
  }
  const std::string act = action;
  auto r = db_.transact([&](pqxx::work& w) {
    rollouts::apply_operator_action(w, name, act, caller.name, gates_, skip);
    v1::Rollout rollout;
    load(w, name, &rollout);
    return rollout;
  });
  if (!r) return to_status(r.error());
  *out = *r;
  if (wake_) wake_();
  return grpc::Status::OK;
}

grpc::Status RolloutsService::PauseRollout(grpc::ServerContext* ctx, const v1::RolloutRef* req,
                                           v1::Rollout* out) {
  return change(ctx, req->name(), "PauseRollout", "pause", out);
}
grpc::Status RolloutsService::ResumeRollout(grpc::ServerContext* ctx, const v1::RolloutRef* req,
                                            v1::Rollout* out) {
  return change(ctx, req->name(), "ResumeRollout", "resume", out);
}
grpc::Status RolloutsService::PromoteRollout(grpc::ServerContext* ctx, const v1::RolloutRef* req,
                                             v1::Rollout* out) {
  return change(ctx, req->name(), "PromoteRollout", "promote", out);
}
grpc::Status RolloutsService::SkipGates(grpc::ServerContext* ctx, const v1::SkipGatesRequest* req,
                                        v1::Rollout* out) {
  return change(ctx, req->name(), "SkipGates", "promote", out, &req->reason());
}
grpc::Status RolloutsService::AbortRollout(grpc::ServerContext* ctx, const v1::RolloutRef* req,
                                           v1::Rollout* out) {
  return change(ctx, req->name(), "AbortRollout", "abort", out);
}

grpc::Status RolloutsService::WatchRollout(grpc::ServerContext* ctx, const v1::RolloutRef* req,
                                           grpc::ServerWriter<v1::Rollout>* writer) {
  if (auto s = auth_.authorize(*ctx, Role::kViewer, "WatchRollout", nullptr); !s.ok()) return s;
  std::string last;
  while (!ctx->IsCancelled()) {
    v1::Rollout r;
    auto found = db_.transact([&](pqxx::work& w) { return load(w, req->name(), &r); });
    if (!found) return to_status(found.error());
    if (!*found) return not_found("rollout '" + req->name() + "' does not exist");
    std::string now;
    r.SerializeToString(&now);
    if (now != last) {
      if (!writer->Write(r)) return grpc::Status::OK;
      last = now;
    }
    if (terminal(r.state())) return grpc::Status::OK;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  return grpc::Status::OK;
}

}  // namespace tinyfleet::server
