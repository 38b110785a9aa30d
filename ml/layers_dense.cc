// Layer's default BackwardInto and the fully connected layer.
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "ml/layer_util.h"
#include "ml/layers.h"
#include "ml/small_gemm.h"

namespace fedsim {
inline namespace FEDSIM_NUMERIC_NS {
namespace {

using layer_util::ActName;
using layer_util::AddBiasActivate;
using layer_util::ColumnSums;
using layer_util::ConstMatMap;
using layer_util::FillUniform;
using layer_util::MaskRelu;
using layer_util::MatMap;
using layer_util::RowMat;

// Dense backward tiles of W: about 64 KiB, so that a tile's gradient, its
// weights and momentum stay in L1/L2 between the GEMMs and the SGD update.
constexpr int kDenseTileFloats = 1 << 14;

// Rows of W per backward tile: about kDenseTileFloats, a multiple of the
// small-batch weight-gradient kernel's register block when there are enough
// rows (a ragged block in every tile would take the slow edge path).
int TileRows(int in, int out) {
  int rows = std::clamp(kDenseTileFloats / out, 1, in);
  constexpr int kBlock = small_gemm::kGradRows;
  if (rows < in && rows > kBlock) rows -= rows % kBlock;
  return rows;
}

}  // namespace

// ---------------------------------------------------------------- Layer

void Layer::BackwardInto(const float* params, const float* x, const float* y, float* dy, int n,
                         GradSink& sink, float* dx) {
  const size_t np = NumParams();
  if (grad_scratch_.size() < np) grad_scratch_.resize(np);
  Backward(params, x, y, dy, n, grad_scratch_.data(), dx);
  if (np > 0) sink.Consume(0, grad_scratch_.data(), np);
}

// ---------------------------------------------------------------- Dense

Dense::Dense(int in, int out, Activation act)
    : in_(in), out_(out), act_(act), tile_rows_(TileRows(in, out)) {}

std::string Dense::Name() const {
  return absl::StrCat("dense(", in_, "x", out_, ActName(act_), ")");
}

void Dense::Init(Rng& rng, std::span<float> params) const {
  const double bound =
      act_ == Activation::kRelu ? std::sqrt(6.0 / in_) : std::sqrt(6.0 / (in_ + out_));
  const size_t nw = static_cast<size_t>(in_) * out_;
  FillUniform(rng, bound, params.data(), nw);
  std::fill(params.begin() + nw, params.end(), 0.0f);
}

void Dense::Forward(const float* params, const float* x, int n, float* y) {
  if (small_gemm::Handles(n)) {
    small_gemm::XTimesW(x, static_cast<size_t>(in_), n, params, in_, out_, y);
  } else {
    ConstMatMap xm(x, n, in_);
    ConstMatMap w(params, in_, out_);
    MatMap ym(y, n, out_);
    ym.noalias() = xm * w;
  }
  AddBiasActivate(params + static_cast<size_t>(in_) * out_, n, out_, act_, y);
}

void Dense::Backward(const float* params, const float* x, const float* y, float* dy, int n,
                     float* dparams, float* dx) {
  BackwardTiled(params, x, y, dy, n, dparams, nullptr, dx);
}

void Dense::BackwardInto(const float* params, const float* x, const float* y, float* dy, int n,
                         GradSink& sink, float* dx) {
  const size_t need = static_cast<size_t>(std::max(tile_rows_, 1)) * out_;
  if (tile_.size() < need) tile_.resize(need);
  BackwardTiled(params, x, y, dy, n, nullptr, &sink, dx);
}

void Dense::InputGradientTile(const float* params, const float* dy, int n, int r0, int rows,
                              float* dx) {
  const float* w = params + static_cast<size_t>(r0) * out_;
  if (small_gemm::Handles(n)) {
    // Eigen would pack dy and W for each tile; at small batches that costs
    // as much as the product.
    const size_t need = static_cast<size_t>(out_ + tile_rows_) * small_gemm::kMaxBatch;
    if (dx_scratch_.size() < need) dx_scratch_.resize(need);
    small_gemm::DyTimesWt(dy, n, out_, w, rows, dx + r0, static_cast<size_t>(in_),
                          dx_scratch_.data());
    return;
  }
  using Block = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;
  ConstMatMap dym(dy, n, out_);
  ConstMatMap wm(w, rows, out_);
  Block dxm(dx + r0, n, rows, Eigen::OuterStride<>(in_));
  dxm.noalias() = dym * wm.transpose();
}

void Dense::BackwardTiled(const float* params, const float* x, const float* y, float* dy, int n,
                          float* dparams, GradSink* sink, float* dx) {
  using Stride = Eigen::OuterStride<>;
  using ConstBlock = Eigen::Map<const RowMat, 0, Stride>;
  const size_t nw = static_cast<size_t>(in_) * out_;
  const bool want_params = dparams != nullptr || sink != nullptr;
  if (act_ == Activation::kRelu) MaskRelu(y, static_cast<size_t>(n) * out_, dy);
  ConstMatMap dym(dy, n, out_);
  if (!want_params) {
    // Input gradient only (an adversarial attack's pass): the same products
    // as the tiled loop below, without the weight gradient.
    for (int r0 = 0; r0 < in_; r0 += tile_rows_) {
      InputGradientTile(params, dy, n, r0, std::min(tile_rows_, in_ - r0), dx);
    }
    return;
  }
  // At small batches, a sink's SGD step is applied as each register block
  // of the weight gradient is computed (small_gemm::XtTimesDyStep).
  const GradSink::InPlaceStep step =
      sink != nullptr && small_gemm::Handles(n) ? sink->in_place_step() : GradSink::InPlaceStep{};
  for (int r0 = 0; r0 < in_; r0 += tile_rows_) {
    const int rows = std::min(tile_rows_, in_ - r0);
    const size_t off = static_cast<size_t>(r0) * out_;
    // The input gradient of these rows first: the sink may then overwrite them.
    if (dx != nullptr) InputGradientTile(params, dy, n, r0, rows, dx);
    if (step.rule != nullptr) {
      small_gemm::XtTimesDyStep(x + r0, static_cast<size_t>(in_), n, rows, dy, out_, *step.rule,
                                step.element + off, step.params + off,
                                step.anchor != nullptr ? step.anchor + off : nullptr);
      continue;
    }
    float* g = sink != nullptr ? tile_.data() : dparams + off;
    if (small_gemm::Handles(n)) {
      small_gemm::XtTimesDy(x + r0, static_cast<size_t>(in_), n, rows, dy, out_, g);
    } else {
      ConstBlock xm(x + r0, n, rows, Stride(in_));
      MatMap dw(g, rows, out_);
      dw.noalias() = xm.transpose() * dym;
    }
    if (sink != nullptr) sink->Consume(off, g, static_cast<size_t>(rows) * out_);
  }
  float* db = sink != nullptr ? tile_.data() : dparams + nw;
  ColumnSums(dy, n, out_, /*accumulate=*/false, db);
  if (sink != nullptr) sink->Consume(nw, db, static_cast<size_t>(out_));
}

}  // namespace FEDSIM_NUMERIC_NS
}  // namespace fedsim
