// Reusable layers over slices of one flat float32 parameter vector, and the
// softmax cross-entropy loss. A model (ml/model.h) is a list of these.
//
// Activations are batches of rows: n x dim floats, row-major. Image tensors
// are stored channels-last (HWC) inside a model, so that a convolution is one
// row-major GEMM (im2col rows = pixels, columns = (ky, kx, c)) whose result is
// already the next layer's input. The first layer of a model may read its
// input channels-first (CHW, the datasets' layout) instead: see Conv2d.
//
// Thread safety: a layer owns scratch workspaces reused across calls (no heap
// allocation once they have grown to the largest batch), so one instance
// serves one thread at a time. Every call is deterministic.
//
// This header is compiled into both copies of the numeric kernels (native and
// reproducible, ml/variant_namespace.h); the classes live in that copy's
// inline namespace. Implementations: layers_dense.cc (Layer, Dense),
// layers_conv.cc (Conv2d), layers_pool.cc (MaxPool2), layers_loss.cc (Relu,
// SoftmaxCrossEntropy).
#ifndef FEDSIM_ML_LAYERS_H_
#define FEDSIM_ML_LAYERS_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "ml/sgd.h"
#include "ml/variant_namespace.h"
#include "util/rng.h"

namespace fedsim {
inline namespace FEDSIM_NUMERIC_NS {

// Shape of one example flowing between layers: channels x height x width
// (vectors are dim x 1 x 1).
struct TensorShape {
  int channels = 1;
  int height = 1;
  int width = 1;
  int dim() const { return channels * height * width; }
};

// An activation fused into the end of a layer (saves one pass over memory).
enum class Activation { kNone, kRelu };

// Receives a layer's parameter gradient piece by piece (Layer::BackwardInto).
class GradSink {
 public:
  virtual ~GradSink() = default;
  // g holds d loss / d params[offset, offset + count) of the layer (offsets
  // relative to the layer's own params). Once a piece has been passed, the
  // layer reads neither those params nor g again during this call, so the
  // sink may update the params in place (a fused SGD step).
  virtual void Consume(size_t offset, const float* g, size_t count) = 0;

  // A sink whose Consume is an SGD step on the layer's params may say so:
  // the rule, and where the layer's element 0 is (its index in the whole
  // vector, for the velocity; the params; the anchor, or null). A layer may
  // then apply the rule itself to a piece, as it computes it, instead of
  // passing it to Consume: bit-identical, each parameter still exactly once.
  struct InPlaceStep {
    const SgdElementRule* rule = nullptr;  // null: none (the default)
    size_t element = 0;
    float* params = nullptr;
    const float* anchor = nullptr;
  };
  virtual InPlaceStep in_place_step() const { return {}; }
};

class Layer {
 public:
  virtual ~Layer() = default;

  // "dense(784x200,relu)" and the like.
  virtual std::string Name() const = 0;
  virtual size_t NumParams() const = 0;
  virtual TensorShape input_shape() const = 0;
  virtual TensorShape output_shape() const = 0;
  int input_dim() const { return input_shape().dim(); }
  int output_dim() const { return output_shape().dim(); }

  // Fills params: Kaiming-uniform (bound sqrt(6 / fan_in)) when the layer is
  // followed by a ReLU, Glorot-uniform (bound sqrt(6 / (fan_in + fan_out)))
  // otherwise; biases zero.
  // REQUIRES: params.size() == NumParams().
  virtual void Init(Rng& rng, std::span<float> params) const {
    (void)rng;
    (void)params;
  }

  // y = f(params, x) for n examples.
  // REQUIRES: params points at NumParams() floats, x at n * input_dim(),
  //           y at n * output_dim(); n > 0; x and y do not overlap.
  virtual void Forward(const float* params, const float* x, int n, float* y) = 0;

  // Given x and y of the last Forward with the same params and n, and
  // dy = d loss / d y: overwrites dparams (NumParams() floats) with
  // d loss / d params and, if dx is not null, dx (n * input_dim() floats)
  // with d loss / d x. dparams may be null when dx is not: then only dx is
  // computed (bit-identical), skipping the parameter gradient's work. dy is
  // scratch: the layer may overwrite it.
  // REQUIRES: as Forward; dparams, dx and dy do not overlap x or y.
  virtual void Backward(const float* params, const float* x, const float* y, float* dy, int n,
                        float* dparams, float* dx) = 0;

  // As Backward, but hands d loss / d params to `sink` in pieces (each
  // parameter exactly once, bit-identical to what Backward writes) instead of
  // writing dparams, so that a caller can update each piece while it is in
  // cache. The default runs Backward into a scratch buffer and passes it
  // whole. dx is complete on return.
  virtual void BackwardInto(const float* params, const float* x, const float* y, float* dy, int n,
                            GradSink& sink, float* dx);

 private:
  Scratch<float> grad_scratch_;  // the default BackwardInto's dparams
};

// Fully connected: y = act(x W + b). W is in x out row-major (params[0, in*out)),
// then b (out floats).
class Dense final : public Layer {
 public:
  // REQUIRES: in > 0, out > 0.
  Dense(int in, int out, Activation act);

  std::string Name() const override;
  size_t NumParams() const override { return static_cast<size_t>(in_) * out_ + out_; }
  TensorShape input_shape() const override { return {in_, 1, 1}; }
  TensorShape output_shape() const override { return {out_, 1, 1}; }
  void Init(Rng& rng, std::span<float> params) const override;
  void Forward(const float* params, const float* x, int n, float* y) override;
  void Backward(const float* params, const float* x, const float* y, float* dy, int n,
                float* dparams, float* dx) override;
  // Tiled over rows of W: each tile's input gradient and weight gradient are
  // computed and the tile is passed on while it is in cache.
  void BackwardInto(const float* params, const float* x, const float* y, float* dy, int n,
                    GradSink& sink, float* dx) override;

 private:
  // Backward and BackwardInto share this code (and so their arithmetic):
  // with sink == nullptr the gradient goes to dparams.
  void BackwardTiled(const float* params, const float* x, const float* y, float* dy, int n,
                     float* dparams, GradSink* sink, float* dx);
  // dx's columns [r0, r0 + rows) (rows of W): dy * W[r0 : r0 + rows]^T.
  void InputGradientTile(const float* params, const float* dy, int n, int r0, int rows, float* dx);

  int in_;
  int out_;
  Activation act_;
  int tile_rows_;              // rows of W per backward tile
  Scratch<float> tile_;        // one tile's gradient (BackwardInto)
  Scratch<float> dx_scratch_;  // small batches' input gradient (small_gemm::DyTimesWt)
};

// Elementwise max(x, 0). No parameters. (Dense and Conv2d can fuse it.)
class Relu final : public Layer {
 public:
  explicit Relu(TensorShape shape) : shape_(shape) {}

  std::string Name() const override { return "relu"; }
  size_t NumParams() const override { return 0; }
  TensorShape input_shape() const override { return shape_; }
  TensorShape output_shape() const override { return shape_; }
  void Forward(const float* params, const float* x, int n, float* y) override;
  void Backward(const float* params, const float* x, const float* y, float* dy, int n,
                float* dparams, float* dx) override;

 private:
  TensorShape shape_;
};

// k x k convolution, stride 1, "same" zero padding ((k-1)/2 before, k/2
// after), by im2col + GEMM over chunks of the batch sized to stay in cache.
// Weights W are (k*k*in_channels) x out_channels row-major, rows ordered
// (ky, kx, c), then the bias (out_channels). Output is HWC.
class Conv2d final : public Layer {
 public:
  // input_chw: the input is channels-first (the datasets' layout) rather than
  // channels-last. The two are the same when in.channels == 1.
  // REQUIRES: every dimension > 0; kernel <= in.height and <= in.width.
  Conv2d(TensorShape in, int out_channels, int kernel, Activation act, bool input_chw);

  std::string Name() const override;
  size_t NumParams() const override { return static_cast<size_t>(patch_) * out_c_ + out_c_; }
  TensorShape input_shape() const override { return in_; }
  TensorShape output_shape() const override { return {out_c_, in_.height, in_.width}; }
  void Init(Rng& rng, std::span<float> params) const override;
  void Forward(const float* params, const float* x, int n, float* y) override;
  void Backward(const float* params, const float* x, const float* y, float* dy, int n,
                float* dparams, float* dx) override;

 private:
  // Writes the im2col rows of examples [0, count) of x (count * H * W rows of
  // patch_ floats) into col_.
  void Im2Col(const float* x, int count);
  // dx += the col2im scatter of dcol_ for `count` examples.
  void Col2Im(int count, float* dx) const;

  TensorShape in_;
  int out_c_;
  int k_;
  int pad_;
  Activation act_;
  int patch_;   // k * k * in channels
  int pixels_;  // H * W
  int chunk_;   // examples per im2col chunk
  // Strides of one input element (c, y, x), in floats.
  int cs_, ys_, xs_;
  Scratch<float> col_;
  Scratch<float> dcol_;
  // The weight gradient, column-major (patch_ x out channels): Eigen's
  // AVX-512 kernel is 48 rows by 4 columns, so the output channels (32, 64)
  // go on the N side, where they split evenly, and the long patch_ on M.
  Scratch<float> dwtmp_;
  // Direct convolution (AVX-512 builds of the native copy only): one
  // example's input (or dy) with zero-padded rows, and the flipped,
  // transposed kernel for dx.
  Scratch<float> pad_buf_;
  Scratch<float> wflip_;
};

// 2 x 2 max pooling, stride 2, on HWC input (odd trailing rows/columns are
// dropped). Ties go to the first maximum in (dy, dx) order.
class MaxPool2 final : public Layer {
 public:
  // REQUIRES: in.height >= 2, in.width >= 2.
  explicit MaxPool2(TensorShape in) : in_(in) {}

  std::string Name() const override { return "maxpool2"; }
  size_t NumParams() const override { return 0; }
  TensorShape input_shape() const override { return in_; }
  TensorShape output_shape() const override {
    return {in_.channels, in_.height / 2, in_.width / 2};
  }
  void Forward(const float* params, const float* x, int n, float* y) override;
  void Backward(const float* params, const float* x, const float* y, float* dy, int n,
                float* dparams, float* dx) override;

 private:
  TensorShape in_;
  Scratch<uint8_t> argmax_;  // 0..3 per output element, from Forward
};

// Softmax cross-entropy over n rows of k logits with integer labels.
// Returns the summed loss (in double); adds the number of rows whose argmax
// equals the label to *correct if not null; if dlogits is not null, writes
// d (mean loss) / d logits = (softmax - onehot) / n.
// REQUIRES: labels in [0, k); n > 0, k > 0.
double SoftmaxCrossEntropy(const float* logits, const int32_t* labels, int n, int k, float* dlogits,
                           int64_t* correct);

}  // namespace FEDSIM_NUMERIC_NS
}  // namespace fedsim

#endif  // FEDSIM_ML_LAYERS_H_
