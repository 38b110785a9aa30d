// Helpers shared by the per-rule algorithm tests.
#ifndef FEDSIM_TESTS_RULE_TEST_UTIL_H_
#define FEDSIM_TESTS_RULE_TEST_UTIL_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "algorithms/algorithm.h"
#include "algorithms/registry.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace fedsim {

// Builds a rule from its text-format config (a config.Algorithm) through
// `factory`; records a test failure and returns nullptr on any error.
inline std::unique_ptr<Algorithm> MakeRule(AlgorithmFactory factory, const std::string& text,
                                           AlgorithmContext context = {.num_params = 2}) {
  config::Algorithm c;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &c)) << text;
  absl::StatusOr<std::unique_ptr<Algorithm>> a = factory(c, context);
  EXPECT_TRUE(a.ok()) << a.status();
  return a.ok() ? *std::move(a) : nullptr;
}

// Select that must succeed: records a test failure and returns no dispatch
// on an error.
inline std::vector<Dispatch> MustSelect(Algorithm& algorithm, const FleetView& fleet, Rng& rng) {
  absl::StatusOr<std::vector<Dispatch>> d = algorithm.Select(fleet, rng);
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? *std::move(d) : std::vector<Dispatch>();
}

// The client ids of a Select() result, in order.
inline std::vector<ClientId> DispatchedClients(const std::vector<Dispatch>& dispatches) {
  std::vector<ClientId> out;
  for (const Dispatch& d : dispatches) out.push_back(d.client);
  return out;
}

// An update made by hand: task, client, staleness, delta and n_i.
inline ClientUpdate TestUpdate(TaskId task, ClientId client, uint64_t staleness,
                               std::vector<float> delta, uint64_t n = 1) {
  ClientUpdate u;
  u.task_id = task;
  u.client = client;
  u.staleness = staleness;
  u.num_examples = n;
  u.delta = std::move(delta);
  return u;
}

}  // namespace fedsim

#endif  // FEDSIM_TESTS_RULE_TEST_UTIL_H_
