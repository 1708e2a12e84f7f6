#pragma once

// Quantiles for the gate statistics' intervals: standard normal (Acklam's rational
// approximation, relative error < 1.2e-9) and Student t (Cornish-Fisher expansion refined
// by Newton steps on the exact tail, an incomplete beta; df <= 0 means normal).
namespace tinyfleet::server::rollouts {

double normal_quantile(double p);
double student_t_quantile(double p, int df);

}  // namespace tinyfleet::server::rollouts
