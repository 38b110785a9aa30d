#include "algorithms/topology.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <unordered_set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "algorithms/topology_edge_list.h"
#include "util/rng.h"

namespace fedsim {

// ------------------------------------------------------------ Graph

Graph Graph::FromLists(std::vector<std::vector<uint32_t>> lists) {
  Graph g;
  g.offsets_.assign(1, 0);
  g.offsets_.reserve(lists.size() + 1);
  for (uint32_t i = 0; i < lists.size(); ++i) {
    std::vector<uint32_t>& list = lists[i];
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
    for (uint32_t j : list) {
      if (j != i) g.targets_.push_back(j);
    }
    g.offsets_.push_back(g.targets_.size());
  }
  g.symmetric_ = true;
  for (uint32_t i = 0; i < g.num_clients() && g.symmetric_; ++i) {
    for (uint32_t j : g.neighbors(i)) {
      if (!g.HasLink(j, i)) {
        g.symmetric_ = false;
        break;
      }
    }
  }
  return g;
}

Graph Graph::FromEdges(uint32_t n, std::span<const std::pair<uint32_t, uint32_t>> edges) {
  std::vector<std::vector<uint32_t>> lists(n);
  for (auto [i, j] : edges) {
    lists[i].push_back(j);
    lists[j].push_back(i);
  }
  return FromLists(std::move(lists));
}

bool Graph::HasLink(uint32_t i, uint32_t j) const {
  std::span<const uint32_t> row = neighbors(i);
  return std::binary_search(row.begin(), row.end(), j);
}

Graph Graph::Symmetrized() const {
  if (symmetric_) return *this;
  std::vector<std::vector<uint32_t>> lists(num_clients());
  for (uint32_t i = 0; i < num_clients(); ++i) {
    for (uint32_t j : neighbors(i)) {
      lists[i].push_back(j);
      lists[j].push_back(i);
    }
  }
  return FromLists(std::move(lists));
}

Components ConnectedComponents(const Graph& graph) {
  const uint32_t n = graph.num_clients();
  // Links are followed both ways, so a directed graph needs its reverse too.
  const Graph undirected = graph.Symmetrized();
  constexpr uint32_t kNone = UINT32_MAX;
  Components out;
  out.component.assign(n, kNone);
  std::vector<uint32_t> stack;
  for (uint32_t start = 0; start < n; ++start) {
    if (out.component[start] != kNone) continue;
    const uint32_t c = static_cast<uint32_t>(out.sizes.size());
    out.sizes.push_back(0);
    out.component[start] = c;
    stack.assign(1, start);
    while (!stack.empty()) {
      const uint32_t u = stack.back();
      stack.pop_back();
      ++out.sizes[c];
      for (uint32_t v : undirected.neighbors(u)) {
        if (out.component[v] == kNone) {
          out.component[v] = c;
          stack.push_back(v);
        }
      }
    }
  }
  return out;
}

std::string DescribeComponents(const Components& components) {
  constexpr size_t kMaxComponents = 4;
  constexpr size_t kMaxMembers = 6;
  std::vector<std::vector<uint32_t>> members(std::min(components.count(), kMaxComponents));
  for (uint32_t i = 0; i < components.component.size(); ++i) {
    const uint32_t c = components.component[i];
    if (c < members.size() && members[c].size() < kMaxMembers) members[c].push_back(i);
  }
  std::vector<std::string> parts;
  for (size_t c = 0; c < members.size(); ++c) {
    std::string part = absl::StrCat("{", absl::StrJoin(members[c], ", "));
    if (components.sizes[c] > members[c].size()) {
      absl::StrAppend(&part, ", ... (", components.sizes[c], " clients)");
    }
    parts.push_back(absl::StrCat(part, "}"));
  }
  if (components.count() > kMaxComponents) {
    parts.push_back(absl::StrCat("and ", components.count() - kMaxComponents, " more"));
  }
  return absl::StrCat(components.count(), " components: ", absl::StrJoin(parts, ", "));
}

std::pair<uint32_t, uint32_t> SquarestFactors(uint32_t n) {
  uint32_t rows = 1;
  for (uint64_t r = 1; r * r <= n; ++r) {
    if (n % r == 0) rows = static_cast<uint32_t>(r);
  }
  return {rows, n / rows};
}

namespace {

// ------------------------------------------------------------ generators

Graph Ring(uint32_t n) {
  std::vector<std::pair<uint32_t, uint32_t>> edges;
  for (uint32_t i = 0; i < n; ++i) edges.push_back({i, (i + 1) % n});
  return Graph::FromEdges(n, edges);
}

Graph Torus(uint32_t rows, uint32_t cols, bool wrap) {
  std::vector<std::pair<uint32_t, uint32_t>> edges;
  for (uint32_t r = 0; r < rows; ++r) {
    for (uint32_t c = 0; c < cols; ++c) {
      const uint32_t i = r * cols + c;
      if (c + 1 < cols || wrap) edges.push_back({i, r * cols + (c + 1) % cols});
      if (r + 1 < rows || wrap) edges.push_back({i, ((r + 1) % rows) * cols + c});
    }
  }
  return Graph::FromEdges(rows * cols, edges);
}

Graph Exponential(uint32_t n) {
  std::vector<std::pair<uint32_t, uint32_t>> edges;
  for (uint32_t i = 0; i < n; ++i) {
    for (uint64_t step = 1; step < n; step *= 2) {
      edges.push_back({i, static_cast<uint32_t>((i + step) % n)});
    }
  }
  return Graph::FromEdges(n, edges);
}

Graph Full(uint32_t n) {
  std::vector<std::vector<uint32_t>> lists(n);
  for (uint32_t i = 0; i < n; ++i) {
    lists[i].reserve(n - 1);
    for (uint32_t j = 0; j < n; ++j) lists[i].push_back(j);
  }
  return Graph::FromLists(std::move(lists));
}

uint64_t EdgeKey(uint32_t u, uint32_t v) {
  return (static_cast<uint64_t>(std::min(u, v)) << 32) | std::max(u, v);
}

// One attempt of the pairing algorithm of Steger and Wormald (1999), in the
// form networkx's random_regular_graph uses: pair the d N stubs at random,
// keep the pairs that make new simple edges, and pair the leftover stubs again
// until none are left or no two leftover clients can still be linked. The
// plain configuration model (reject the whole draw on any loop or repeat)
// succeeds with probability about exp(-(d^2 - 1) / 4): 2e-11 for d = 10.
std::optional<std::vector<std::pair<uint32_t, uint32_t>>> TryRandomRegular(uint32_t n, uint32_t d,
                                                                           Rng& rng) {
  // Leftover passes; each pairs at least one more stub in practice, so this is
  // only a guard against a pathological run.
  constexpr int kMaxPasses = 10000;
  std::vector<uint32_t> stubs;
  stubs.reserve(static_cast<size_t>(n) * d);
  for (uint32_t i = 0; i < n; ++i) stubs.insert(stubs.end(), d, i);
  std::unordered_set<uint64_t> linked;
  std::vector<std::pair<uint32_t, uint32_t>> edges;
  std::vector<uint32_t> leftover(n, 0);
  std::vector<uint32_t> touched;
  for (int pass = 0; !stubs.empty(); ++pass) {
    if (pass == kMaxPasses) return std::nullopt;
    rng.Shuffle(stubs);
    touched.clear();
    for (size_t s = 0; s + 1 < stubs.size(); s += 2) {
      const uint32_t u = stubs[s], v = stubs[s + 1];
      if (u != v && linked.insert(EdgeKey(u, v)).second) {
        edges.push_back({std::min(u, v), std::max(u, v)});
        continue;
      }
      for (uint32_t w : {u, v}) {
        if (leftover[w]++ == 0) touched.push_back(w);
      }
    }
    std::sort(touched.begin(), touched.end());
    bool can_link = touched.empty();
    for (size_t a = 0; a < touched.size() && !can_link; ++a) {
      for (size_t b = a + 1; b < touched.size() && !can_link; ++b) {
        can_link = !linked.contains(EdgeKey(touched[a], touched[b]));
      }
    }
    if (!can_link) return std::nullopt;
    stubs.clear();
    for (uint32_t w : touched) {
      stubs.insert(stubs.end(), leftover[w], w);
      leftover[w] = 0;
    }
  }
  return edges;
}

// Per client a neighbour row, all drawn for round `round`.
Graph TimeVaryingGraph(uint32_t n, uint32_t k, uint64_t seed, uint64_t round) {
  std::vector<std::vector<uint32_t>> lists(n);
  for (uint32_t i = 0; i < n; ++i) {
    Rng rng(seed, "topology.time_varying", round, i);
    // k distinct clients among the n - 1 others: draw from [0, n - 1) and
    // skip over i.
    for (uint64_t v : rng.SampleWithoutReplacement(n - 1, k)) {
      lists[i].push_back(static_cast<uint32_t>(v >= i ? v + 1 : v));
    }
  }
  return Graph::FromLists(std::move(lists));
}

// ------------------------------------------------------------ topologies

class StaticTopology final : public Topology {
 public:
  StaticTopology(std::string description, Graph graph, std::optional<CustomMatrix> matrix)
      : description_(std::move(description)),
        graph_(std::make_shared<const Graph>(std::move(graph))),
        matrix_(std::move(matrix)) {}

