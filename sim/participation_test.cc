#include "sim/participation.h"

#include <cmath>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;

config::Participation Parse(const std::string& text) {
  config::Participation p;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &p)) << text;
  return p;
}

std::unique_ptr<ParticipationModel> Make(const std::string& text, size_t n, uint64_t seed = 7,
                                         const std::vector<std::vector<double>>& labels = {},
                                         const std::string& dir = "") {
  absl::StatusOr<std::unique_ptr<ParticipationModel>> m =
      ParticipationModel::Create(Parse(text), n, labels, seed, dir);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *std::move(m) : nullptr;
}

absl::Status CreateError(const std::string& text, size_t n,
                         const std::vector<std::vector<double>>& labels = {},
                         const std::string& dir = "") {
  return ParticipationModel::Create(Parse(text), n, labels, 7, dir).status();
}

std::string WriteFile(const std::string& name, const std::string& contents) {
  std::string dir = ::testing::TempDir();
  if (dir.empty() || dir.back() != '/') dir += '/';
  const std::string path = dir + name;
  std::ofstream(path) << contents;
  return path;
}

// ------------------------------------------------------------ probabilities

TEST(ParticipationProbabilityTest, AlwaysIsOneEverywhere) {
  auto m = Make("always {}", 3);
  EXPECT_FALSE(m->time_based());
  EXPECT_TRUE(m->round_based());
  for (ClientId c = 0; c < 3; ++c) {
    EXPECT_EQ(m->probability(c), 1.0);
    EXPECT_TRUE(m->InRound(c, 12345));
    EXPECT_TRUE(m->AvailableAt(c, 99.5));
  }
  EXPECT_FALSE(m->Changes()->Next().has_value());
}

TEST(ParticipationProbabilityTest, DefaultIsConstantOne) {
  auto m = Make("bernoulli {}", 2);
  EXPECT_EQ(m->probability(0), 1.0);
  EXPECT_EQ(m->probability(1), 1.0);
}

TEST(ParticipationProbabilityTest, LinearClippedLognormalAndRefusedConstant) {
  auto m =
      Make("bernoulli {} probability { distribution { linear { base: 0.9 x_percent: 80 } } }", 5);
  const double want[] = {0.9, 0.72, 0.54, 0.36, 0.18};
  for (ClientId c = 0; c < 5; ++c) EXPECT_NEAR(m->probability(c), want[c], 1e-12);
  // Drawn values above 1 are clipped (exp(5) here); stated ones out of
  // [0, 1] are refused by the scenario's check.
  auto hi = Make("bernoulli {} probability { distribution { lognormal { mu: 5 sigma: 0 } } }", 2);
  EXPECT_EQ(hi->probability(1), 1.0);
  EXPECT_THAT(CreateError("bernoulli {} probability { distribution { constant: 1.5 } }", 2)
                  .message(),
              HasSubstr("probability 1.5 is outside [0, 1]"));
  EXPECT_THAT(CreateError("bernoulli {} probability { distribution { constant: -0.5 } }", 2)
                  .message(),
              HasSubstr("probability -0.5 is outside [0, 1]"));
}

TEST(ParticipationProbabilityTest, UniformStaysInRangeAndIsSeeded) {
  const std::string cfg =
      "bernoulli {} probability { distribution { uniform { lo: 0.2 hi: 0.4 } } }";
  auto a = Make(cfg, 100, 1);
  auto b = Make(cfg, 100, 1);
  auto c = Make(cfg, 100, 2);
  bool differs = false;
  for (ClientId i = 0; i < 100; ++i) {
    EXPECT_GE(a->probability(i), 0.2);
    EXPECT_LT(a->probability(i), 0.4);
    EXPECT_EQ(a->probability(i), b->probability(i));
    differs |= a->probability(i) != c->probability(i);
  }
  EXPECT_TRUE(differs);
}

TEST(ParticipationProbabilityTest, TableMustHaveOneValuePerClient) {
  absl::Status s =
      CreateError("bernoulli {} probability { distribution { table { values: [0.1, 0.2] } } }", 3);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("table.values: has 2 values"));
}

