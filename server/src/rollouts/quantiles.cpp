#include "rollouts/quantiles.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tinyfleet::server::rollouts {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

}  // namespace

double normal_quantile(double p) {
  // Acklam's rational approximation (relative error < 1.2e-9).
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  if (p <= 0) return -kInf;
  if (p >= 1) return kInf;
  const double lo = 0.02425;
  if (p < lo || p > 1 - lo) {
    const double q = std::sqrt(-2 * std::log(p < lo ? p : 1 - p));
    const double x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
                     ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    return p < lo ? x : -x;
  }
  const double q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

namespace {

// The continued fraction of the regularized incomplete beta function (modified Lentz).
double beta_fraction(double a, double b, double x) {
  const double tiny = 1e-300;
  double c = 1, d = 1 - (a + b) * x / (a + 1);
  d = 1 / (std::abs(d) < tiny ? tiny : d);
  double h = d;
  for (int m = 1; m <= 300; ++m) {
    for (int half = 0; half < 2; ++half) {
      const double aa = half == 0 ? m * (b - m) * x / ((a - 1 + 2 * m) * (a + 2 * m))
                                  : -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 1 + 2 * m));
      d = 1 + aa * d;
      d = 1 / (std::abs(d) < tiny ? tiny : d);
      c = 1 + aa / c;
      if (std::abs(c) < tiny) c = tiny;
      h *= d * c;
      if (half == 1 && std::abs(d * c - 1) < 1e-15) return h;
    }
  }
  return h;
}

// I_x(a, b).
double incomplete_beta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double front = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) +
                                a * std::log(x) + b * std::log1p(-x));
  return x < (a + 1) / (a + b + 2) ? front * beta_fraction(a, b, x) / a
                                   : 1 - front * beta_fraction(b, a, 1 - x) / b;
}

// P(T > t) for t >= 0, and the density, of Student's t with v degrees of freedom.
double t_upper_tail(double t, double v) {
  return 0.5 * incomplete_beta(v / 2, 0.5, v / (v + t * t));
}
double t_density(double t, double v) {
  return std::exp(std::lgamma((v + 1) / 2) - std::lgamma(v / 2) -
                  (v + 1) / 2 * std::log1p(t * t / v)) /
         std::sqrt(v * M_PI);
}

}  // namespace

double student_t_quantile(double p, int df) {
  const double z = normal_quantile(p);
  if (df <= 0 || !std::isfinite(z)) return z;
  if (p < 0.5) return -student_t_quantile(1 - p, df);
  // Cornish-Fisher expansion in 1/df (Abramowitz and Stegun 26.7.5), then Newton steps on
  // the exact tail (the expansion alone is 4% low at 4 degrees of freedom far out).
  const double v = df, z2 = z * z;
  const double g1 = (z2 + 1) * z / 4;
  const double g2 = ((5 * z2 + 16) * z2 + 3) * z / 96;
  const double g3 = (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384;
  const double g4 = ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / 92160;
  double t = z + g1 / v + g2 / (v * v) + g3 / (v * v * v) + g4 / (v * v * v * v);
  for (int i = 0; i < 8; ++i) {
    const double step = (t_upper_tail(t, v) - (1 - p)) / t_density(t, v);
    t = std::max(t + step, t / 2);
    if (std::abs(step) < 1e-10 * t) break;
  }
  return t;
}

}  // namespace tinyfleet::server::rollouts
