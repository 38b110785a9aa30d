// Which compiled copy of the numeric kernels a translation unit belongs to.
//
// The layers and the layer-stack model (ml/layers*.cc, ml/layer_stack_model.cc)
// are compiled twice into one binary (see ml/CMakeLists.txt and ml/numeric.h):
//   - the native copy: namespace fedsim::native, the build's flags
//     (-march=native by default), Eigen as Eigen;
//   - the reproducible copy: namespace fedsim::repro, -march=x86-64-v3, fixed
//     GEMM blocking, its own copy of Eigen renamed to EigenRepro
//     (-DEigen=EigenRepro), fixed exp/log.
// Both are inline namespaces of fedsim, so code inside one copy (and the
// tests, which see the native copy) writes fedsim::Dense as before.
//
// The two copies must not share an out-of-line inline function or template
// instantiation: the linker keeps one of two such weak definitions, so one
// copy would run code compiled with the other's instruction set. Names
// declared inside the copy's namespace are distinct by construction; for
// standard containers the copy's own allocator type (Scratch<T>) makes the
// instantiations distinct. ml/check_variant_symbols.cmake checks the built
// objects for anything shared.
#ifndef FEDSIM_ML_VARIANT_NAMESPACE_H_
#define FEDSIM_ML_VARIANT_NAMESPACE_H_

#include <cstddef>
#include <memory>
#include <vector>

#ifndef FEDSIM_NUMERIC_NS
#define FEDSIM_NUMERIC_NS native
#endif
// 1 in the reproducible copy (set by ml/CMakeLists.txt with FEDSIM_NUMERIC_NS).
#ifndef FEDSIM_NUMERIC_REPRODUCIBLE
#define FEDSIM_NUMERIC_REPRODUCIBLE 0
#endif

namespace fedsim {
inline namespace FEDSIM_NUMERIC_NS {

// std::allocator under a name of this copy's own (see the file comment).
template <typename T>
struct ScratchAllocator : std::allocator<T> {
  using value_type = T;
  ScratchAllocator() noexcept = default;
  template <typename U>
  ScratchAllocator(const ScratchAllocator<U>&) noexcept {}  // NOLINT: rebinding
};
template <typename T, typename U>
bool operator==(const ScratchAllocator<T>&, const ScratchAllocator<U>&) noexcept {
  return true;
}

// A growable buffer of this copy (workspaces, activations, offsets).
template <typename T>
using Scratch = std::vector<T, ScratchAllocator<T>>;

}  // namespace FEDSIM_NUMERIC_NS
}  // namespace fedsim

#endif  // FEDSIM_ML_VARIANT_NAMESPACE_H_