// Client i holds only label i % 10 (as counts). Then p_i = max(p_min,
// p_mean * 10 * m[i % 10]); with every label held by the same number of
// clients the mean before the max is exactly p_mean (m sums to 1), so the
// fleet mean lies in [p_mean, p_mean + p_min].
TEST(ParticipationProbabilityTest, LabelCorrelatedGenerator) {
  const size_t n = 100, num_classes = 10;
  std::vector<std::vector<double>> labels(n, std::vector<double>(num_classes, 0.0));
  for (size_t i = 0; i < n; ++i) labels[i][i % num_classes] = 5.0 + static_cast<double>(i);
  const std::string cfg =
      "bernoulli {} probability { label_correlated { p_mean: 0.05 p_min: 0.02 alpha_part: 0.1 } }";
  auto m = Make(cfg, n, 11, labels);
  double mean = 0, raw_sum = 0;
  for (ClientId i = 0; i < n; ++i) {
    EXPECT_GE(m->probability(i), 0.02);
    EXPECT_LE(m->probability(i), 1.0);
    // Clients with the same label share p.
    EXPECT_DOUBLE_EQ(m->probability(i), m->probability(i % num_classes));
    mean += m->probability(i) / n;
  }
  EXPECT_GE(mean, 0.05 - 1e-12);
  EXPECT_LE(mean, 0.05 + 0.02 + 1e-12);
  // Reconstruct m from the classes above p_min: their raw values p_mean C m_c
  // sum to at most p_mean C = 0.5.
  for (size_t c = 0; c < num_classes; ++c) {
    if (m->probability(c) > 0.02) raw_sum += m->probability(c);
  }
  EXPECT_LE(raw_sum, 0.5 + 1e-12);
  // alpha_part = 0.1 concentrates m: some class gets well above p_mean.
  double max_p = 0;
  for (ClientId i = 0; i < num_classes; ++i) max_p = std::max(max_p, m->probability(i));
  EXPECT_GT(max_p, 0.1);
}

