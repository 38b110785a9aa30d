#include "ml/layers.h"

#include <cmath>
#include <memory>
#include <numeric>
#include <vector>

#include "gtest/gtest.h"
#include "ml/grad_check_test_util.h"
#include "util/rng.h"

namespace fedsim {
namespace {

using testing::CheckGradient;
using testing::GradCheckOptions;

std::vector<float> RandomVector(size_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  Rng rng(seed, "test_data");
  std::vector<float> v(n);
  for (float& f : v) f = static_cast<float>(rng.Uniform(lo, hi));
  return v;
}

// Checks a layer's gradients wrt params and input for L(y) = sum_i r_i y_i.
void CheckLayer(Layer& layer, int n, uint64_t seed, GradCheckOptions opts = {}) {
  SCOPED_TRACE(layer.Name());
  std::vector<float> params(layer.NumParams());
  Rng init(seed, "init");
  layer.Init(init, params);
  // Non-zero biases so that they matter for the ReLU pattern.
  {
    std::vector<float> noise = RandomVector(params.size(), seed + 1, -0.2, 0.2);
    for (size_t i = 0; i < params.size(); ++i) params[i] += noise[i];
  }
  std::vector<float> x = RandomVector(static_cast<size_t>(n) * layer.input_dim(), seed + 2);
  const size_t ny = static_cast<size_t>(n) * layer.output_dim();
  const std::vector<float> r = RandomVector(ny, seed + 3);
  std::vector<float> y(ny);
  auto loss = [&]() {
    layer.Forward(params.data(), x.data(), n, y.data());
    double s = 0.0;
    for (size_t i = 0; i < ny; ++i) s += static_cast<double>(r[i]) * y[i];
    return s;
  };
  loss();
  std::vector<float> dy = r;
  std::vector<float> dparams(params.size(), 123.0f);  // must be overwritten
  std::vector<float> dx(x.size(), 123.0f);
  layer.Backward(params.data(), x.data(), y.data(), dy.data(), n, dparams.data(), dx.data());
  if (!params.empty()) CheckGradient("d/dparams", params, dparams, loss, opts);
  CheckGradient("d/dx", x, dx, loss, opts);

  // Backward without dx gives the same parameter gradient.
  loss();
  dy = r;
  std::vector<float> dparams2(params.size(), -7.0f);
  layer.Backward(params.data(), x.data(), y.data(), dy.data(), n, dparams2.data(), nullptr);
  EXPECT_EQ(dparams, dparams2);

  // The input gradient alone (dparams null, an attack's pass): the same dx.
  loss();
  dy = r;
  std::vector<float> dx2(x.size(), -7.0f);
  layer.Backward(params.data(), x.data(), y.data(), dy.data(), n, nullptr, dx2.data());
  EXPECT_EQ(dx, dx2);
}

TEST(DenseTest, Shapes) {
  Dense d(784, 200, Activation::kRelu);
  EXPECT_EQ(d.NumParams(), 784u * 200 + 200);
  EXPECT_EQ(d.input_dim(), 784);
  EXPECT_EQ(d.output_dim(), 200);
  EXPECT_EQ(d.Name(), "dense(784x200,relu)");
}

TEST(DenseTest, ForwardMatchesHandComputed) {
  // x = [1 2], W = [[1 2 3], [4 5 6]], b = [0.5 -20 0]: xW + b = [9.5 -8 15].
  Dense lin(2, 3, Activation::kNone);
  Dense relu(2, 3, Activation::kRelu);
  const std::vector<float> params = {1, 2, 3, 4, 5, 6, 0.5f, -20, 0};
  const float x[] = {1, 2};
  float y[3];
  lin.Forward(params.data(), x, 1, y);
  EXPECT_FLOAT_EQ(y[0], 9.5f);
  EXPECT_FLOAT_EQ(y[1], -8.0f);
  EXPECT_FLOAT_EQ(y[2], 15.0f);
  relu.Forward(params.data(), x, 1, y);
  EXPECT_FLOAT_EQ(y[1], 0.0f);
  EXPECT_FLOAT_EQ(y[2], 15.0f);
}

TEST(DenseTest, GradientsLinear) {
  Dense d(7, 5, Activation::kNone);
  CheckLayer(d, 3, 1);
}

TEST(DenseTest, GradientsRelu) {
  Dense d(7, 5, Activation::kRelu);
  CheckLayer(d, 4, 2);
}

TEST(DenseTest, InitBoundsAndZeroBias) {
  Dense relu(50, 20, Activation::kRelu);
  Dense lin(50, 20, Activation::kNone);
  for (Dense* d : {&relu, &lin}) {
    std::vector<float> p(d->NumParams());
    Rng rng(5, "init");
    d->Init(rng, p);
    const double bound =
        d == &relu ? std::sqrt(6.0 / 50) : std::sqrt(6.0 / 70);
    double max_abs = 0;
    for (size_t i = 0; i < 1000; ++i) max_abs = std::max<double>(max_abs, std::abs(p[i]));
    EXPECT_LE(max_abs, bound);
    EXPECT_GT(max_abs, 0.9 * bound);
    for (size_t i = 1000; i < p.size(); ++i) EXPECT_EQ(p[i], 0.0f);
  }
}

TEST(ReluTest, ForwardAndGradient) {
  Relu r(TensorShape{3, 2, 2});
  const float x[] = {-1, 2, 0.5f, -0.25f};
  float y[4];
  Relu small(TensorShape{4, 1, 1});
  small.Forward(nullptr, x, 1, y);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], 2.0f);
  EXPECT_EQ(y[2], 0.5f);
  EXPECT_EQ(y[3], 0.0f);
  CheckLayer(r, 3, 3);
}

