// The edge-list file of config::Topology::EdgeList (internal to
// algorithms/topology.cc; separate only to keep that file short).
//
// Unweighted (`i,j`): one undirected edge per line. Weighted (`i,j,weight`):
// one entry W_ij of a custom mixing matrix per line; `i,i,w` is the diagonal,
// a zero weight adds nothing, and every row must sum to 1 within 1e-9. The
// graph of a weighted file links i to j when W_ij != 0 (i reads j's model).
//
// Errors name the file and line ("edges.csv:5: client 120 does not exist
// (num_clients is 100, so ids are 0..99)"); row-sum errors name the row, its
// sum and the lines of its entries.
//
// Thread safety: a pure function.
#ifndef FEDSIM_ALGORITHMS_TOPOLOGY_EDGE_LIST_H_
#define FEDSIM_ALGORITHMS_TOPOLOGY_EDGE_LIST_H_

#include <optional>
#include <string>

#include "algorithms/topology.h"
#include "proto/scenario.pb.h"
#include "util/problems.h"

namespace fedsim {

struct EdgeListContents {
  Graph graph;
  // Set for a weighted file.
  std::optional<CustomMatrix> matrix;
};

// Reads and checks config.csv() for n clients. Problems go to *problems under
// `path` (the EdgeList message's path, e.g. "topology.edge_list"); nullopt
// exactly when some were added. Connectivity is the caller's check.
std::optional<EdgeListContents> ReadEdgeList(const config::Topology::EdgeList& config, uint32_t n,
                                             const std::string& path, ProblemList* problems);

}  // namespace fedsim

#endif  // FEDSIM_ALGORITHMS_TOPOLOGY_EDGE_LIST_H_