TEST(ParticipationProbabilityTest, LabelCorrelatedNeedsLabels) {
  const std::string cfg = "bernoulli {} probability { label_correlated {} }";
  EXPECT_EQ(CreateError(cfg, 3).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateError(cfg, 2, {{1, 0}, {1, 0, 0}}).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParticipationProbabilityTest, BadParametersAreRejected) {
  EXPECT_THAT(CreateError("markov { a: 0 }", 2).message(), HasSubstr("markov.a"));
  EXPECT_THAT(CreateError("markov { a: 1.5 }", 2).message(), HasSubstr("markov.a"));
  EXPECT_THAT(CreateError("cyclic { period: 0 }", 2).message(), HasSubstr("cyclic.period"));
  EXPECT_THAT(CreateError("bernoulli {} round_s: -1", 2).message(), HasSubstr("round_s"));
  EXPECT_THAT(CreateError("trace {}", 2).message(), HasSubstr("trace.csv"));
  EXPECT_THAT(
      CreateError("bernoulli {} probability { distribution { uniform { lo: 0.5 hi: 0.1 } } }", 2)
          .message(),
      HasSubstr("uniform: lo 0.5 is greater than hi 0.1"));
}

// ------------------------------------------------------------ round processes

TEST(BernoulliTest, EmpiricalRateConvergesToP) {
  const double p[] = {0.02, 0.1, 0.5, 0.9, 1.0, 0.0};
  auto m = Make(
      "bernoulli {} probability { distribution { table { values: [0.02, 0.1, 0.5, 0.9, 1, 0] } } }",
      6);
  const uint64_t rounds = 40000;
  for (ClientId c = 0; c < 6; ++c) {
    uint64_t on = 0;
    for (uint64_t r = 0; r < rounds; ++r) on += m->InRound(c, r);
    const double rate = static_cast<double>(on) / rounds;
    const double sd = std::sqrt(p[c] * (1 - p[c]) / rounds);
    EXPECT_NEAR(rate, p[c], 5 * sd + 1e-12) << "client " << c;
  }
}

TEST(BernoulliTest, RoundsAreIndependentOfQueryOrder) {
  auto a = Make("bernoulli {} probability { distribution { constant: 0.3 } }", 4, 3);
  auto b = Make("bernoulli {} probability { distribution { constant: 0.3 } }", 4, 3);
  std::vector<bool> forward;
  for (uint64_t r = 0; r < 500; ++r) forward.push_back(a->InRound(2, r));
  for (uint64_t r = 500; r-- > 0;) EXPECT_EQ(b->InRound(2, r), forward[r]) << r;
}

// A two-state chain with P(off->on) = a, P(on->off) = b is on a fraction
// a / (a + b) = p of the time; its mean over R rounds has variance
// p (1-p) / R * (1 + lambda) / (1 - lambda), lambda = 1 - a - b.
TEST(MarkovTest, StationaryRateAndTransitionRates) {
  const double p[] = {0.1, 0.3, 0.5, 0.02};
  auto m = Make(
      "markov { a: 0.05 } probability { distribution { table { values: [0.1, 0.3, 0.5, 0.02] } } "
      "}",
      4);
  const uint64_t rounds = 400000;
  for (ClientId c = 0; c < 4; ++c) {
    double a = 0.05, b = a * (1 / p[c] - 1);
    if (b > 1) {
      a /= b;
      b = 1;
    }
    uint64_t on = 0, on_to_off = 0, off_to_on = 0, on_before = 0;
    bool prev = m->InRound(c, 0);
    on += prev;
    for (uint64_t r = 1; r < rounds; ++r) {
      const bool s = m->InRound(c, r);
      on += s;
      if (prev) {
        ++on_before;
        on_to_off += !s;
      } else {
        off_to_on += s;
      }
      prev = s;
    }
    const double off_before = static_cast<double>(rounds - 1 - on_before);
    const double lambda = 1 - a - b;
    const double sd = std::sqrt(p[c] * (1 - p[c]) / rounds * (1 + lambda) / (1 - lambda));
    EXPECT_NEAR(static_cast<double>(on) / rounds, p[c], 5 * sd) << "client " << c;
    const double rate_b = static_cast<double>(on_to_off) / static_cast<double>(on_before);
    const double rate_a = static_cast<double>(off_to_on) / off_before;
    EXPECT_NEAR(rate_b, b, 5 * std::sqrt(b * (1 - b) / on_before) + 1e-12) << "client " << c;
    EXPECT_NEAR(rate_a, a, 5 * std::sqrt(a * (1 - a) / off_before)) << "client " << c;
  }
}

TEST(MarkovTest, RandomAccessMatchesForwardChain) {
  const std::string cfg = "markov { a: 0.2 } probability { distribution { constant: 0.4 } }";
  auto a = Make(cfg, 3, 5);
  auto b = Make(cfg, 3, 5);
  std::vector<bool> forward;
  for (uint64_t r = 0; r < 3000; ++r) forward.push_back(a->InRound(1, r));
  // Backwards, jumping around, and past the end: all agree with the chain.
  for (uint64_t r = 3000; r-- > 0;) ASSERT_EQ(b->InRound(1, r), forward[r]) << r;
  for (uint64_t r : {2999u, 17u, 2048u, 255u, 256u, 257u, 0u, 1500u}) {
    EXPECT_EQ(a->InRound(1, r), forward[r]) << r;
    EXPECT_EQ(b->InRound(1, r), forward[r]) << r;
  }
}

TEST(MarkovTest, ExtremeProbabilitiesAreConstant) {
  auto m = Make("markov {} probability { distribution { table { values: [0, 1] } } }", 2);
  for (uint64_t r = 0; r < 2000; ++r) {
    ASSERT_FALSE(m->InRound(0, r));
    ASSERT_TRUE(m->InRound(1, r));
  }
}

// Runs of equal state in rounds [0, rounds).
std::vector<std::pair<bool, uint64_t>> Runs(const ParticipationModel& m, ClientId c,
                                            uint64_t rounds) {
  std::vector<std::pair<bool, uint64_t>> runs;
  for (uint64_t r = 0; r < rounds; ++r) {
    const bool s = m.InRound(c, r);
    if (runs.empty() || runs.back().first != s) {
      runs.emplace_back(s, 1);
    } else {
      ++runs.back().second;
    }
  }
  return runs;
}

TEST(CyclicTest, RunLengthsAreExact) {
  // P = 10: on = max(1, round_half_even(10 p)), off = max(1, 10 - on).
  //   p 0.3 -> 3/7, 0.05 -> 1 (0.5 rounds to 0)/9, 1 -> 10/1, 0.25 -> 2 (2.5)/8,
  //   0.75 -> 8 (7.5)/2, 0 -> 1/9.
  const uint64_t on[] = {3, 1, 10, 2, 8, 1};
  const uint64_t off[] = {7, 9, 1, 8, 2, 9};
  const size_t n = 6;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    auto m = Make(
        "cyclic { period: 10 } probability { distribution { table { values: [0.3, 0.05, 1, 0.25, "
        "0.75, 0] } } }",
        n, seed);
    for (ClientId c = 0; c < n; ++c) {
      auto runs = Runs(*m, c, 400);
      ASSERT_GE(runs.size(), 4u);
      // Starts off with k in [1, off) rounds left, or (k = 0) on at once.
      if (runs[0].first) {
        EXPECT_EQ(runs[0].second, on[c]) << "client " << c;
      } else {
        EXPECT_GE(runs[0].second, 1u);
        EXPECT_LT(runs[0].second, off[c]) << "client " << c;
      }
      for (size_t k = 1; k + 1 < runs.size(); ++k) {
        EXPECT_EQ(runs[k].second, runs[k].first ? on[c] : off[c]) << "client " << c << " run " << k;
      }
    }
  }
}

