#include "config/fleet.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "util/checks.h"

namespace fedsim {
namespace {

void DefaultDistribution(config::Distribution* d, double constant) {
  if (d->kind_case() == config::Distribution::KIND_NOT_SET) d->set_constant(constant);
}

}  // namespace

void CheckDistribution(const config::Distribution& d, const std::string& path, uint32_t num_clients,
                       double lo, double hi, const std::string& what, ProblemList* problems) {
  ProblemList& p = *problems;
  const std::string range =
      absl::StrCat("[", NumberText(lo), ", ", std::isinf(hi) ? "inf" : NumberText(hi),
                   std::isinf(hi) ? ")" : "]");
  auto in_range = [&](double v) { return v >= lo && v <= hi && !std::isnan(v); };
  switch (d.kind_case()) {
    case config::Distribution::kConstant:
      if (!in_range(d.constant())) {
        p.Add(path + ".constant", absl::StrCat(what, " ", NumberText(d.constant()), " is outside ",
                                               range, "; use a value in that range"));
      }
      break;
    case config::Distribution::kUniform: {
      const auto& u = d.uniform();
      if (!(u.lo() <= u.hi())) {
        p.Add(path + ".uniform", absl::StrCat("lo ", NumberText(u.lo()), " is greater than hi ",
                                              NumberText(u.hi()), "; swap them"));
      }
      if (!in_range(u.lo()) || !in_range(u.hi())) {
        p.Add(path + ".uniform", absl::StrCat("[lo, hi] = [", NumberText(u.lo()), ", ",
                                              NumberText(u.hi()), "] is not inside ", range, " (",
                                              what, "); keep both ends in that range"));
      }
      break;
    }
    case config::Distribution::kLognormal:
      if (!(d.lognormal().sigma() >= 0)) {
        p.Add(path + ".lognormal.sigma", absl::StrCat("sigma ", NumberText(d.lognormal().sigma()),
                                                      " is negative; use sigma >= 0"));
      }
      if (!std::isfinite(d.lognormal().mu())) {
        p.Add(path + ".lognormal.mu", "mu is not a finite number; use a finite mu");
      }
      break;
    case config::Distribution::kLinear: {
      const auto& l = d.linear();
      if (!(l.x_percent() >= 0 && l.x_percent() < 100)) {
        p.Add(path + ".linear.x_percent",
              absl::StrCat("x_percent ", NumberText(l.x_percent()),
                           " is outside [0, 100); the slowest client would get a value <= 0, "
                           "use e.g. 80 for Fraboni's F-80"));
      }
      if (!in_range(l.base())) {
        p.Add(path + ".linear.base",
              absl::StrCat("base ", NumberText(l.base()), " is outside ", range, " (", what,
                           "); use a value in that range"));
      }
      break;
    }
    case config::Distribution::kTable: {
      const auto& t = d.table();
      if (static_cast<uint64_t>(t.values_size()) != num_clients) {
        p.Add(path + ".table.values",
              absl::StrCat("has ", t.values_size(), " values but num_clients is ", num_clients,
                           "; give exactly one value per client"));
      }
      for (int i = 0; i < t.values_size(); ++i) {
        if (!in_range(t.values(i))) {
          p.Add(absl::StrCat(path, ".table.values[", i, "]"),
                absl::StrCat(what, " ", NumberText(t.values(i)), " is outside ", range,
                             "; use a value in that range"));
        }
      }
      break;
    }
    case config::Distribution::KIND_NOT_SET:
      break;
  }
}

void ValidateDevices(const config::Devices& dev, uint32_t n, ProblemList* p) {
  const double kInf = std::numeric_limits<double>::infinity();
  CheckDistribution(dev.seconds_per_example(), "devices.seconds_per_example", n, 0, kInf,
                    "seconds per example", p);
  CheckDistribution(dev.latency_down_s(), "devices.latency_down_s", n, 0, kInf, "latency", p);
  CheckDistribution(dev.latency_up_s(), "devices.latency_up_s", n, 0, kInf, "latency", p);
  CheckDistribution(dev.down_mbps(), "devices.down_mbps", n, 0, kInf, "bandwidth (0 = unlimited)",
                    p);
  CheckDistribution(dev.up_mbps(), "devices.up_mbps", n, 0, kInf, "bandwidth (0 = unlimited)", p);
  CheckNonNegative(dev.jitter_sigma(), "devices.jitter_sigma",
                   "it is the sigma of the lognormal per-task jitter (0 = none)", p);
}

void FillDevicesDefaults(config::Devices* devices) {
  DefaultDistribution(devices->mutable_seconds_per_example(), kDefaultSecondsPerExample);
  DefaultDistribution(devices->mutable_latency_down_s(), 0.0);
  DefaultDistribution(devices->mutable_latency_up_s(), 0.0);
  DefaultDistribution(devices->mutable_down_mbps(), 0.0);
  DefaultDistribution(devices->mutable_up_mbps(), 0.0);
}

void ValidateParticipation(const config::Participation& part, uint32_t n, ProblemList* p) {
  if (part.has_markov() && !(part.markov().a() > 0 && part.markov().a() <= 1)) {
    p->Add("participation.markov.a",
           absl::StrCat(NumberText(part.markov().a()),
                        " is outside (0, 1]; it is the probability of switching on, e.g. 0.05"));
  }
  if (part.has_cyclic() && part.cyclic().period() == 0) {
    p->Add("participation.cyclic.period", "must be >= 1, got 0; e.g. 100 rounds");
  }
  if (part.has_trace() && part.trace().csv().empty()) {
    p->Add("participation.trace.csv",
           "is empty; give a CSV file with the header client,start_s,end_s");
  }
  CheckNonNegative(part.round_s(), "participation.round_s", "use 0 for rounds only", p);
  if (!part.has_probability()) return;
  const config::ParticipationProbability& prob = part.probability();
  if (prob.has_distribution()) {
    CheckDistribution(prob.distribution(), "participation.probability.distribution", n, 0, 1,
                      "probability", p);
  }
  if (prob.has_label_correlated()) {
    const auto& lc = prob.label_correlated();
    const std::string base = "participation.probability.label_correlated";
    if (!(lc.p_mean() >= 0 && lc.p_mean() <= 1)) {
      p->Add(base + ".p_mean",
             absl::StrCat(NumberText(lc.p_mean()), " is not a probability in [0, 1]"));
    }
    if (!(lc.p_min() >= 0 && lc.p_min() <= 1)) {
      p->Add(base + ".p_min",
             absl::StrCat(NumberText(lc.p_min()), " is not a probability in [0, 1]"));
    }
    CheckPositive(lc.alpha_part(), base + ".alpha_part", "it is a Dirichlet concentration", p);
  }
}

void FillParticipationDefaults(config::Participation* participation) {
  if (participation->process_case() == config::Participation::PROCESS_NOT_SET) {
    participation->mutable_always();
  }
  if (participation->has_bernoulli() || participation->has_markov() ||
      participation->has_cyclic() || participation->has_probability()) {
    config::ParticipationProbability* prob = participation->mutable_probability();
    if (prob->kind_case() == config::ParticipationProbability::KIND_NOT_SET) {
      prob->mutable_distribution();
    }
    if (prob->has_distribution()) DefaultDistribution(prob->mutable_distribution(), 1.0);
  }
}

}  // namespace fedsim
