#include "algorithms/topology.h"

#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

config::Topology Parse(const std::string& text) {
  config::Topology t;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &t)) << text;
  return t;
}

std::unique_ptr<Topology> MustBuild(const std::string& text, uint32_t n, uint64_t seed = 1) {
  ProblemList problems;
  auto t = NewTopology(Parse(text), {.num_clients = n, .seed = seed}, &problems);
  EXPECT_TRUE(problems.empty()) << text << ": " << problems.ToStatus();
  EXPECT_NE(t, nullptr);
  return t;
}

// The problems building `text` gives, as "path: message" lines.
std::string ProblemsOf(const std::string& text, uint32_t n,
                       std::string path = "algorithm.decentralized.topology") {
  ProblemList problems;
  auto t = NewTopology(Parse(text), {.num_clients = n, .seed = 1, .path = path}, &problems);
  EXPECT_EQ(t == nullptr, !problems.empty()) << text;
  return std::string(problems.ToStatus().message());
}

std::vector<uint32_t> Neighbors(const Graph& g, uint32_t i) {
  auto s = g.neighbors(i);
  return {s.begin(), s.end()};
}

std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(GraphTest, FromListsSortsAndDropsRepeatsAndSelfLoops) {
  Graph g = Graph::FromLists({{2, 1, 1, 0}, {0}, {0}});
  EXPECT_THAT(Neighbors(g, 0), ElementsAre(1, 2));
  EXPECT_EQ(g.num_links(), 4u);
  EXPECT_TRUE(g.symmetric());
  Graph directed = Graph::FromLists({{1}, {}, {}});
  EXPECT_FALSE(directed.symmetric());
  Graph sym = directed.Symmetrized();
  EXPECT_TRUE(sym.symmetric());
  EXPECT_THAT(Neighbors(sym, 1), ElementsAre(0));
}

TEST(GraphTest, ComponentsAreNumberedBySmallestClientAndDescribed) {
  Graph g = Graph::FromEdges(6, std::vector<std::pair<uint32_t, uint32_t>>{{0, 3}, {1, 2}});
  Components c = ConnectedComponents(g);
  EXPECT_THAT(c.component, ElementsAre(0, 1, 1, 0, 2, 3));
  EXPECT_THAT(c.sizes, ElementsAre(2, 2, 1, 1));
  EXPECT_EQ(DescribeComponents(c), "4 components: {0, 3}, {1, 2}, {4}, {5}");
  // Links of a directed graph count both ways.
  EXPECT_EQ(ConnectedComponents(Graph::FromLists({{1}, {}, {1}})).count(), 1u);
}

TEST(GraphTest, DescribeComponentsShortensLongLists) {
  std::vector<std::pair<uint32_t, uint32_t>> edges;
  for (uint32_t i = 0; i + 1 < 10; ++i) edges.push_back({i, i + 1});
  Components c = ConnectedComponents(Graph::FromEdges(16, edges));
  EXPECT_EQ(DescribeComponents(c),
            "7 components: {0, 1, 2, 3, 4, 5, ... (10 clients)}, {10}, {11}, {12}, and 3 more");
}

TEST(TopologyTest, Ring) {
  auto t = MustBuild("ring {}", 10);
  auto g = t->GraphAt(0);
  for (uint32_t i = 0; i < 10; ++i) EXPECT_EQ(g->degree(i), 2u);
  EXPECT_THAT(Neighbors(*g, 0), ElementsAre(1, 9));
  EXPECT_THAT(Neighbors(*g, 5), ElementsAre(4, 6));
  EXPECT_FALSE(t->time_varying());
  EXPECT_EQ(t->GraphAt(7), g);  // static: one graph for every round
  EXPECT_EQ(MustBuild("ring {}", 2)->GraphAt(0)->num_links(), 2u);
  EXPECT_EQ(MustBuild("ring {}", 1)->GraphAt(0)->num_links(), 0u);
}

