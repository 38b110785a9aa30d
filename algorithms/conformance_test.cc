// The conformance suite (STYLE.md item 12): every rule in RegisteredAlgorithms()
// must pass it. A rule added to the registry is picked up automatically; the
// suite then fails until the rule has a row in kNeutral and kInvalid below.
//
// A MiniEngine drives the rules the way the engine does (algorithm.h): Select
// at start and after every event, arrivals in (time, dispatch sequence)
// order, arrivals at a timer's time before the timer, ReadyToCommit/Commit
// after every event, one timer at NextDeadline when it is >= now.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "algorithms/registry.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "tests/fake_fleet.h"
#include "tests/rule_test_util.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// A config under which the rule is a plain average: identical updates commit to
// that update. Assumes the UniformFleet below (4 clients, n_i = 1, p_i = 1/4,
// every task lasting 1 s).
const std::map<std::string_view, std::string>& Neutral() {
  static const auto* m = new std::map<std::string_view, std::string>{
      {"fedavg", "fedavg { clients_per_round: 4 weighting: UNIFORM }"},
      {"fedasync", "fedasync { alpha: 1 concurrency: 4 staleness { constant {} } }"},
      {"fedbuff", "fedbuff { buffer_size: 4 concurrency: 4 staleness { constant {} } }"},
      {"fedfix", "fedfix { delta_s: 1 }"},
      {"async_fedavg", "async_fedavg { weights: IDENTICAL }"},
      {"fedau", "fedau { method: FEDAU }"},
      {"decentralized", "decentralized { variant: DFEDAVG topology { full {} } }"},
      {"fedopt",
       "fedopt { optimizer: MOMENTUM beta1: 0 server_lr: 1 clients_per_round: 4 "
       "weighting: UNIFORM }"},
  };
  return *m;
}

// An out-of-range config and the field its error must name.
const std::map<std::string_view, std::pair<std::string, std::string>>& Invalid() {
  static const auto* m = new std::map<std::string_view, std::pair<std::string, std::string>>{
      {"fedavg", {"fedavg { clients_per_round: 0 }", "fedavg.clients_per_round"}},
      {"fedasync", {"fedasync { alpha: 1.5 }", "fedasync.alpha"}},
      {"fedbuff", {"fedbuff { buffer_size: 0 }", "fedbuff.buffer_size"}},
      {"fedfix", {"fedfix { delta_s: -1 }", "fedfix.delta_s"}},
      {"async_fedavg", {"async_fedavg { server_lr: 0 }", "async_fedavg.server_lr"}},
      {"fedau", {"fedau { server_lr: 0 }", "fedau.server_lr"}},
      {"decentralized", {"decentralized { lr_decay: 0 }", "decentralized.lr_decay"}},
      {"fedopt", {"fedopt { beta1: 1.5 }", "fedopt.beta1"}},
  };
  return *m;
}

// Rules that choose among idle clients at random under their neutral config
// on the MixedFleet (6 clients, 4 training at once). The others train every
// available client (or follow participation) and must not touch the stream.
const std::set<std::string_view>& SamplesUnderNeutralConfig() {
  static const auto* s =
      new std::set<std::string_view>{"fedavg", "fedasync", "fedbuff", "fedopt"};
  return *s;
}

constexpr size_t kParams = 3;

config::Algorithm Parse(const std::string& text) {
  config::Algorithm c;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &c)) << text;
  return c;
}

FakeFleet UniformFleet() {
  FakeFleet fleet(4, std::vector<float>(kParams, 0.5f));
  for (ClientInfo& c : fleet.clients()) {
    c.num_examples = 1;
    c.importance = 0.25;
    c.expected_duration = 1;
  }
  return fleet;
}

// Six clients of different sizes and speeds.
FakeFleet MixedFleet() {
  FakeFleet fleet(6, {0.1f, -0.2f, 0.3f});
  const double tau[] = {1, 1.5, 2.5, 0.7, 3, 1.2};
  const uint64_t n[] = {5, 10, 20, 1, 7, 3};
  for (ClientId i = 0; i < 6; ++i) {
    fleet.mutable_client(i).expected_duration = tau[i];
    fleet.mutable_client(i).num_examples = n[i];
    fleet.mutable_client(i).importance = static_cast<double>(n[i]) / 46.0;
  }
  return fleet;
}