// Direct convolution in double, HWC or CHW input, HWC output.
std::vector<double> NaiveConv(const std::vector<float>& params, const std::vector<float>& x,
                              int n, TensorShape in, int out_c, int k, bool chw, bool relu) {
  const int pad = (k - 1) / 2, h = in.height, w = in.width, c = in.channels;
  std::vector<double> y(static_cast<size_t>(n) * h * w * out_c);
  const float* b = params.data() + static_cast<size_t>(k) * k * c * out_c;
  for (int s = 0; s < n; ++s)
    for (int oy = 0; oy < h; ++oy)
      for (int ox = 0; ox < w; ++ox)
        for (int o = 0; o < out_c; ++o) {
          double acc = b[o];
          for (int ky = 0; ky < k; ++ky)
            for (int kx = 0; kx < k; ++kx)
              for (int ch = 0; ch < c; ++ch) {
                const int iy = oy + ky - pad, ix = ox + kx - pad;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                const size_t xi = chw ? (static_cast<size_t>(ch) * h + iy) * w + ix
                                      : (static_cast<size_t>(iy) * w + ix) * c + ch;
                acc += static_cast<double>(x[s * in.dim() + xi]) *
                       params[((ky * k + kx) * c + ch) * out_c + o];
              }
          if (relu) acc = std::max(acc, 0.0);
          y[((static_cast<size_t>(s) * h + oy) * w + ox) * out_c + o] = acc;
        }
  return y;
}

struct ConvCase {
  TensorShape in;
  int out_c;
  int k;
  bool chw;
  bool relu;
  int n;
};

class Conv2dTest : public ::testing::TestWithParam<ConvCase> {};

TEST_P(Conv2dTest, ForwardMatchesDirectConvolution) {
  const ConvCase& c = GetParam();
  Conv2d conv(c.in, c.out_c, c.k, c.relu ? Activation::kRelu : Activation::kNone, c.chw);
  std::vector<float> params = RandomVector(conv.NumParams(), 11);
  std::vector<float> x = RandomVector(static_cast<size_t>(c.n) * conv.input_dim(), 12);
  std::vector<float> y(static_cast<size_t>(c.n) * conv.output_dim());
  conv.Forward(params.data(), x.data(), c.n, y.data());
  const std::vector<double> want =
      NaiveConv(params, x, c.n, c.in, c.out_c, c.k, c.chw, c.relu);
  ASSERT_EQ(y.size(), want.size());
  for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], want[i], 1e-4) << i;
}

