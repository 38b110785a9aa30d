// Communication graphs of decentralized federated learning (ALGORITHMS.md
// section 6; Shi et al., "Improving the Model Consistency of Decentralized
// Federated Learning", ICML 2023, arXiv 2302.04083): who gossips with whom.
//
// A Topology hands out one Graph per round. Static kinds (ring, torus,
// exponential, random d-regular, Erdos-Renyi, fully connected, an edge-list
// file) build their graph once and return it for every round; the
// time-varying kind draws a new one per round from (seed, round, client).
// algorithms/mixing.h turns a Graph into a mixing matrix W and
// algorithms/gossip.h applies it.
//
// Randomness comes only from util/rng.h streams, purposes
// "topology.random_regular" (a = attempt), "topology.erdos_renyi" (a = client)
// and "topology.time_varying" (a = round, b = client), so a graph is a pure
// function of (seed, config, num_clients) and never of thread order.
//
// Every static graph must be connected; NewTopology reports a disconnected
// one (how many components, their sizes and members) like any other bad
// input, into a ProblemList whose paths start at TopologyOptions::path:
//   algorithm.decentralized.topology.random_regular.degree: 12 must be below
//   num_clients 10 (a client has at most 9 other clients to link to)
//
// Thread safety: Graph and Topology are immutable after construction; every
// const method may be called from any thread.
#ifndef FEDSIM_ALGORITHMS_TOPOLOGY_H_
#define FEDSIM_ALGORITHMS_TOPOLOGY_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/scenario.pb.h"
#include "util/problems.h"

namespace fedsim {

// A directed graph over clients 0..N-1 in compressed-row form: row i lists the
// clients whose models client i reads in a gossip step (its neighbours), in
// ascending order, without i itself. An undirected graph is one whose rows are
// symmetric (j in row i exactly when i in row j); every kind but the
// time-varying one and a weighted edge list is undirected.
class Graph {
 public:
  // The graph with no clients.
  Graph() = default;

  // From per-client neighbour lists (list i = the neighbours of client i).
  // Sorts each list and drops repeated entries and self-loops, so generators
  // may emit a link twice (a torus side of length 2).
  // REQUIRES: every id < lists.size() < 2^32.
  static Graph FromLists(std::vector<std::vector<uint32_t>> lists);

  // The undirected graph over n clients with these edges (both directions of
  // each). Repeats and self-loops are dropped as in FromLists.
  // REQUIRES: every id < n.
  static Graph FromEdges(uint32_t n, std::span<const std::pair<uint32_t, uint32_t>> edges);

  uint32_t num_clients() const { return static_cast<uint32_t>(offsets_.size() - 1); }
  // The neighbours of client i, ascending. REQUIRES: i < num_clients().
  std::span<const uint32_t> neighbors(uint32_t i) const {
    return {targets_.data() + offsets_[i], targets_.data() + offsets_[i + 1]};
  }
  uint32_t degree(uint32_t i) const { return static_cast<uint32_t>(offsets_[i + 1] - offsets_[i]); }
  // Sum of the degrees: each undirected edge counts twice.
  uint64_t num_links() const { return targets_.size(); }
  bool HasLink(uint32_t i, uint32_t j) const;
  // True when every link has its reverse (an undirected graph).
  bool symmetric() const { return symmetric_; }
  // The undirected graph with a link wherever this one has one either way.
  Graph Symmetrized() const;

  bool operator==(const Graph& other) const {
    return offsets_ == other.offsets_ && targets_ == other.targets_;
  }

 private:
  std::vector<uint64_t> offsets_{0};
  std::vector<uint32_t> targets_;
  bool symmetric_ = true;
};

// Weakly connected components (links taken as undirected).
struct Components {
  // component[i] = index of client i's component; components are numbered by
  // their smallest client, so component 0 holds client 0.
  std::vector<uint32_t> component;
  // sizes[c] = clients in component c.
  std::vector<uint32_t> sizes;
  size_t count() const { return sizes.size(); }
};
Components ConnectedComponents(const Graph& graph);

// "2 components: {0, 1, 2, ... (97 clients)}, {97, 98}, ..." (at most 4
// components and 6 members each are named).
std::string DescribeComponents(const Components& components);

// A row of a custom mixing matrix read from a weighted edge-list file.
struct MatrixEntry {
  uint32_t col;
  double weight;
};
// Rows of a custom mixing matrix: row i = its nonzero entries, ascending
// column, the diagonal included when the file gives one.
using CustomMatrix = std::vector<std::vector<MatrixEntry>>;

// Where a run's communication graph comes from. Not copyable; shared by const
// reference or pointer.
class Topology {
 public:
  virtual ~Topology() = default;

  // "ring", "torus(10x10)", "random_regular(degree=10, seed=3)", ...
  virtual std::string Describe() const = 0;
  virtual uint32_t num_clients() const = 0;
  // True when GraphAt depends on the round (time_varying).
  virtual bool time_varying() const = 0;
  // The graph gossip uses in round `round` (0-based). Static kinds return the
  // same graph for every round; the time-varying kind builds it on each call
  // (O(N k)), so callers keep it for the round.
  virtual std::shared_ptr<const Graph> GraphAt(uint64_t round) const = 0;
  // A weighted edge list's matrix, whose rows each sum to 1 within 1e-9;
  // nullptr for every other kind (their W comes from a config::Mixing rule).
  virtual const CustomMatrix* custom_matrix() const { return nullptr; }
};

struct TopologyOptions {
  // The number of clients N. Default: 0 (an error: set it).
  uint32_t num_clients = 0;
  // The scenario seed; a kind's own nonzero `seed` field replaces it.
  // Default: 1 (the scenario's default seed).
  uint64_t seed = 1;
  // Field path of the Topology message, the prefix of every problem path.
  // Default: "topology".
  std::string path = "topology";
};

// Checks `config` and builds the topology. Every problem found (bad
// parameters, an unreadable or malformed edge-list file, a disconnected graph)
// is added to *problems with a path under options.path; the result is nullptr
// exactly when problems were added. A relative edge_list.csv path is opened as
// given: the config layer resolves it against the scenario file first.
// An unset `kind` is a problem ("choose one of ...").
std::unique_ptr<Topology> NewTopology(const config::Topology& config,
                                      const TopologyOptions& options, ProblemList* problems);

// The same, with the problems as one InvalidArgument ("path: message" lines).
absl::StatusOr<std::unique_ptr<Topology>> NewTopology(const config::Topology& config,
                                                      const TopologyOptions& options);

// The torus shape for n clients: (rows, cols) with rows the largest divisor of
// n that is <= sqrt(n). REQUIRES: n > 0.
std::pair<uint32_t, uint32_t> SquarestFactors(uint32_t n);

}  // namespace fedsim

#endif  // FEDSIM_ALGORITHMS_TOPOLOGY_H_