std::string Hex(std::span<const float> v) {
  std::string s;
  for (float x : v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%a ", static_cast<double>(x));
    s += buf;
  }
  return s;
}

using DeltaFn = std::vector<float> (*)(ClientId client, std::span<const float> base);

std::vector<float> FixedDelta(ClientId, std::span<const float>) { return {1.0f, -2.0f, 0.25f}; }

// Depends on the client and on its base model, so any change of order or of
// base shows up in later models.
std::vector<float> ModelDelta(ClientId client, std::span<const float> base) {
  std::vector<float> d(base.size());
  for (size_t j = 0; j < d.size(); ++j) {
    d[j] = 0.1f * static_cast<float>(client + 1) - 0.3f * base[j] + 0.01f * static_cast<float>(j);
  }
  return d;
}

// A copyable stand-in for the engine (see the file comment). Copy it to fork
// a run; the Algorithm is passed to each call so a fork can use another one.
class MiniEngine {
 public:
  MiniEngine(FakeFleet fleet, uint64_t seed, DeltaFn delta)
      : fleet_(std::move(fleet)), seed_(seed), delta_(delta) {}

  // Starts the run: Start, then Select and the first timer.
  void Start(Algorithm& a) {
    absl::Status s = a.Start(fleet_, fleet_);
    ASSERT_TRUE(s.ok()) << s;
    AfterEvent(a);
  }

  // Processes up to `events` events; returns false when nothing is left.
  bool Run(Algorithm& a, int events) {
    for (int i = 0; i < events; ++i) {
      if (!Step(a)) return false;
    }
    return true;
  }

  void Finish(Algorithm& a) {
    absl::StatusOr<std::optional<CommitResult>> r = fleet_.FinishTo(a);
    ASSERT_TRUE(r.ok()) << r.status();
    log_.push_back(absl::StrCat("finish ", r->has_value() ? Hex(fleet_.current()) : "-"));
  }

  const std::vector<std::string>& log() const { return log_; }
  // Random numbers the rule drew from its Select streams so far.
  uint64_t select_draws() const { return select_draws_; }
  FakeFleet& fleet() { return fleet_; }
  int commits_with_updates() const { return commits_with_updates_; }
  const std::vector<float>& first_nonempty_commit() const { return first_nonempty_commit_; }

 private:
  struct Event {
    VirtualTime time;
    uint64_t seq;
    TaskId task;
  };

  bool Step(Algorithm& a) {
    size_t next = events_.size();
    for (size_t i = 0; i < events_.size(); ++i) {
      if (next == events_.size() || events_[i].time < events_[next].time ||
          (events_[i].time == events_[next].time && events_[i].seq < events_[next].seq)) {
        next = i;
      }
    }
    // Arrivals at the timer's time come first (they were queued earlier).
    if (timer_ && (next == events_.size() || *timer_ < events_[next].time)) {
      const VirtualTime t = *timer_;
      timer_.reset();
      log_.push_back(absl::StrCat("timer t=", t));
      absl::Status s = fleet_.FireTimer(a, t);
      EXPECT_TRUE(s.ok()) << s;
      AfterEvent(a);
      return true;
    }
    if (next == events_.size()) return false;
    const Event e = events_[next];
    events_.erase(events_.begin() + static_cast<std::ptrdiff_t>(next));
    fleet_.set_now(e.time);
    const ModelRef base = fleet_.tasks().at(e.task).base;
    const ClientId client = fleet_.tasks().at(e.task).client;
    ClientUpdate u = fleet_.FinishTask(e.task, delta_(client, fleet_.model(base)));
    absl::Status s = a.Accept(fleet_, std::move(u));
    log_.push_back(absl::StrCat("arrive t=", e.time, " task=", e.task, " client=", client,
                                " base=", base.ToString(), " -> ", s.ToString()));
    AfterEvent(a);
    return true;
  }