TEST(CyclicTest, PhaseCoversEveryOffset) {
  // off = 9: the rounds before the first "on" take every value 0..8.
  auto m = Make("cyclic { period: 10 } probability { distribution { constant: 0.1 } }", 500);
  std::vector<int> seen(9, 0);
  for (ClientId c = 0; c < 500; ++c) {
    uint64_t r = 0;
    while (!m->InRound(c, r)) ++r;
    ASSERT_LT(r, 9u);
    ++seen[r];
  }
  for (int v : seen) EXPECT_GT(v, 20);
}

TEST(ParticipationTest, DeterministicPerSeed) {
  for (const std::string cfg :
       {"bernoulli {} probability { distribution { constant: 0.3 } }",
        "markov { a: 0.1 } probability { distribution { constant: 0.3 } }",
        "cyclic { period: 7 } probability { distribution { constant: 0.3 } }"}) {
    auto a = Make(cfg, 20, 9), b = Make(cfg, 20, 9), c = Make(cfg, 20, 10);
    bool differs = false;
    for (ClientId i = 0; i < 20; ++i) {
      for (uint64_t r = 0; r < 100; ++r) {
        ASSERT_EQ(a->InRound(i, r), b->InRound(i, r)) << cfg;
        differs |= a->InRound(i, r) != c->InRound(i, r);
      }
    }
    EXPECT_TRUE(differs) << cfg;
  }
}

// ------------------------------------------------------------ time view

TEST(RoundTimeTest, RoundsOnlyMeansAlwaysAvailableInTime) {
  auto m = Make("bernoulli {} probability { distribution { constant: 0.1 } }", 5);
  EXPECT_FALSE(m->time_based());
  for (ClientId c = 0; c < 5; ++c) EXPECT_TRUE(m->AvailableAt(c, 3.7));
  EXPECT_FALSE(m->Changes()->Next().has_value());
}

TEST(RoundTimeTest, AvailableAtFollowsRoundsAndBoundaries) {
  auto m = Make("bernoulli {} round_s: 0.1 probability { distribution { constant: 0.5 } }", 4);
  EXPECT_TRUE(m->time_based());
  for (ClientId c = 0; c < 4; ++c) {
    for (uint64_t r = 0; r < 300; ++r) {
      const double start = static_cast<double>(r) * 0.1;
      EXPECT_EQ(m->RoundAt(start), r);
      EXPECT_EQ(m->AvailableAt(c, start), m->InRound(c, r));
      EXPECT_EQ(m->AvailableAt(c, start + 0.05), m->InRound(c, r));
      if (r > 0) {
        EXPECT_EQ(m->AvailableAt(c, std::nextafter(start, 0.0)), m->InRound(c, r - 1));
      }
    }
  }
  EXPECT_EQ(m->RoundAt(-1.0), 0u);
}