TEST(TopologyTest, TorusChoosesTheSquarestShape) {
  EXPECT_EQ(SquarestFactors(100), std::make_pair(10u, 10u));
  EXPECT_EQ(SquarestFactors(12), std::make_pair(3u, 4u));
  EXPECT_EQ(SquarestFactors(13), std::make_pair(1u, 13u));
  auto t = MustBuild("torus {}", 12);
  EXPECT_EQ(t->Describe(), "torus(3x4)");
  auto g = t->GraphAt(0);
  for (uint32_t i = 0; i < 12; ++i) EXPECT_EQ(g->degree(i), 4u) << i;
  // Client 0 at (0, 0): right 1, left 3, down 4, up (2, 0) = 8.
  EXPECT_THAT(Neighbors(*g, 0), ElementsAre(1, 3, 4, 8));
}

TEST(TopologyTest, TorusWithGivenSidesAndGrid) {
  EXPECT_EQ(MustBuild("torus { rows: 2 }", 10)->Describe(), "torus(2x5)");
  EXPECT_EQ(MustBuild("torus { cols: 2 }", 10)->Describe(), "torus(5x2)");
  // A side of 2 gives one link, not two: degree 3.
  auto g = MustBuild("torus { rows: 2 cols: 5 }", 10)->GraphAt(0);
  EXPECT_EQ(g->degree(0), 3u);
  auto grid = MustBuild("torus { rows: 3 cols: 4 wrap: false }", 12);
  EXPECT_EQ(grid->Describe(), "grid(3x4)");
  EXPECT_EQ(grid->GraphAt(0)->degree(0), 2u);  // corner
  EXPECT_EQ(grid->GraphAt(0)->degree(5), 4u);  // inside
}

TEST(TopologyTest, TorusSidesThatDoNotMultiplyToNAreProblems) {
  EXPECT_THAT(ProblemsOf("torus { rows: 3 }", 100),
              HasSubstr("algorithm.decentralized.topology.torus.rows: 3 does not divide "
                        "num_clients 100"));
  EXPECT_THAT(ProblemsOf("torus { cols: 7 }", 100), HasSubstr("topology.torus.cols: 7 does not"));
  EXPECT_THAT(ProblemsOf("torus { rows: 5 cols: 5 }", 100),
              HasSubstr("topology.torus: rows 5 x cols 5 = 25, but num_clients is 100"));
}

TEST(TopologyTest, Exponential) {
  auto g = MustBuild("exponential {}", 16)->GraphAt(0);
  // 0 + 1, 2, 4, 8 and, from the others, 0 - 1, 2, 4 (8 is its own mirror).
  EXPECT_THAT(Neighbors(*g, 0), ElementsAre(1, 2, 4, 8, 12, 14, 15));
  for (uint32_t i = 0; i < 16; ++i) EXPECT_EQ(g->degree(i), 7u);
  EXPECT_THAT(Neighbors(*MustBuild("exponential {}", 10)->GraphAt(0), 0),
              ElementsAre(1, 2, 4, 6, 8, 9));
}

TEST(TopologyTest, FullyConnected) {
  auto g = MustBuild("full {}", 7)->GraphAt(0);
  for (uint32_t i = 0; i < 7; ++i) EXPECT_EQ(g->degree(i), 6u);
}

TEST(TopologyTest, RandomRegularHasExactlyDegreeDAndDependsOnTheSeed) {
  auto a = MustBuild("random_regular { degree: 10 }", 100, /*seed=*/1);
  auto b = MustBuild("random_regular { degree: 10 }", 100, /*seed=*/2);
  auto a2 = MustBuild("random_regular { degree: 10 }", 100, /*seed=*/1);
  for (const auto* t : {a.get(), b.get()}) {
    auto g = t->GraphAt(0);
    EXPECT_TRUE(g->symmetric());
    EXPECT_EQ(ConnectedComponents(*g).count(), 1u);
    for (uint32_t i = 0; i < 100; ++i) ASSERT_EQ(g->degree(i), 10u) << i;
  }
  EXPECT_EQ(*a->GraphAt(0), *a2->GraphAt(0));
  EXPECT_FALSE(*a->GraphAt(0) == *b->GraphAt(0));
  EXPECT_EQ(a->Describe(), "random_regular(degree=10, seed=1)");
  // The kind's own seed replaces the scenario seed.
  auto own = MustBuild("random_regular { degree: 10 seed: 2 }", 100, /*seed=*/1);
  EXPECT_EQ(*own->GraphAt(0), *b->GraphAt(0));
}