  void AfterEvent(Algorithm& a) {
    if (a.ReadyToCommit(fleet_)) {
      absl::StatusOr<CommitResult> r = fleet_.CommitTo(a);
      ASSERT_TRUE(r.ok()) << r.status();
      std::string applied;
      for (const AppliedUpdate& u : r->applied) {
        absl::StrAppend(&applied, u.task_id, "/", u.client, "/", u.staleness, "/", u.weight, " ");
      }
      log_.push_back(
          absl::StrCat("commit v=", fleet_.version(), " [", applied, "] ", Hex(fleet_.current())));
      if (!r->applied.empty() && commits_with_updates_++ == 0) {
        first_nonempty_commit_ = fleet_.current();
      }
    }
    Rng rng(seed_, "select", select_calls_++);
    std::vector<Dispatch> ds = MustSelect(a, fleet_, rng);
    select_draws_ += rng.draws();
    std::vector<ClientId> seen;
    for (const Dispatch& d : ds) {
      const ClientInfo& info = fleet_.client(d.client);
      ASSERT_TRUE(info.available && !info.busy) << "dispatched busy/unavailable " << d.client;
      const TaskId t = fleet_.StartTask(d.client, d.base);
      events_.push_back(Event{fleet_.now() + info.expected_duration, next_seq_++, t});
      log_.push_back(absl::StrCat("dispatch t=", fleet_.now(), " client=", d.client, " task=", t,
                                  " prox=", d.overrides.prox_mu.value_or(-1)));
    }
    std::optional<VirtualTime> deadline = a.NextDeadline();
    timer_.reset();
    if (deadline && *deadline >= fleet_.now()) timer_ = deadline;
  }

  FakeFleet fleet_;
  uint64_t seed_;
  DeltaFn delta_;
  std::vector<Event> events_;
  uint64_t next_seq_ = 0;
  uint64_t select_calls_ = 0;
  uint64_t select_draws_ = 0;
  std::optional<VirtualTime> timer_;
  std::vector<std::string> log_;
  int commits_with_updates_ = 0;
  std::vector<float> first_nonempty_commit_;
};

class ConformanceTest : public ::testing::TestWithParam<std::string_view> {
 protected:
  void SetUp() override {
    absl::StatusOr<const AlgorithmEntry*> e = FindAlgorithm(GetParam());
    ASSERT_TRUE(e.ok()) << e.status();
    entry_ = *e;
    auto it = Neutral().find(GetParam());
    ASSERT_NE(it, Neutral().end())
        << "add a neutral config for '" << GetParam() << "' to kNeutral in " << __FILE__;
    config_ = Parse(it->second);
  }

  // num_clients must match the fleet the rule runs on: rules that divide by
  // N (FedAU and kin) would otherwise see a different fleet than they were built for.
  std::unique_ptr<Algorithm> New(size_t num_clients = 6) {
    absl::StatusOr<std::unique_ptr<Algorithm>> a =
        NewAlgorithm(config_, AlgorithmContext{.num_clients = num_clients, .num_params = kParams});
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? *std::move(a) : nullptr;
  }

  const AlgorithmEntry* entry_ = nullptr;
  config::Algorithm config_;
};

TEST_P(ConformanceTest, RegistryRowMatchesConfigOneof) {
  const auto* field = config::Algorithm::descriptor()->FindFieldByName(std::string(entry_->name));
  ASSERT_NE(field, nullptr) << "no field '" << entry_->name << "' in config.Algorithm";
  EXPECT_EQ(field->number(), static_cast<int>(entry_->rule));
  EXPECT_EQ(config_.rule_case(), entry_->rule);
  auto a = New();
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->Name(), entry_->name);
  EXPECT_FALSE(entry_->summary.empty());
}