// Replays the stream from the states at `after` and checks it against
// AvailableAt at every round start, plus order and that each entry is a change.
void CheckRoundStream(const ParticipationModel& m, double after, uint64_t last_round) {
  const size_t n = m.num_clients();
  const double round_s = m.round_s();
  std::vector<bool> state(n);
  for (ClientId c = 0; c < n; ++c) state[c] = m.AvailableAt(c, after);
  auto stream = m.Changes(after);
  std::optional<AvailabilityChange> ch = stream->Next();
  double prev_time = after;
  ClientId prev_client = 0;
  bool first = true;
  size_t changes = 0;
  for (uint64_t r = m.RoundAt(after) + 1; r <= last_round; ++r) {
    const double t = static_cast<double>(r) * round_s;
    while (ch.has_value() && ch->time <= t) {
      ASSERT_GT(ch->time, after);
      ASSERT_TRUE(first || ch->time > prev_time ||
                  (ch->time == prev_time && ch->client > prev_client))
          << "out of order at " << ch->time;
      ASSERT_EQ(ch->time, t) << "changes happen at round starts";
      ASSERT_NE(state[ch->client], ch->available) << "not a change: client " << ch->client;
      state[ch->client] = ch->available;
      prev_time = ch->time;
      prev_client = ch->client;
      first = false;
      ++changes;
      ch = stream->Next();
    }
    for (ClientId c = 0; c < n; ++c) {
      ASSERT_EQ(state[c], m.InRound(c, r)) << "client " << c << " round " << r;
    }
  }
  EXPECT_GT(changes, (last_round - m.RoundAt(after)) / 2);  // the stream did the work
}

TEST(RoundTimeTest, ChangeStreamIsOrderedAndComplete) {
  const std::string prob =
      " probability { distribution { table { values: [0.5, 0.1, 0.9, 0, 1, 0.001, 0.3, 0.999] } } "
      "}";
  for (const std::string process : {"bernoulli {}", "markov { a: 0.2 }", "cyclic { period: 6 }"}) {
    SCOPED_TRACE(process);
    auto m = Make(process + " round_s: 2.5" + prob, 8);
    CheckRoundStream(*m, 0.0, 3000);
    CheckRoundStream(*m, 1234.5, 2000);
  }
}

TEST(RoundTimeTest, ChangeStreamScalesToManyClients) {
  auto m = Make(
      "markov { a: 0.05 } round_s: 1 probability { distribution { uniform { lo: 0.02 hi: "
      "0.5 } } }",
      100000);
  auto stream = m->Changes();
  double last = 0;
  size_t count = 0;
  while (count < 300000) {
    std::optional<AvailabilityChange> ch = stream->Next();
    ASSERT_TRUE(ch.has_value());
    ASSERT_GE(ch->time, last);
    last = ch->time;
    ++count;
  }
  EXPECT_GT(last, 1.0);
}

// ------------------------------------------------------------ traces

TEST(TraceTest, WindowsAreMergedAndRespected) {
  WriteFile("trace_ok.csv",
            "client,start_s,end_s\n"
            "0,1,3\n"
            "0, 2, 5\r\n"
            "\n"
            "0,5,6\n"
            "1,0,1\n"
            "1,4,4.5\n");
  auto m = Make("trace { csv: \"trace_ok.csv\" }", 3, 1, {}, ::testing::TempDir());
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->time_based());
  EXPECT_FALSE(m->round_based());
  ASSERT_EQ(m->windows(0).size(), 1u);
  EXPECT_EQ(m->windows(0)[0], std::make_pair(1.0, 6.0));
  EXPECT_FALSE(m->AvailableAt(0, 0.999));
  EXPECT_TRUE(m->AvailableAt(0, 1));
  EXPECT_TRUE(m->AvailableAt(0, 5));  // the touching windows were merged
  EXPECT_TRUE(m->AvailableAt(0, 5.999));
  EXPECT_FALSE(m->AvailableAt(0, 6));
  EXPECT_TRUE(m->AvailableAt(1, 0));
  EXPECT_FALSE(m->AvailableAt(1, 1));
  EXPECT_FALSE(m->AvailableAt(1, 3.9));
  EXPECT_TRUE(m->AvailableAt(1, 4));
  EXPECT_FALSE(m->AvailableAt(1, 4.5));
  for (double t : {0.0, 1.0, 4.2, 100.0}) EXPECT_FALSE(m->AvailableAt(2, t));  // not listed

  auto stream = m->Changes();
  std::vector<AvailabilityChange> got;
  while (auto ch = stream->Next()) got.push_back(*ch);
  const std::vector<AvailabilityChange> want = {
      {1, 0, true}, {1, 1, false}, {4, 1, true}, {4.5, 1, false}, {6, 0, false}};
  EXPECT_EQ(got, want);

  auto later = m->Changes(1.0);
  got.clear();
  while (auto ch = later->Next()) got.push_back(*ch);
  EXPECT_EQ(got, std::vector<AvailabilityChange>(want.begin() + 2, want.end()));

  // Rounds of a trace: the time r * round_s (1 s when round_s is 0).
  EXPECT_FALSE(m->InRound(0, 0));
  EXPECT_TRUE(m->InRound(0, 1));
  EXPECT_FALSE(m->InRound(0, 6));
}