  std::string Describe() const override { return description_; }
  uint32_t num_clients() const override { return graph_->num_clients(); }
  bool time_varying() const override { return false; }
  std::shared_ptr<const Graph> GraphAt(uint64_t) const override { return graph_; }
  const CustomMatrix* custom_matrix() const override {
    return matrix_.has_value() ? &*matrix_ : nullptr;
  }

 private:
  std::string description_;
  std::shared_ptr<const Graph> graph_;
  std::optional<CustomMatrix> matrix_;
};

class TimeVaryingTopology final : public Topology {
 public:
  TimeVaryingTopology(uint32_t n, uint32_t k, uint64_t seed) : n_(n), k_(k), seed_(seed) {}

  std::string Describe() const override {
    return absl::StrCat("time_varying(k=", k_, ", seed=", seed_, ")");
  }
  uint32_t num_clients() const override { return n_; }
  bool time_varying() const override { return true; }
  std::shared_ptr<const Graph> GraphAt(uint64_t round) const override {
    return std::make_shared<const Graph>(TimeVaryingGraph(n_, k_, seed_, round));
  }

 private:
  uint32_t n_;
  uint32_t k_;
  uint64_t seed_;
};

// Adds a problem when `graph` is not connected; true when it is.
bool CheckConnected(const Graph& graph, const std::string& path, absl::string_view what,
                    absl::string_view advice, ProblemList* problems) {
  const Components components = ConnectedComponents(graph);
  if (components.count() <= 1) return true;
  problems->Add(path, absl::StrCat(what, " is disconnected: ", DescribeComponents(components),
                                   "; gossip cannot mix models across components", advice));
  return false;
}

uint64_t SeedOf(uint64_t own, const TopologyOptions& options) {
  return own != 0 ? own : options.seed;
}

std::unique_ptr<Topology> Build(const config::Topology& config, const TopologyOptions& options,
                                ProblemList* problems) {
  const uint32_t n = options.num_clients;
  const std::string& path = options.path;
  auto made = [](std::string description, Graph graph) -> std::unique_ptr<Topology> {
    return std::make_unique<StaticTopology>(std::move(description), std::move(graph), std::nullopt);
  };
  switch (config.kind_case()) {
    case config::Topology::kRing:
      return made("ring", Ring(n));
    case config::Topology::kExponential:
      return made("exponential", Exponential(n));
    case config::Topology::kFull:
      return made("full", Full(n));
    case config::Topology::kTorus: {
      const config::Topology::Torus& t = config.torus();
      const std::string p = path + ".torus";
      uint32_t rows = t.rows(), cols = t.cols();
      if (rows == 0 && cols == 0) {
        std::tie(rows, cols) = SquarestFactors(n);
      } else if (rows != 0 && cols != 0) {
        if (static_cast<uint64_t>(rows) * cols != n) {
          problems->Add(p, absl::StrCat("rows ", rows, " x cols ", cols, " = ",
                                        static_cast<uint64_t>(rows) * cols, ", but num_clients is ",
                                        n, "; set rows and cols whose product is ", n,
                                        " (or leave both 0 to choose)"));
          return nullptr;
        }
      } else {
        const bool have_rows = rows != 0;
        const uint32_t side = have_rows ? rows : cols;
        if (n % side != 0) {
          problems->Add(absl::StrCat(p, have_rows ? ".rows" : ".cols"),
                        absl::StrCat(side, " does not divide num_clients ", n,
                                     "; pick a divisor of ", n, " (or 0 to choose)"));
          return nullptr;
        }
        (have_rows ? cols : rows) = n / side;
      }
      Graph g = Torus(rows, cols, t.wrap());
      return made(absl::StrCat(t.wrap() ? "torus(" : "grid(", rows, "x", cols, ")"), std::move(g));
    }
    case config::Topology::kRandomRegular: {
      const uint32_t d = config.random_regular().degree();
      const uint64_t seed = SeedOf(config.random_regular().seed(), options);
      const std::string p = path + ".random_regular.degree";
      if (n == 1 && d == 0) return made("random_regular(degree=0)", Graph::FromLists({{}}));
      if (d == 0) {
        problems->Add(p, "must be at least 1");
      } else if (d >= n) {
        problems->Add(
            p, absl::StrCat(d, " must be below num_clients ", n, " (a client has at most ", n - 1,
                            " other clients to link to)"));
      } else if ((static_cast<uint64_t>(d) * n) % 2 != 0) {
        problems->Add(p, absl::StrCat("degree x num_clients = ", d, " x ", n,
                                      " is odd, but every edge has two ends; make one even"));
      } else if (d == 1 && n > 2) {
        problems->Add(p, absl::StrCat("1 pairs the clients off into ", n / 2,
                                      " separate edges, which is never connected; use at "
                                      "least 2"));
      }
      if (!problems->empty()) return nullptr;
      // Pairing attempts can fail (a dead end) or give a disconnected graph
      // (likely only for d = 2: a union of cycles); draw again. Each attempt
      // has its own stream, so the result depends on the seed alone.
      constexpr uint64_t kMaxAttempts = 1000;
      for (uint64_t attempt = 0; attempt < kMaxAttempts; ++attempt) {
        Rng rng(seed, "topology.random_regular", attempt);
        auto edges = TryRandomRegular(n, d, rng);
        if (!edges.has_value()) continue;
        Graph g = Graph::FromEdges(n, *edges);
        if (ConnectedComponents(g).count() != 1) continue;
        return made(absl::StrCat("random_regular(degree=", d, ", seed=", seed, ")"), std::move(g));
      }
      problems->Add(p, absl::StrCat("no connected random ", d, "-regular graph on ", n,
                                    " clients in ", kMaxAttempts, " draws; raise the degree"));
      return nullptr;
    }
    case config::Topology::kErdosRenyi: {
      const double prob = config.erdos_renyi().p();
      const uint64_t seed = SeedOf(config.erdos_renyi().seed(), options);
      if (!(prob > 0 && prob <= 1)) {
        problems->Add(path + ".erdos_renyi.p", absl::StrCat("must be in (0, 1], got ", prob));
        return nullptr;
      }
      // One stream per client for its links to higher ids: O(N^2) draws, no
      // floating-point skipping whose rounding could vary between libms.
      std::vector<std::pair<uint32_t, uint32_t>> edges;
      for (uint32_t i = 0; i < n; ++i) {
        Rng rng(seed, "topology.erdos_renyi", i);
        for (uint32_t j = i + 1; j < n; ++j) {
          if (rng.Bernoulli(prob)) edges.push_back({i, j});
        }
      }
      Graph g = Graph::FromEdges(n, edges);
      const double threshold = n > 1 ? std::log(static_cast<double>(n)) / n : 0;
      if (!CheckConnected(g, path + ".erdos_renyi.p",
                          absl::StrCat("the graph drawn with p = ", prob, " and seed ", seed),
                          absl::StrCat("; raise p (G(N, p) is connected with high probability "
                                       "above ln(N)/N = ",
                                       threshold, ") or change the seed"),
                          problems)) {
        return nullptr;
      }
      return made(absl::StrCat("erdos_renyi(p=", prob, ", seed=", seed, ")"), std::move(g));
    }
    case config::Topology::kTimeVarying: {
      const uint32_t k = config.time_varying().k();
      const uint64_t seed = SeedOf(config.time_varying().seed(), options);
      const std::string p = path + ".time_varying.k";
      if (k == 0) {
        problems->Add(p, "must be at least 1");
        return nullptr;
      }
      if (k >= n) {
        problems->Add(p, absl::StrCat(k, " must be below num_clients ", n,
                                      " (a client can pick at most ", n - 1, " other clients)"));
        return nullptr;
      }
      return std::make_unique<TimeVaryingTopology>(n, k, seed);
    }
    case config::Topology::kEdgeList: {
      const std::string p = path + ".edge_list";
      std::optional<EdgeListContents> contents = ReadEdgeList(config.edge_list(), n, p, problems);
      if (!contents.has_value()) return nullptr;
      if (!CheckConnected(contents->graph, p + ".csv",
                          absl::StrCat("the graph of ", config.edge_list().csv()),
                          "; add edges between them", problems)) {
        return nullptr;
      }
      return std::make_unique<StaticTopology>(
          absl::StrCat(contents->matrix.has_value() ? "weighted_edge_list(" : "edge_list(",
                       config.edge_list().csv(), ")"),
          std::move(contents->graph), std::move(contents->matrix));
    }
    case config::Topology::KIND_NOT_SET:
      break;
  }
  problems->Add(path,
                "choose a kind: ring, torus, exponential, random_regular, erdos_renyi, "
                "full, time_varying or edge_list");
  return nullptr;
}

}  // namespace

std::unique_ptr<Topology> NewTopology(const config::Topology& config,
                                      const TopologyOptions& options, ProblemList* problems) {
  if (options.num_clients == 0) {
    problems->Add(options.path, "needs at least one client (num_clients is 0)");
    return nullptr;
  }
  // Build reports into a fresh list so that "problems were added" does not
  // depend on what the caller's list already held.
  ProblemList found;
  std::unique_ptr<Topology> topology = Build(config, options, &found);
  for (const ProblemList::Problem& p : found.problems()) problems->Add(p.path, p.message);
  if (!found.empty()) return nullptr;
  return topology;
}

absl::StatusOr<std::unique_ptr<Topology>> NewTopology(const config::Topology& config,
                                                      const TopologyOptions& options) {
  ProblemList problems;
  std::unique_ptr<Topology> topology = NewTopology(config, options, &problems);
  if (topology == nullptr) return problems.ToStatus();
  return topology;
}

}  // namespace fedsim
