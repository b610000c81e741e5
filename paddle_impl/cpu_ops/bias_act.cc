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
//
// bf16 training (precision bf16 in the static step) adds two ops around each conv:
// - to_bf16(x): float32 -> bfloat16 (round to nearest even) for the conv's input and weight; its backward turns
//   the conv's bf16 gradient (in oneDNN's layout) back into float32. Paddle's own cast fails there: its oneDNN
//   cast kernel cannot read the blocked layout of a conv's weight gradient (dnnl::error).
// - bias_act_bf16(y, bias, slope): bias_act on the conv's output, float32 out; its backward hands the conv a
//   bf16 gradient. Paddle 3.2's oneDNN conv writes float32 under the bf16 type unless an attribute the static
//   program cannot keep is set, so y is read as either dtype; the conv's backward then runs in bf16.
#include <cstdint>
#include <cstring>
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

// bfloat16 <-> float32 bits: round to nearest even (NaN stays NaN), and the exact widening.
inline uint16_t Bf16Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  const uint32_t rounded = (b + 0x7fffu + ((b >> 16) & 1u)) >> 16;
  const uint32_t quiet_nan = (b >> 16) | 0x40u;
  return static_cast<uint16_t>((b & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);  // a select: vectorizes
}

inline float Bf16Value(uint16_t h) {
  const uint32_t b = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// A float32 view of x: x itself, or a float32 copy of a bfloat16 x.
paddle::Tensor AsFloat(const paddle::Tensor& x) {
  if (x.dtype() == paddle::DataType::FLOAT32) return x;
  PD_CHECK(x.dtype() == paddle::DataType::BFLOAT16, "bf16 ops: expected a float32 or bfloat16 tensor");
  auto out = paddle::empty(x.shape(), paddle::DataType::FLOAT32, paddle::CPUPlace());
  const uint16_t* px = reinterpret_cast<const uint16_t*>(x.data<paddle::bfloat16>());
  float* po = out.data<float>();
  const int64_t n = x.numel();
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) po[i] = Bf16Value(px[i]);
  return out;
}

paddle::Tensor ToBf16(const paddle::Tensor& x) {
  PD_CHECK(x.dtype() == paddle::DataType::FLOAT32, "to_bf16: x must be float32");
  auto out = paddle::empty(x.shape(), paddle::DataType::BFLOAT16, paddle::CPUPlace());
  const float* px = x.data<float>();
  uint16_t* po = reinterpret_cast<uint16_t*>(out.data<paddle::bfloat16>());
  const int64_t n = x.numel();
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) po[i] = Bf16Bits(px[i]);
  return out;
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

std::vector<paddle::Tensor> ToBf16Forward(const paddle::Tensor& x) { return {ToBf16(AsFloat(Plain(x)))}; }

std::vector<paddle::Tensor> ToBf16Backward(const paddle::Tensor& grad_out) { return {AsFloat(Plain(grad_out))}; }

std::vector<paddle::Tensor> BiasActBf16Forward(const paddle::Tensor& x, const paddle::Tensor& bias, float slope) {
  return BiasActForward(AsFloat(Plain(x)), bias, slope);
}

std::vector<paddle::Tensor> BiasActBf16Backward(const paddle::Tensor& out, const paddle::Tensor& grad_out,
                                                float slope) {
  auto grads = BiasActBackward(out, grad_out, slope);
  return {ToBf16(grads[0]), grads[1]};
}

std::vector<std::vector<int64_t>> SameShape(const std::vector<int64_t>& x) { return {x}; }

std::vector<paddle::DataType> Bf16Dtype(paddle::DataType) { return {paddle::DataType::BFLOAT16}; }

std::vector<paddle::DataType> Float32Dtype(paddle::DataType) { return {paddle::DataType::FLOAT32}; }

std::vector<paddle::DataType> BiasActBf16InferDtype(paddle::DataType, paddle::DataType) {
  return {paddle::DataType::FLOAT32};
}

std::vector<paddle::DataType> BiasActBf16GradInferDtype(paddle::DataType, paddle::DataType) {
  return {paddle::DataType::BFLOAT16, paddle::DataType::FLOAT32};
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

PD_BUILD_OP(to_bf16)
    .Inputs({"X"})
    .Outputs({"Out"})
    .SetKernelFn(PD_KERNEL(ToBf16Forward))
    .SetInferShapeFn(PD_INFER_SHAPE(SameShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(Bf16Dtype));

PD_BUILD_GRAD_OP(to_bf16)
    .Inputs({paddle::Grad("Out")})
    .Outputs({paddle::Grad("X")})
    .SetKernelFn(PD_KERNEL(ToBf16Backward))
    .SetInferShapeFn(PD_INFER_SHAPE(SameShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(Float32Dtype));

PD_BUILD_OP(bias_act_bf16)
    .Inputs({"X", "Bias"})
    .Outputs({"Out"})
    .Attrs({"slope: float"})
    .SetKernelFn(PD_KERNEL(BiasActBf16Forward))
    .SetInferShapeFn(PD_INFER_SHAPE(BiasActInferShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(BiasActBf16InferDtype));

PD_BUILD_GRAD_OP(bias_act_bf16)
    .Inputs({"Out", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("Bias")})
    .Attrs({"slope: float"})
    .SetKernelFn(PD_KERNEL(BiasActBf16Backward))
    .SetInferShapeFn(PD_INFER_SHAPE(BiasActGradInferShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(BiasActBf16GradInferDtype));