TEST(TraceTest, AbsolutePathAndMissingFile) {
  const std::string path = WriteFile("trace_abs.csv", "client,start_s,end_s\n2,0.5,1.5\n");
  auto m = Make("trace { csv: \"" + path + "\" }", 3, 1, {}, "/nonexistent");
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->AvailableAt(2, 0.5));
  const absl::Status missing =
      CreateError("trace { csv: \"no_such.csv\" }", 3, {}, ::testing::TempDir());
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("participation.trace.csv: cannot read "));
  EXPECT_THAT(missing.message(), HasSubstr("no_such.csv: no such file or directory"));
}

// The trace is read by the shared CSV reader (util/csv.h): a file saved by a
// spreadsheet on Windows (byte-order mark, CRLF) with '#' notes reads the same.
TEST(TraceTest, SpreadsheetExportWithCommentsReads) {
  WriteFile("trace_bom.csv",
            "\xEF\xBB\xBF# recorded 2024-05-01\r\n"
            "client,start_s,end_s\r\n"
            "# phone 0\r\n"
            "0,1,3\r\n"
            "2,0.5,1.5\r\n");
  auto m = Make("trace { csv: \"trace_bom.csv\" }", 3, 1, {}, ::testing::TempDir());
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->windows(0), (std::vector<std::pair<double, double>>{{1, 3}}));
  EXPECT_TRUE(m->windows(1).empty());
  EXPECT_EQ(m->windows(2), (std::vector<std::pair<double, double>>{{0.5, 1.5}}));
}

TEST(TraceTest, BadRowsAreReportedWithTheirLine) {
  struct Case {
    std::string body;
    std::string want;
  };
  const Case cases[] = {
      {"client,start,end\n0,1,2\n", ":1: expected the header"},
      {"client,start_s,end_s\n0,1,2\n\nx,1,2\n", ":4: client 'x' is not an integer"},
      {"client,start_s,end_s\n0,abc,2\n", ":2: start_s 'abc' is not a finite number"},
      {"client,start_s,end_s\n0,1,nan\n", ":2: end_s 'nan' is not a finite number"},
      {"client,start_s,end_s\n0,1,2\n0,3,3\n", ":3: end_s 3 is not after start_s 3"},
      {"client,start_s,end_s\n0,5,2\n", ":2: end_s 2 is not after start_s 5"},
      {"client,start_s,end_s\n0,-1,2\n", ":2: start_s -1 is negative"},
      {"client,start_s,end_s\n3,1,2\n", ":2: unknown client id 3"},
      {"client,start_s,end_s\n-1,1,2\n", ":2: unknown client id -1"},
      {"client,start_s,end_s\n0,1\n", ":2: expected 3 fields"},
      {"", ":1: empty file"},
  };
  int k = 0;
  for (const Case& c : cases) {
    const std::string name = "trace_bad_" + std::to_string(k++) + ".csv";
    const std::string path = WriteFile(name, c.body);
    absl::Status s = CreateError("trace { csv: \"" + name + "\" }", 3, {}, ::testing::TempDir());
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.body;
    EXPECT_THAT(s.message(), HasSubstr(path + c.want)) << s;
  }
}

}  // namespace
}  // namespace fedsim