// A linear convolution is linear in params and in x, so no kinks: a large
// step keeps float rounding out of the finite differences.
TEST_P(Conv2dTest, GradientsLinear) {
  const ConvCase& c = GetParam();
  Conv2d conv(c.in, c.out_c, c.k, Activation::kNone, c.chw);
  GradCheckOptions opts;
  opts.max_coords = 300;
  opts.eps = 1e-2;
  opts.kink = 1e30;
  CheckLayer(conv, c.n, 21, opts);
}

// The fused ReLU's backward is the linear backward of dy * (y > 0). (A
// finite-difference check would cross too many ReLU kinks: one weight feeds
// every pixel of its output channel.)
TEST_P(Conv2dTest, FusedReluBackwardIsMaskedLinearBackward) {
  const ConvCase& c = GetParam();
  Conv2d relu(c.in, c.out_c, c.k, Activation::kRelu, c.chw);
  Conv2d lin(c.in, c.out_c, c.k, Activation::kNone, c.chw);
  const std::vector<float> params = RandomVector(relu.NumParams(), 41);
  const std::vector<float> x = RandomVector(static_cast<size_t>(c.n) * relu.input_dim(), 42);
  const size_t ny = static_cast<size_t>(c.n) * relu.output_dim();
  const std::vector<float> r = RandomVector(ny, 43);
  std::vector<float> y_relu(ny), y_lin(ny);
  relu.Forward(params.data(), x.data(), c.n, y_relu.data());
  lin.Forward(params.data(), x.data(), c.n, y_lin.data());
  std::vector<float> dy_relu = r, dy_lin = r;
  size_t active = 0;
  for (size_t i = 0; i < ny; ++i) {
    ASSERT_EQ(y_relu[i], std::max(y_lin[i], 0.0f));
    if (y_lin[i] <= 0.0f) dy_lin[i] = 0.0f;
    active += y_lin[i] > 0.0f;
  }
  ASSERT_GT(active, 0u);
  ASSERT_LT(active, ny);
  std::vector<float> dp_relu(params.size()), dp_lin(params.size());
  std::vector<float> dx_relu(x.size()), dx_lin(x.size());
  relu.Backward(params.data(), x.data(), y_relu.data(), dy_relu.data(), c.n, dp_relu.data(),
                dx_relu.data());
  lin.Backward(params.data(), x.data(), y_lin.data(), dy_lin.data(), c.n, dp_lin.data(),
               dx_lin.data());
  EXPECT_EQ(dp_relu, dp_lin);
  EXPECT_EQ(dx_relu, dx_lin);

  // The input gradient alone (dparams null) is the same, bit for bit.
  std::vector<float> dx_only(x.size(), -7.0f);
  dy_relu = r;
  relu.Forward(params.data(), x.data(), c.n, y_relu.data());
  relu.Backward(params.data(), x.data(), y_relu.data(), dy_relu.data(), c.n, nullptr,
                dx_only.data());
  EXPECT_EQ(dx_only, dx_relu);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, Conv2dTest,
    ::testing::Values(ConvCase{{1, 6, 5}, 2, 3, true, false, 2},   // one channel
                      ConvCase{{3, 5, 6}, 4, 3, false, true, 2},   // HWC, ReLU
                      ConvCase{{2, 6, 7}, 3, 4, true, true, 2},    // CHW, even kernel
                      ConvCase{{2, 5, 5}, 2, 5, false, false, 1},  // kernel = input
                      // 16*16*25*8 floats per example: several im2col chunks.
                      ConvCase{{8, 16, 16}, 2, 5, false, true, 3},
                      // Multiples of 32 channels: the direct (no im2col)
                      // forward and input gradient of AVX-512 builds.
                      ConvCase{{32, 14, 14}, 64, 5, false, true, 2},  // McMahan conv2
                      ConvCase{{32, 7, 9}, 32, 4, false, false, 2},   // even kernel
                      ConvCase{{1, 6, 31}, 32, 5, true, true, 2}));   // 3 pixel blocks