TEST(TopologyTest, RandomRegularSmallAndEdgeDegrees) {
  // d = 2 is a union of cycles; only a single cycle (connected) is accepted.
  auto g = MustBuild("random_regular { degree: 2 }", 50)->GraphAt(0);
  EXPECT_EQ(ConnectedComponents(*g).count(), 1u);
  for (uint32_t i = 0; i < 50; ++i) EXPECT_EQ(g->degree(i), 2u);
  // d = N - 1 is the complete graph.
  auto full = MustBuild("random_regular { degree: 5 }", 6)->GraphAt(0);
  for (uint32_t i = 0; i < 6; ++i) EXPECT_EQ(full->degree(i), 5u);
  EXPECT_EQ(MustBuild("random_regular { degree: 1 }", 2)->GraphAt(0)->num_links(), 2u);
}

TEST(TopologyTest, RandomRegularBadDegrees) {
  const std::string p = "algorithm.decentralized.topology.random_regular.degree: ";
  EXPECT_THAT(ProblemsOf("random_regular { degree: 10 }", 10),
              HasSubstr(p + "10 must be below num_clients 10"));
  EXPECT_THAT(ProblemsOf("random_regular { degree: 12 }", 10),
              HasSubstr(p + "12 must be below num_clients 10"));
  EXPECT_THAT(ProblemsOf("random_regular { degree: 3 }", 11),
              HasSubstr(p + "degree x num_clients = 3 x 11 is odd"));
  EXPECT_THAT(ProblemsOf("random_regular { degree: 0 }", 11), HasSubstr(p + "must be at least 1"));
  EXPECT_THAT(ProblemsOf("random_regular { degree: 1 }", 10),
              HasSubstr(p + "1 pairs the clients off into 5 separate edges"));
}

TEST(TopologyTest, ErdosRenyi) {
  auto a = MustBuild("erdos_renyi { p: 0.3 }", 40, 5);
  auto a2 = MustBuild("erdos_renyi { p: 0.3 }", 40, 5);
  auto b = MustBuild("erdos_renyi { p: 0.3 }", 40, 6);
  EXPECT_EQ(*a->GraphAt(0), *a2->GraphAt(0));
  EXPECT_FALSE(*a->GraphAt(0) == *b->GraphAt(0));
  // About p (N - 1) = 11.7 neighbours each.
  const double mean_degree = a->GraphAt(0)->num_links() / 40.0;
  EXPECT_GT(mean_degree, 8);
  EXPECT_LT(mean_degree, 16);
  auto full = MustBuild("erdos_renyi { p: 1 }", 9)->GraphAt(0);
  for (uint32_t i = 0; i < 9; ++i) EXPECT_EQ(full->degree(i), 8u);
}

TEST(TopologyTest, ErdosRenyiBadPAndDisconnectedDraws) {
  const std::string p = "algorithm.decentralized.topology.erdos_renyi.p: ";
  EXPECT_THAT(ProblemsOf("erdos_renyi { p: 0 }", 10), HasSubstr(p + "must be in (0, 1], got 0"));
  EXPECT_THAT(ProblemsOf("erdos_renyi { p: 1.5 }", 10), HasSubstr(p + "must be in (0, 1]"));
  EXPECT_THAT(ProblemsOf("erdos_renyi { p: -0.1 }", 10), HasSubstr(p + "must be in (0, 1]"));
  const std::string sparse = ProblemsOf("erdos_renyi { p: 0.01 }", 50);
  EXPECT_THAT(sparse, HasSubstr(p + "the graph drawn with p = 0.01 and seed 1 is disconnected: "));
  EXPECT_THAT(sparse, HasSubstr(" components: {0"));
  EXPECT_THAT(sparse, HasSubstr("raise p"));
}