TEST_P(ConformanceTest, IdenticalUpdatesCommitToThatUpdate) {
  auto a = New(4);  // UniformFleet has 4 clients
  ASSERT_NE(a, nullptr);
  MiniEngine engine(UniformFleet(), 1, &FixedDelta);
  engine.Start(*a);
  for (int i = 0; i < 40 && engine.commits_with_updates() == 0; ++i) {
    if (!engine.Run(*a, 1)) break;
  }
  ASSERT_GT(engine.commits_with_updates(), 0) << "no update was ever applied";
  const std::vector<float>& x = engine.first_nonempty_commit();
  const std::vector<float> want = {0.5f + 1.0f, 0.5f - 2.0f, 0.5f + 0.25f};
  ASSERT_EQ(x.size(), want.size());
  for (size_t j = 0; j < want.size(); ++j) EXPECT_NEAR(x[j], want[j], 1e-6) << j;
}

TEST_P(ConformanceTest, NoCommitFromAnEmptyBuffer) {
  auto a = New(4);  // UniformFleet has 4 clients
  ASSERT_NE(a, nullptr);
  FakeFleet fleet = UniformFleet();
  ASSERT_TRUE(a->Start(fleet, fleet).ok());
  EXPECT_FALSE(a->ReadyToCommit(fleet));  // before anything
  Rng rng(1, "select", 0);
  fleet.StartTasks(MustSelect(*a, fleet, rng));
  EXPECT_FALSE(a->ReadyToCommit(fleet));  // tasks out, nothing back
  std::optional<VirtualTime> deadline = a->NextDeadline();
  if (deadline) {
    // Time-triggered rules may commit at their deadline, but an empty commit
    // must leave the model unchanged.
    ASSERT_TRUE(fleet.FireTimer(*a, *deadline).ok());
    if (a->ReadyToCommit(fleet)) {
      const std::vector<float> before = fleet.current();
      absl::StatusOr<CommitResult> r = fleet.CommitTo(*a);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_THAT(r->applied, IsEmpty());
      EXPECT_EQ(fleet.current(), before);
      EXPECT_FALSE(a->ReadyToCommit(fleet)) << "Commit must consume the readiness";
    }
  }
  absl::StatusOr<std::optional<CommitResult>> f = fleet.FinishTo(*a);
  ASSERT_TRUE(f.ok());
  if (f->has_value()) {
    EXPECT_THAT((*f)->applied, IsEmpty());
  }
}

TEST_P(ConformanceTest, DeterministicPerSeed) {
  uint64_t draws = 0;
  auto run = [&](uint64_t seed) {
    auto a = New();
    MiniEngine engine(MixedFleet(), seed, &ModelDelta);
    engine.Start(*a);
    engine.Run(*a, 60);
    engine.Finish(*a);
    draws = engine.select_draws();
    return engine.log();
  };
  const std::vector<std::string> first = run(7);
  const uint64_t first_draws = draws;
  if (std::getenv("FEDSIM_DUMP_LOG") != nullptr) {  // debugging aid: print the run
    for (const std::string& line : first) std::printf("%s\n", line.c_str());
  }
  EXPECT_GT(first.size(), 60u);
  EXPECT_EQ(first, run(7));
  // The seed must matter exactly when the rule samples: with fewer slots than
  // idle clients (MixedFleet has 6 clients, the neutral configs train 4 at
  // once) a sampling rule must draw from its stream and choose differently
  // for another seed; a rule that trains everyone must be seed-independent.
  const std::vector<std::string> other = run(8);
  if (SamplesUnderNeutralConfig().count(GetParam()) > 0) {
    EXPECT_GT(first_draws, 0u) << GetParam() << " should sample but drew no random number";
    EXPECT_NE(first, other) << GetParam() << " chose the same clients for seeds 7 and 8";
  } else {
    EXPECT_EQ(first_draws, 0u) << GetParam() << " drew random numbers it was not expected to";
    EXPECT_EQ(first, other) << GetParam() << " depends on the seed without sampling";
  }
}

TEST_P(ConformanceTest, SaveLoadRoundTrips) {
  auto a = New();
  MiniEngine engine(MixedFleet(), 3, &ModelDelta);
  engine.Start(*a);
  for (int stop : {7, 13}) {  // mid-window / mid-round / mid-buffer
    SCOPED_TRACE(stop);
    engine.Run(*a, stop);
    AlgorithmState saved;
    ASSERT_TRUE(a->SaveState(&saved).ok());
    auto b = New();
    ASSERT_TRUE(b->LoadState(saved).ok());
    AlgorithmState again;
    ASSERT_TRUE(b->SaveState(&again).ok());
    EXPECT_EQ(again, saved);

    MiniEngine fork = engine;
    engine.Run(*a, 40);
    engine.Finish(*a);
    fork.Run(*b, 40);
    fork.Finish(*b);
    EXPECT_EQ(engine.log(), fork.log());
    // Continue the original from a fresh engine state for the next stop.
    a = New();
    engine = MiniEngine(MixedFleet(), 3, &ModelDelta);
    engine.Start(*a);
  }
}

