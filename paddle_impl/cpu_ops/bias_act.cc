// bias_act: out = act(x + bias[c]) for NCHW float32, act = LeakyReLU(slope) (slope == 1: bias add only).
//
// One pass forward, one pass backward (dx and dbias together). The static oneDNN train step uses it after each
// bias-free conv: Paddle 3.2.2 runs oneDNN's backward of leaky_relu and of the broadcast bias add on reference
// kernels, and the plain-kernel replacement (expand_as + add + where) takes six ops and five layout reorders.
//
// The backward needs only `out`: with slope > 0, out >= 0 exactly when x + bias >= 0, and the gradient at 0 is 1,
// as Paddle's leaky_relu has it.
//
// Built with -fno-trapping-math (the selects then vectorize) and -fopenmp-simd (the bias-gradient sum vectorizes);
// no OpenMP runtime: a second thread team beside oneDNN's made the whole step twice as slow.
#include <cstdint>
#include <vector>

#include "paddle/extension.h"
#include "paddle/phi/core/dense_tensor.h"

namespace phi {
namespace funcs {
// Exported by libphi_core (declared in paddle/phi/kernels/funcs/data_layout_transform.h, which needs oneDNN
// headers the wheel does not ship).
void TransDataLayoutFromOneDNN(common::DataLayout in_layout, common::DataLayout out_layout, const DenseTensor& in,
                               DenseTensor* out, Place place, bool always_copy);
}  // namespace funcs
}  // namespace phi

namespace {

// The executor hands a custom op oneDNN-layout tensors (a conv's NHWC or blocked output) as they are.
paddle::Tensor Plain(const paddle::Tensor& t) {
  if (t.layout() != phi::DataLayout::ONEDNN) return t;
  auto in = std::static_pointer_cast<phi::DenseTensor>(t.impl());
  auto out = std::make_shared<phi::DenseTensor>();
  phi::funcs::TransDataLayoutFromOneDNN(phi::DataLayout::ONEDNN, phi::DataLayout::NCHW, *in, out.get(),
                                        phi::CPUPlace(), false);
  return paddle::Tensor(out);
}

void CheckInputs(const paddle::Tensor& x, const paddle::Tensor& bias) {
  PD_CHECK(x.is_cpu() && x.dtype() == paddle::DataType::FLOAT32, "bias_act: x must be a float32 CPU tensor");
  PD_CHECK(x.shape().size() >= 2, "bias_act: x must be N, C, ...");
  PD_CHECK(bias.dtype() == paddle::DataType::FLOAT32 && bias.numel() == x.shape()[1],
           "bias_act: bias must be float32 with one value per channel");
}

// An NCHW (or N, C, ...) tensor seen as n * c planes of hw values each.
struct Planes {
  int64_t n, c, hw;
  explicit Planes(const paddle::Tensor& t)
      : n(t.shape()[0]), c(t.shape()[1]), hw(n * c == 0 ? 0 : t.numel() / (n * c)) {}
};

}  // namespace

std::vector<paddle::Tensor> BiasActForward(const paddle::Tensor& x_in, const paddle::Tensor& bias, float slope) {
  const paddle::Tensor x = Plain(x_in);
  CheckInputs(x, bias);
  auto out = paddle::empty_like(x);
  const Planes planes(x);
  const int64_t n = planes.n, c = planes.c, hw = planes.hw;
  const float* px = x.data<float>();
  const float* pb = bias.data<float>();
  float* po = out.data<float>();
  for (int64_t p = 0; p < n * c; ++p) {
    const float b = pb[p % c];
    const float* xi = px + p * hw;
    float* oi = po + p * hw;
    for (int64_t i = 0; i < hw; ++i) {
      const float v = xi[i] + b;
      oi[i] = v >= 0.f ? v : v * slope;
    }
  }
  return {out};
}

std::vector<paddle::Tensor> BiasActBackward(const paddle::Tensor& out_in, const paddle::Tensor& grad_out_in,
                                            float slope) {
  const paddle::Tensor out = Plain(out_in), grad_out = Plain(grad_out_in);
  auto grad_x = paddle::empty_like(out);
  const Planes planes(out);
  const int64_t n = planes.n, c = planes.c, hw = planes.hw;
  const float* po = out.data<float>();
  const float* pg = grad_out.data<float>();
  float* pgx = grad_x.data<float>();
  std::vector<double> sums(c, 0.0);
  for (int64_t p = 0; p < n * c; ++p) {
    const float* oi = po + p * hw;
    const float* gi = pg + p * hw;
    float* gxi = pgx + p * hw;
    float s = 0.f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < hw; ++i) {
      const float g = oi[i] >= 0.f ? gi[i] : gi[i] * slope;
      gxi[i] = g;
      s += g;
    }
    sums[p % c] += s;
  }
  auto grad_bias = paddle::empty({c}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  float* pgb = grad_bias.data<float>();
  for (int64_t k = 0; k < c; ++k) pgb[k] = static_cast<float>(sums[k]);
  return {grad_x, grad_bias};
}

std::vector<std::vector<int64_t>> BiasActInferShape(const std::vector<int64_t>& x, const std::vector<int64_t>&) {
  return {x};
}

std::vector<paddle::DataType> BiasActInferDtype(paddle::DataType x, paddle::DataType) { return {x}; }

std::vector<std::vector<int64_t>> BiasActGradInferShape(const std::vector<int64_t>& out,
                                                        const std::vector<int64_t>&) {
  return {out, {out[1]}};
}

std::vector<paddle::DataType> BiasActGradInferDtype(paddle::DataType out, paddle::DataType) { return {out, out}; }

PD_BUILD_OP(bias_act)
    .Inputs({"X", "Bias"})
    .Outputs({"Out"})
    .Attrs({"slope: float"})
    .SetKernelFn(PD_KERNEL(BiasActForward))
    .SetInferShapeFn(PD_INFER_SHAPE(BiasActInferShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(BiasActInferDtype));

PD_BUILD_GRAD_OP(bias_act)
    .Inputs({"Out", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("Bias")})
    .Attrs({"slope: float"})
    .SetKernelFn(PD_KERNEL(BiasActBackward))
    .SetInferShapeFn(PD_INFER_SHAPE(BiasActGradInferShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(BiasActGradInferDtype));