TEST(TopologyTest, TimeVaryingDrawsKNeighboursPerRound) {
  auto t = MustBuild("time_varying { k: 3 }", 20, 9);
  EXPECT_TRUE(t->time_varying());
  auto r0 = t->GraphAt(0);
  auto r1 = t->GraphAt(1);
  for (const Graph* g : {r0.get(), r1.get()}) {
    for (uint32_t i = 0; i < 20; ++i) {
      ASSERT_EQ(g->degree(i), 3u);
      EXPECT_FALSE(g->HasLink(i, i));
    }
  }
  EXPECT_FALSE(*r0 == *r1);
  // A pure function of (seed, round): a second topology agrees.
  auto again = MustBuild("time_varying { k: 3 }", 20, 9);
  EXPECT_EQ(*again->GraphAt(1), *r1);
  EXPECT_EQ(*t->GraphAt(0), *r0);
  EXPECT_FALSE(*MustBuild("time_varying { k: 3 }", 20, 10)->GraphAt(0) == *r0);
  // Picks are not mutual: with 20 clients and 3 picks some link is one-way.
  EXPECT_FALSE(r0->symmetric());
}

TEST(TopologyTest, TimeVaryingBadK) {
  EXPECT_THAT(ProblemsOf("time_varying { k: 10 }", 10),
              HasSubstr("topology.time_varying.k: 10 must be below num_clients 10"));
  EXPECT_THAT(ProblemsOf("time_varying { k: 0 }", 10),
              HasSubstr("topology.time_varying.k: must be at least 1"));
}

TEST(TopologyTest, UnsetKindAndNoClients) {
  EXPECT_THAT(ProblemsOf("", 10, "topology"), HasSubstr("topology: choose a kind: ring"));
  EXPECT_THAT(ProblemsOf("ring {}", 0, "topology"), HasSubstr("topology: needs at least one"));
  auto status = NewTopology(Parse("torus { rows: 3 }"), {.num_clients = 10});
  EXPECT_EQ(status.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.status().message(), HasSubstr("topology.torus.rows: 3 does not divide"));
}

TEST(EdgeListTest, ReadsUndirectedEdges) {
  const std::string path = WriteFile("ring4.csv", "# a ring\ni,j\n0,1\n1,2\n2,3\n3,0\n");
  auto t = MustBuild("edge_list { csv: '" + path + "' }", 4);
  auto g = t->GraphAt(0);
  EXPECT_TRUE(g->symmetric());
  EXPECT_THAT(Neighbors(*g, 0), ElementsAre(1, 3));
  EXPECT_EQ(t->custom_matrix(), nullptr);
}

// A list saved by a Windows spreadsheet ("CSV UTF-8": a byte-order mark and
// CRLF line ends) reads as the same graph.
TEST(EdgeListTest, WindowsLineEndsAndAByteOrderMarkReadTheSame) {
  const std::string path =
      WriteFile("ring4_crlf.csv", "\xEF\xBB\xBFi,j\r\n0,1\r\n1,2\r\n# note\r\n2,3\r\n3,0\r\n");
  auto t = MustBuild("edge_list { csv: '" + path + "' }", 4);
  auto g = t->GraphAt(0);
  EXPECT_TRUE(g->symmetric());
  EXPECT_THAT(Neighbors(*g, 0), ElementsAre(1, 3));
  EXPECT_THAT(Neighbors(*g, 2), ElementsAre(1, 3));
  // And its line numbers still match an editor's.
  const std::string bad = WriteFile("bad_crlf.csv", "\xEF\xBB\xBFi,j\r\n0,1\r\n1,9\r\n");
  EXPECT_THAT(ProblemsOf("edge_list { csv: '" + bad + "' }", 4),
              HasSubstr(bad + ":3: client 9 does not exist"));
}