TEST_P(ConformanceTest, MalformedStateRejected) {
  auto a = New();
  EXPECT_EQ(a->LoadState(AlgorithmState{}).code(), absl::StatusCode::kInvalidArgument);
  MiniEngine engine(MixedFleet(), 3, &ModelDelta);
  engine.Start(*a);
  engine.Run(*a, 9);
  AlgorithmState saved;
  ASSERT_TRUE(a->SaveState(&saved).ok());
  for (const auto& [key, value] : saved.scalars) {
    AlgorithmState broken = saved;
    broken.scalars.erase(key);
    EXPECT_EQ(New()->LoadState(broken).code(), absl::StatusCode::kInvalidArgument) << key;
    broken = saved;
    broken.scalars[key] = {std::nan("")};
    EXPECT_EQ(New()->LoadState(broken).code(), absl::StatusCode::kInvalidArgument) << key;
  }
  for (const auto& [key, value] : saved.tensors) {
    AlgorithmState broken = saved;
    broken.tensors.erase(key);
    EXPECT_EQ(New()->LoadState(broken).code(), absl::StatusCode::kInvalidArgument) << key;
    if (!value.empty()) {
      broken = saved;
      broken.tensors[key].push_back(1.0f);  // wrong model size
      EXPECT_EQ(New()->LoadState(broken).code(), absl::StatusCode::kInvalidArgument) << key;
    }
  }
}

TEST_P(ConformanceTest, InvalidParametersRejected) {
  auto it = Invalid().find(GetParam());
  ASSERT_NE(it, Invalid().end()) << "add an out-of-range config for '" << GetParam()
                                 << "' to kInvalid in " << __FILE__;
  absl::StatusOr<std::unique_ptr<Algorithm>> a = NewAlgorithm(Parse(it->second.first), {});
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(a.status().message(), HasSubstr(it->second.second));

  // A factory handed another rule's config refuses it.
  for (const AlgorithmEntry& other : RegisteredAlgorithms()) {
    if (other.rule == entry_->rule) continue;
    auto n = Neutral().find(other.name);
    if (n == Neutral().end()) continue;
    EXPECT_EQ(entry_->factory(Parse(n->second), {}).status().code(),
              absl::StatusCode::kInvalidArgument)
        << other.name;
  }
}

std::vector<std::string_view> RegisteredNames() {
  std::vector<std::string_view> names;
  for (const AlgorithmEntry& e : RegisteredAlgorithms()) names.push_back(e.name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(Registry, ConformanceTest, ::testing::ValuesIn(RegisteredNames()),
                         [](const ::testing::TestParamInfo<std::string_view>& info) {
                           return std::string(info.param);
                         });

TEST(RegistryTest, UnknownNameSuggests) {
  absl::StatusOr<const AlgorithmEntry*> e = FindAlgorithm("fedbuf");
  EXPECT_EQ(e.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(e.status().message(), HasSubstr("did you mean 'fedbuff'"));
  EXPECT_THAT(e.status().message(), HasSubstr("fedavg"));
  EXPECT_THAT(FindAlgorithm("zzzzzzzz").status().message(), Not(HasSubstr("did you mean")));
}

TEST(RegistryTest, NoRuleSetIsInvalid) {
  absl::StatusOr<std::unique_ptr<Algorithm>> a = NewAlgorithm(config::Algorithm(), {});
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(a.status().message(), HasSubstr("no rule set"));
}

TEST(RegistryTest, NamesAreUnique) {
  std::vector<std::string_view> names = RegisteredNames();
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end());
}

}  // namespace
}  // namespace fedsim