TEST(MaxPool2Test, ForwardPicksMaxima) {
  MaxPool2 pool(TensorShape{1, 2, 4});
  const float x[] = {1, 5, 2, 0, 3, -1, 7, 8};  // 2 x 4, one channel
  float y[2];
  pool.Forward(nullptr, x, 1, y);
  EXPECT_EQ(y[0], 5.0f);
  EXPECT_EQ(y[1], 8.0f);
}

// Distinct values, spaced well above the finite-difference step, so that no
// pooling window switches its maximum.
void CheckPool(TensorShape in, int n) {
  MaxPool2 pool(in);
  std::vector<float> x(static_cast<size_t>(n) * in.dim());
  std::iota(x.begin(), x.end(), 0.0f);
  Rng(7, "perm").Shuffle(x);
  for (float& v : x) v *= 0.01f;
  std::vector<float> params;
  std::vector<float> y(static_cast<size_t>(n) * pool.output_dim());
  const std::vector<float> r = RandomVector(y.size(), 8);
  auto loss = [&]() {
    pool.Forward(nullptr, x.data(), n, y.data());
    double s = 0.0;
    for (size_t i = 0; i < y.size(); ++i) s += static_cast<double>(r[i]) * y[i];
    return s;
  };
  loss();
  std::vector<float> dy = r, dx(x.size(), 99.0f);
  pool.Backward(nullptr, x.data(), y.data(), dy.data(), n, nullptr, dx.data());
  CheckGradient("d/dx", x, dx, loss);
}

TEST(MaxPool2Test, GradientsEven) { CheckPool(TensorShape{3, 4, 6}, 2); }
TEST(MaxPool2Test, GradientsOdd) { CheckPool(TensorShape{2, 5, 7}, 2); }

TEST(SoftmaxCrossEntropyTest, ValuesAndGradient) {
  // Uniform logits: loss = log(k) per row.
  const float zeros[8] = {};
  const int32_t labels2[2] = {1, 3};
  EXPECT_NEAR(SoftmaxCrossEntropy(zeros, labels2, 2, 4, nullptr, nullptr), 2 * std::log(4.0),
              1e-6);

  const int n = 3, k = 5;
  std::vector<float> logits = RandomVector(n * k, 31, -3, 3);
  const int32_t labels[n] = {0, 4, 2};
  std::vector<float> d(n * k);
  int64_t correct = 0;
  SoftmaxCrossEntropy(logits.data(), labels, n, k, d.data(), &correct);
  int64_t want_correct = 0;
  for (int i = 0; i < n; ++i) {
    const float* l = logits.data() + i * k;
    want_correct += std::max_element(l, l + k) - l == labels[i];
  }
  EXPECT_EQ(correct, want_correct);
  auto mean_loss = [&]() {
    return SoftmaxCrossEntropy(logits.data(), labels, n, k, nullptr, nullptr) / n;
  };
  GradCheckOptions opts;
  opts.kink = 1e-4;  // smooth; only curvature here
  CheckGradient("d/dlogits", logits, d, mean_loss, opts);
}

TEST(SoftmaxCrossEntropyTest, LargeLogitsStayFinite) {
  const float logits[3] = {1000.0f, -1000.0f, 0.0f};
  const int32_t label = 1;
  float d[3];
  const double loss = SoftmaxCrossEntropy(logits, &label, 1, 3, d, nullptr);
  EXPECT_NEAR(loss, 2000.0, 1e-3);
  EXPECT_NEAR(d[0], 1.0f, 1e-6);
  EXPECT_NEAR(d[1], -1.0f, 1e-6);
}

}  // namespace
}  // namespace fedsim