TEST(EdgeListTest, BadLinesNameFileAndLine) {
  const std::string path = WriteFile("bad.csv", "i,j\n0,1\n1,7\n2,2\n1,0\nx,1\n");
  const std::string problems = ProblemsOf("edge_list { csv: '" + path + "' }", 4);
  const std::string p = "algorithm.decentralized.topology.edge_list.csv: " + path;
  EXPECT_THAT(problems,
              HasSubstr(p + ":3: client 7 does not exist (num_clients is 4, so ids are 0..3)"));
  EXPECT_THAT(problems, HasSubstr(p + ":4: self-loop 2,2"));
  EXPECT_THAT(problems, HasSubstr(p + ":5: duplicate edge 1,0 (already on line 2"));
  EXPECT_THAT(problems, HasSubstr(p + ":6: i 'x' is not an integer >= 0"));
}

TEST(EdgeListTest, DisconnectedMissingAndHeaderProblems) {
  const std::string split = WriteFile("split.csv", "i,j\n0,1\n2,3\n");
  EXPECT_THAT(ProblemsOf("edge_list { csv: '" + split + "' }", 5),
              HasSubstr("edge_list.csv: the graph of " + split +
                        " is disconnected: 3 components: {0, 1}, {2, 3}, {4}"));
  EXPECT_THAT(ProblemsOf("edge_list { csv: '/nonexistent/e.csv' }", 5),
              HasSubstr("edge_list.csv: cannot read /nonexistent/e.csv"));
  EXPECT_THAT(ProblemsOf("edge_list {}", 5), HasSubstr("edge_list.csv: set the CSV file"));
  const std::string weighted = WriteFile("w_as_plain.csv", "i,j,weight\n0,1,0.5\n");
  EXPECT_THAT(ProblemsOf("edge_list { csv: '" + weighted + "' }", 2),
              HasSubstr("edge_list.weighted: the file has weights: set weighted = true"));
}

TEST(EdgeListTest, WeightedFileIsACustomMatrix) {
  const std::string path =
      WriteFile("w.csv",
                "i,j,weight\n0,0,0.5\n0,1,0.5\n1,0,0.5\n1,1,0.25\n1,2,0.25\n2,1,0.25\n2,2,0.75\n"
                "2,0,0\n");
  auto t = MustBuild("edge_list { csv: '" + path + "' weighted: true }", 3);
  ASSERT_NE(t->custom_matrix(), nullptr);
  const CustomMatrix& m = *t->custom_matrix();
  ASSERT_EQ(m.size(), 3u);
  ASSERT_EQ(m[1].size(), 3u);
  EXPECT_EQ(m[1][2].col, 2u);
  EXPECT_EQ(m[1][2].weight, 0.25);
  ASSERT_EQ(m[2].size(), 2u);  // the zero entry 2,0 is no link
  auto g = t->GraphAt(0);
  EXPECT_THAT(Neighbors(*g, 2), ElementsAre(1));
  EXPECT_THAT(Neighbors(*g, 1), ElementsAre(0, 2));
}

TEST(EdgeListTest, WeightedRowsMustSumToOne) {
  const std::string path =
      WriteFile("w_bad.csv", "i,j,weight\n0,0,0.5\n0,1,0.5\n1,0,0.5\n1,1,0.4\n2,2,1\n2,2,0\n");
  std::string problems = ProblemsOf("edge_list { csv: '" + path + "' weighted: true }", 4);
  EXPECT_THAT(problems, HasSubstr(path + ":7: duplicate entry 2,2 (already on line 6)"));
  const std::string fixed =
      WriteFile("w_bad2.csv", "i,j,weight\n0,0,0.5\n0,1,0.5\n1,0,0.5\n1,1,0.4\n2,2,1\n");
  problems = ProblemsOf("edge_list { csv: '" + fixed + "' weighted: true }", 4);
  EXPECT_THAT(problems,
              HasSubstr("edge_list.csv: " + fixed +
                        ": row 1 of the mixing matrix sums to 0.9, not 1 (its entries are on "
                        "lines 4, 5)"));
  EXPECT_THAT(problems, HasSubstr(": row 3 of the mixing matrix has no entries (sums to 0)"));
  EXPECT_THAT(problems, ::testing::Not(HasSubstr("row 0")));
}

}  // namespace
}  // namespace fedsim
