#include "tinyfleet/optimizer_service/compile_outputs_proto.h"

namespace tinyfleet::optimizer_service {

void to_proto(const CompileOutputs& o, v1::CompileResponse* out) {
  for (const auto& t : o.self_tests) {
    auto* v = out->add_self_tests();
    v->set_input(t.input);
    v->set_output(t.output);
  }
  auto* d = out->mutable_drift_baseline();
  const auto& b = o.drift_baseline;
  d->mutable_class_histogram()->Add(b.class_histogram.begin(), b.class_histogram.end());
  d->set_mean_top1_confidence(b.mean_top1_confidence);
  d->mutable_channel_mean()->Add(b.channel_mean.begin(), b.channel_mean.end());
  d->mutable_channel_std()->Add(b.channel_std.begin(), b.channel_std.end());
  auto* plan = out->mutable_memory_plan();
  plan->set_arena_bytes(o.memory_plan.arena_bytes);
  for (const auto& buf : o.memory_plan.buffers) {
    auto* p = plan->add_buffers();
    p->set_tensor(buf.tensor);
    p->set_offset(buf.offset);
    p->set_size(buf.size);
    p->set_first_step(buf.first_step);
    p->set_last_step(buf.last_step);
  }
  out->set_modelled_cycles(o.modelled_cycles);
}

Result<CompileOutputs> from_proto(const v1::CompileResponse& r) {
  // Bounds before copying: a worker's answer is not trusted further than its size.
  if (static_cast<size_t>(r.self_tests_size()) > kMaxSelfTests ||
      static_cast<size_t>(r.memory_plan().buffers_size()) > kMaxPlannedBuffers) {
    return CompileError{"the optimizer worker sent " + std::to_string(r.self_tests_size()) +
                        " self-tests and " + std::to_string(r.memory_plan().buffers_size()) +
                        " planned buffers"};
  }
  CompileOutputs o;
  for (const auto& t : r.self_tests()) o.self_tests.push_back({t.input(), t.output()});
  const auto& d = r.drift_baseline();
  auto& b = o.drift_baseline;
  b.class_histogram.assign(d.class_histogram().begin(), d.class_histogram().end());
  b.mean_top1_confidence = d.mean_top1_confidence();
  b.channel_mean.assign(d.channel_mean().begin(), d.channel_mean().end());
  b.channel_std.assign(d.channel_std().begin(), d.channel_std().end());
  o.memory_plan.arena_bytes = r.memory_plan().arena_bytes();
  for (const auto& p : r.memory_plan().buffers()) {
    o.memory_plan.buffers.push_back(
        {p.tensor(), p.offset(), p.size(), p.first_step(), p.last_step()});
  }
  o.modelled_cycles = r.modelled_cycles();
  if (auto why = check_outputs(o); !why.empty()) {
    return CompileError{"the optimizer worker's outputs: " + why};
  }
  return o;
}

}  // namespace tinyfleet::optimizer_service
