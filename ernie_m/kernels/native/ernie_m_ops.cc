// CPU operators for the model's element-wise work at small widths, where Paddle's CPU kernels spend far more
// time than the matrix multiplies around them (figures: docs/benchmarks.md). Each operator has a backward and is
// checked against Paddle's own ops (tests/test_native_kernels.py). float32, contiguous tensors, CPU only: the
// Python side (ernie_m/kernels/fast_paths.py, through native/__init__.py) calls them only then.
//
// Loops are written so that the compiler vectorises them: no branches in the inner loops, reductions marked
// `omp simd`, and the hot functions compiled for AVX-512, AVX2 and the baseline, picked at load time for the CPU at
// hand (target_clones). Rows are shared between OMP_NUM_THREADS threads through the OpenMP runtime MKL already
// runs in this process (Intel's libiomp5, linked explicitly), so the operators and the matrix multiplies use one
// pool of threads instead of two that would spin against each other; small tensors stay on one thread.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "paddle/extension.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define EM_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define EM_CLONES
#endif

namespace {

// Below this many values a loop runs on one thread: a parallel region costs a few microseconds.
constexpr int64_t kParallelMin = 1 << 15;

void check_float(const paddle::Tensor& t, const char* op, const char* name) {
  PD_CHECK(t.is_cpu(), op, ": ", name, " must be on the CPU");
  PD_CHECK(t.dtype() == paddle::DataType::FLOAT32, op, ": ", name, " must be float32");
}

int64_t last_dim(const paddle::Tensor& t) { return t.shape().back(); }

// The number of rows of a shape seen as [rows, last dimension].
int64_t leading_rows(const std::vector<int64_t>& shape) {
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) rows *= shape[i];
  return rows;
}

// exp(x) for float32: x = n ln2 + r with |r| <= ln2 / 2, e^r from its Taylor series to r^7 (relative error below
// 1e-8 there), 2^n put into the exponent bits. Arguments below -87.3 (where expf leaves the normal floats) give
// exactly 0, so that a masked attention entry has no weight at all. NaN stays NaN.
inline float fast_exp(float x) {
  const float c = x < -87.3f ? -87.3f : x;
  const float n = std::nearbyint(c * 1.44269504088896341f);
  const float r = (c - n * 0.693145751953125f) - n * 1.428606765330187e-06f;  // ln2 split in two for accuracy
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return x < -87.3f ? 0.0f : p * scale;
}

// erf(x) by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7), odd-symmetric.
inline float fast_erf(float x) {
  const float a = std::fabs(x);
  const float t = 1.0f / (1.0f + 0.3275911f * a);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const float y = 1.0f - p * t * fast_exp(-a * a);
  return std::copysign(y, x);
}

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

// ---- LayerNorm over the last dimension, optionally of (x + residual) -------------------------------------------

EM_CLONES void layer_norm_rows(const float* x, const float* residual, const float* weight, const float* bias,
                               float epsilon, int64_t rows, int64_t width, float* out, float* normalized,
                               float* rstd) {
#pragma omp parallel if (rows * width >= kParallelMin)
  {
  std::vector<float> row(width);
#pragma omp for schedule(static)
  for (int64_t i = 0; i < rows; ++i) {
    const float* xi = x + i * width;
    float* v = row.data();
    if (residual != nullptr) {
      const float* ri = residual + i * width;
      for (int64_t j = 0; j < width; ++j) v[j] = xi[j] + ri[j];
    } else {
      for (int64_t j = 0; j < width; ++j) v[j] = xi[j];
    }
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < width; ++j) sum += v[j];
    const float mean = sum / width;
    float squares = 0.0f;
#pragma omp simd reduction(+ : squares)
    for (int64_t j = 0; j < width; ++j) squares += (v[j] - mean) * (v[j] - mean);
    const float r = 1.0f / std::sqrt(squares / width + epsilon);
    rstd[i] = r;
    float* ni = normalized + i * width;
    float* oi = out + i * width;
    for (int64_t j = 0; j < width; ++j) {
      ni[j] = (v[j] - mean) * r;
      oi[j] = ni[j] * weight[j] + bias[j];
    }
  }
  }
}

EM_CLONES void layer_norm_grad_rows(const float* grad_out, const float* normalized, const float* rstd,
                                    const float* weight, int64_t rows, int64_t width, float* grad_x,
                                    float* grad_residual, float* grad_weight, float* grad_bias) {
  std::fill(grad_weight, grad_weight + width, 0.0f);
  std::fill(grad_bias, grad_bias + width, 0.0f);
#pragma omp parallel if (rows * width >= kParallelMin)
  {
  std::vector<float> scaled(width), partial_weight(width, 0.0f), partial_bias(width, 0.0f);
#pragma omp for schedule(static) nowait
  for (int64_t i = 0; i < rows; ++i) {
    const float* gi = grad_out + i * width;
    const float* ni = normalized + i * width;
    float* s = scaled.data();
    float* pw = partial_weight.data();
    float* pb = partial_bias.data();
    for (int64_t j = 0; j < width; ++j) {
      pw[j] += gi[j] * ni[j];
      pb[j] += gi[j];
      s[j] = gi[j] * weight[j];
    }
    float mean_s = 0.0f, mean_sn = 0.0f;
#pragma omp simd reduction(+ : mean_s, mean_sn)
    for (int64_t j = 0; j < width; ++j) {
      mean_s += s[j];
      mean_sn += s[j] * ni[j];
    }
    mean_s /= width;
    mean_sn /= width;
    const float r = rstd[i];
    float* dx = grad_x + i * width;
    for (int64_t j = 0; j < width; ++j) dx[j] = r * (s[j] - mean_s - ni[j] * mean_sn);
    if (grad_residual != nullptr) std::memcpy(grad_residual + i * width, dx, width * sizeof(float));
  }
#pragma omp critical
  for (int64_t j = 0; j < width; ++j) {
    grad_weight[j] += partial_weight[j];
    grad_bias[j] += partial_bias[j];
  }
  }
}

std::vector<paddle::Tensor> layer_norm_outputs(const paddle::Tensor& x, const paddle::Tensor* residual,
                                               const paddle::Tensor& weight, const paddle::Tensor& bias,
                                               float epsilon) {
  check_float(x, "ernie_m_layer_norm", "x");
  const int64_t width = last_dim(x);
  const int64_t rows = x.numel() / width;
  PD_CHECK(weight.numel() == width && bias.numel() == width, "ernie_m_layer_norm: weight and bias must have ",
           width, " values");
  auto out = paddle::empty(x.shape(), x.dtype(), x.place());
  auto normalized = paddle::empty(x.shape(), x.dtype(), x.place());
  auto rstd = paddle::empty({rows}, x.dtype(), x.place());
  layer_norm_rows(x.data<float>(), residual ? residual->data<float>() : nullptr, weight.data<float>(),
                  bias.data<float>(), epsilon, rows, width, out.data<float>(), normalized.data<float>(),
                  rstd.data<float>());
  return {out, normalized, rstd};
}

std::vector<paddle::Tensor> LayerNormForward(const paddle::Tensor& x, const paddle::Tensor& weight,
                                             const paddle::Tensor& bias, float epsilon) {
  return layer_norm_outputs(x.contiguous(), nullptr, weight, bias, epsilon);
}

// Gradients of x (and, with a residual, of the residual: the same values), the weight and the bias.
std::vector<paddle::Tensor> layer_norm_grads(const paddle::Tensor& normalized, const paddle::Tensor& rstd,
                                             const paddle::Tensor& weight, const paddle::Tensor& grad_out,
                                             bool with_residual) {
  const auto g = grad_out.contiguous();
  const int64_t width = last_dim(normalized);
  const int64_t rows = normalized.numel() / width;
  auto grad_x = paddle::empty(normalized.shape(), normalized.dtype(), normalized.place());
  auto grad_weight = paddle::empty(weight.shape(), weight.dtype(), weight.place());
  auto grad_bias = paddle::empty(weight.shape(), weight.dtype(), weight.place());
  paddle::Tensor grad_residual;
  if (with_residual) grad_residual = paddle::empty(normalized.shape(), normalized.dtype(), normalized.place());
  layer_norm_grad_rows(g.data<float>(), normalized.data<float>(), rstd.data<float>(), weight.data<float>(), rows,
                       width, grad_x.data<float>(), with_residual ? grad_residual.data<float>() : nullptr,
                       grad_weight.data<float>(), grad_bias.data<float>());
  if (with_residual) return {grad_x, grad_residual, grad_weight, grad_bias};
  return {grad_x, grad_weight, grad_bias};
}

std::vector<paddle::Tensor> LayerNormBackward(const paddle::Tensor& normalized, const paddle::Tensor& rstd,
                                              const paddle::Tensor& weight, const paddle::Tensor& grad_out) {
  return layer_norm_grads(normalized, rstd, weight, grad_out, false);
}

std::vector<paddle::Tensor> AddLayerNormForward(const paddle::Tensor& x, const paddle::Tensor& residual,
                                                const paddle::Tensor& weight, const paddle::Tensor& bias,
                                                float epsilon) {
  PD_CHECK(x.shape() == residual.shape(), "ernie_m_add_layer_norm: x and residual differ in shape");
  const auto r = residual.contiguous();
  return layer_norm_outputs(x.contiguous(), &r, weight, bias, epsilon);
}

std::vector<paddle::Tensor> AddLayerNormBackward(const paddle::Tensor& normalized, const paddle::Tensor& rstd,
                                                 const paddle::Tensor& weight, const paddle::Tensor& grad_out) {
  return layer_norm_grads(normalized, rstd, weight, grad_out, true);
}

std::vector<std::vector<int64_t>> LayerNormShapes(const std::vector<int64_t>& x, const std::vector<int64_t>&,
                                                  const std::vector<int64_t>&) {
  const int64_t rows = leading_rows(x);
  return {x, x, {rows}};
}

std::vector<std::vector<int64_t>> AddLayerNormShapes(const std::vector<int64_t>& x, const std::vector<int64_t>&,
                                                     const std::vector<int64_t>& w, const std::vector<int64_t>& b) {
  return LayerNormShapes(x, w, b);
}

// ---- GELU (the exact, erf form) ---------------------------------------------------------------------------------

EM_CLONES void gelu_values(const float* x, int64_t n, float* out) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = 0.5f * x[i] * (1.0f + fast_erf(x[i] * kInvSqrt2));
}

EM_CLONES void gelu_grad_values(const float* x, const float* grad_out, int64_t n, float* grad_x) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float cdf = 0.5f * (1.0f + fast_erf(x[i] * kInvSqrt2));
    const float pdf = kInvSqrt2Pi * fast_exp(-0.5f * x[i] * x[i]);
    grad_x[i] = grad_out[i] * (cdf + x[i] * pdf);
  }
}

std::vector<paddle::Tensor> GeluForward(const paddle::Tensor& x_in) {
  check_float(x_in, "ernie_m_gelu", "x");
  const auto x = x_in.contiguous();
  auto out = paddle::empty(x.shape(), x.dtype(), x.place());
  gelu_values(x.data<float>(), x.numel(), out.data<float>());
  return {out};
}

std::vector<paddle::Tensor> GeluBackward(const paddle::Tensor& x_in, const paddle::Tensor& grad_out) {
  const auto x = x_in.contiguous();
  const auto g = grad_out.contiguous();
  auto grad_x = paddle::empty(x.shape(), x.dtype(), x.place());
  gelu_grad_values(x.data<float>(), g.data<float>(), x.numel(), grad_x.data<float>());
  return {grad_x};
}

// ---- softmax(scores + bias) over the last dimension, for attention ----------------------------------------------
// scores: [heads, batch, query, key] (the head-major layout of kernels/fast_paths.py). bias: [batch, 1 or heads,
// 1 or query, key], additive, or absent (an empty tensor). Rows whose every entry is -inf-like stay finite: the
// row maximum is subtracted first, as in Paddle's softmax.

EM_CLONES void softmax_row(const float* s, const float* b, int64_t width, float* p) {
  float top = -std::numeric_limits<float>::infinity();
  if (b != nullptr) {
    for (int64_t j = 0; j < width; ++j) p[j] = s[j] + b[j];
  } else {
    for (int64_t j = 0; j < width; ++j) p[j] = s[j];
  }
#pragma omp simd reduction(max : top)
  for (int64_t j = 0; j < width; ++j) top = p[j] > top ? p[j] : top;
  float total = 0.0f;
#pragma omp simd reduction(+ : total)
  for (int64_t j = 0; j < width; ++j) {
    p[j] = fast_exp(p[j] - top);
    total += p[j];
  }
  const float inverse = 1.0f / total;
  for (int64_t j = 0; j < width; ++j) p[j] *= inverse;
}

std::vector<paddle::Tensor> AttentionSoftmaxForward(const paddle::Tensor& scores_in, const paddle::Tensor& bias_in) {
  check_float(scores_in, "ernie_m_attention_softmax", "scores");
  const auto scores = scores_in.contiguous();
  const auto& shape = scores.shape();
  PD_CHECK(shape.size() == 4, "ernie_m_attention_softmax: scores must be [heads, batch, query, key]");
  const int64_t heads = shape[0], batch = shape[1], queries = shape[2], keys = shape[3];
  auto out = paddle::empty(shape, scores.dtype(), scores.place());
  const float* s = scores.data<float>();
  float* p = out.data<float>();
  const bool has_bias = bias_in.numel() > 0;
  paddle::Tensor bias = has_bias ? bias_in.contiguous() : bias_in;
  int64_t bias_heads = 1, bias_queries = 1;
  if (has_bias) {
    check_float(bias, "ernie_m_attention_softmax", "bias");
    const auto& bshape = bias.shape();
    PD_CHECK(bshape.size() == 4 && bshape[0] == batch && (bshape[1] == 1 || bshape[1] == heads) &&
                 (bshape[2] == 1 || bshape[2] == queries) && bshape[3] == keys,
             "ernie_m_attention_softmax: bias must be [batch, 1 or heads, 1 or query, key]");
    bias_heads = bshape[1];
    bias_queries = bshape[2];
  }
  const float* b = has_bias ? bias.data<float>() : nullptr;
#pragma omp parallel for collapse(3) schedule(static) if (scores.numel() >= kParallelMin)
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t n = 0; n < batch; ++n) {
      for (int64_t q = 0; q < queries; ++q) {
        const int64_t row = ((h * batch + n) * queries + q) * keys;
        const float* brow = nullptr;
        if (b != nullptr) {
          const int64_t bh = bias_heads == 1 ? 0 : h, bq = bias_queries == 1 ? 0 : q;
          brow = b + ((n * bias_heads + bh) * bias_queries + bq) * keys;
        }
        softmax_row(s + row, brow, keys, p + row);
      }
    }
  }
  return {out};
}

EM_CLONES void softmax_grad_rows(const float* p, const float* g, int64_t rows, int64_t width, float* d) {
#pragma omp parallel for schedule(static) if (rows * width >= kParallelMin)
  for (int64_t i = 0; i < rows; ++i) {
    const float* pi = p + i * width;
    const float* gi = g + i * width;
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < width; ++j) dot += pi[j] * gi[j];
    float* di = d + i * width;
    for (int64_t j = 0; j < width; ++j) di[j] = pi[j] * (gi[j] - dot);
  }
}

std::vector<std::vector<int64_t>> AttentionSoftmaxShapes(const std::vector<int64_t>& scores,
                                                         const std::vector<int64_t>&) {
  return {scores};
}

std::vector<paddle::Tensor> AttentionSoftmaxBackward(const paddle::Tensor& out, const paddle::Tensor& grad_out) {
  const auto g = grad_out.contiguous();
  const int64_t width = last_dim(out);
  auto grad_scores = paddle::empty(out.shape(), out.dtype(), out.place());
  softmax_grad_rows(out.data<float>(), g.data<float>(), out.numel() / width, width, grad_scores.data<float>());
  return {grad_scores};
}

// ---- Linear: x @ weight (+ bias), weight [in, out] or, transposed, [out, in] (a tied embedding) -----------------
// The products are Paddle's own matmul (MKL); what this adds is the bias inside one pass over the output and a
// fast bias gradient (a column sum, which Paddle's CPU reduction runs slowly at these shapes).

EM_CLONES void add_row_vector(float* y, const float* v, int64_t rows, int64_t width) {
#pragma omp parallel for schedule(static) if (rows * width >= kParallelMin)
  for (int64_t i = 0; i < rows; ++i) {
    float* yi = y + i * width;
    for (int64_t j = 0; j < width; ++j) yi[j] += v[j];
  }
}

EM_CLONES void column_sums(const float* g, int64_t rows, int64_t width, float* out) {
  std::fill(out, out + width, 0.0f);
#pragma omp parallel if (rows * width >= kParallelMin)
  {
  std::vector<float> partial(width, 0.0f);
  float* p = partial.data();
#pragma omp for schedule(static) nowait
  for (int64_t i = 0; i < rows; ++i) {
    const float* gi = g + i * width;
    for (int64_t j = 0; j < width; ++j) p[j] += gi[j];
  }
#pragma omp critical
  for (int64_t j = 0; j < width; ++j) out[j] += p[j];
  }
}

paddle::Tensor as_matrix(const paddle::Tensor& x) {
  const int64_t width = last_dim(x);
  return paddle::experimental::reshape(x, {x.numel() / width, width});
}

std::vector<int64_t> linear_shape(const std::vector<int64_t>& x, const std::vector<int64_t>& w, bool transposed) {
  std::vector<int64_t> shape(x.begin(), x.end() - 1);
  shape.push_back(transposed ? w[0] : w[1]);
  return shape;
}

std::vector<paddle::Tensor> LinearForward(const paddle::Tensor& x, const paddle::Tensor& weight,
                                          const paddle::Tensor& bias, bool transposed) {
  check_float(x, "ernie_m_linear", "x");
  check_float(weight, "ernie_m_linear", "weight");
  auto y = paddle::experimental::matmul(as_matrix(x.contiguous()), weight.contiguous(), false, transposed);
  const int64_t width = last_dim(y);
  PD_CHECK(bias.numel() == width, "ernie_m_linear: bias must have ", width, " values");
  add_row_vector(y.data<float>(), bias.contiguous().data<float>(), y.numel() / width, width);
  return {paddle::experimental::reshape(y, linear_shape(x.shape(), weight.shape(), transposed))};
}

std::vector<paddle::Tensor> LinearBackward(const paddle::Tensor& x, const paddle::Tensor& weight,
                                           const paddle::Tensor& grad_out, bool transposed) {
  const auto x2 = as_matrix(x.contiguous());
  const auto g2 = as_matrix(grad_out.contiguous());
  const auto w = weight.contiguous();
  auto grad_x = paddle::experimental::matmul(g2, w, false, !transposed);
  // d(weight) is x^T g for [in, out], g^T x for the transposed layout
  auto grad_weight = transposed ? paddle::experimental::matmul(g2, x2, true, false)
                                : paddle::experimental::matmul(x2, g2, true, false);
  const int64_t width = last_dim(g2);
  auto grad_bias = paddle::empty({width}, grad_out.dtype(), grad_out.place());
  column_sums(g2.data<float>(), g2.numel() / width, width, grad_bias.data<float>());
  return {paddle::experimental::reshape(grad_x, x.shape()), grad_weight, grad_bias};
}

std::vector<std::vector<int64_t>> LinearShapes(const std::vector<int64_t>& x, const std::vector<int64_t>& w,
                                               const std::vector<int64_t>&, bool transposed) {
  return {linear_shape(x, w, transposed)};
}

// ---- cross-entropy per row with the row's argmax, for the masked-LM loss and its accuracy ------------------------
// logits [rows, vocab], labels [rows] int64 (ignore_index rows: loss 0, gradient 0). Outputs: loss [rows],
// argmax [rows] int64, and the row's log-sum-exp kept for the backward.

// The first j with row[j] == value (argmax's tie rule), searched block by block so that the scan vectorises; a row
// without it (NaN) gives 0.
EM_CLONES int64_t first_index_of(const float* row, int64_t width, float value) {
  constexpr int64_t kBlock = 64;
  for (int64_t start = 0; start < width; start += kBlock) {
    const int64_t end = start + kBlock < width ? start + kBlock : width;
    int found = 0;
#pragma omp simd reduction(| : found)
    for (int64_t j = start; j < end; ++j) found |= row[j] == value;
    if (found) {
      for (int64_t j = start; j < end; ++j) {
        if (row[j] == value) return j;
      }
    }
  }
  return 0;
}

EM_CLONES void cross_entropy_rows(const float* logits, const int64_t* labels, int64_t rows, int64_t vocab,
                                  int64_t ignore_index, float* loss, int64_t* argmax, float* lse) {
#pragma omp parallel for schedule(static) if (rows * vocab >= kParallelMin)
  for (int64_t i = 0; i < rows; ++i) {
    const float* li = logits + i * vocab;
    float top = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : top)
    for (int64_t j = 0; j < vocab; ++j) top = li[j] > top ? li[j] : top;
    argmax[i] = first_index_of(li, vocab, top);
    float total = 0.0f;
#pragma omp simd reduction(+ : total)
    for (int64_t j = 0; j < vocab; ++j) total += fast_exp(li[j] - top);
    lse[i] = top + std::log(total);
    const int64_t label = labels[i];
    loss[i] = label == ignore_index ? 0.0f : lse[i] - li[label];
  }
}

EM_CLONES void cross_entropy_grad_rows(const float* logits, const int64_t* labels, const float* lse,
                                       const float* grad_loss, int64_t rows, int64_t vocab, int64_t ignore_index,
                                       float* grad) {
#pragma omp parallel for schedule(static) if (rows * vocab >= kParallelMin)
  for (int64_t i = 0; i < rows; ++i) {
    const float* li = logits + i * vocab;
    float* gi = grad + i * vocab;
    const int64_t label = labels[i];
    const float scale = label == ignore_index ? 0.0f : grad_loss[i];
    const float shift = lse[i];
    for (int64_t j = 0; j < vocab; ++j) gi[j] = scale * fast_exp(li[j] - shift);
    if (label != ignore_index) gi[label] -= scale;
  }
}

std::vector<paddle::Tensor> CrossEntropyForward(const paddle::Tensor& logits_in, const paddle::Tensor& labels_in,
                                                int64_t ignore_index) {
  check_float(logits_in, "ernie_m_cross_entropy", "logits");
  PD_CHECK(labels_in.dtype() == paddle::DataType::INT64, "ernie_m_cross_entropy: labels must be int64");
  const auto logits = logits_in.contiguous();
  const auto labels = labels_in.contiguous();
  const int64_t vocab = last_dim(logits);
  const int64_t rows = logits.numel() / vocab;
  PD_CHECK(labels.numel() == rows, "ernie_m_cross_entropy: ", labels.numel(), " labels for ", rows, " rows");
  const int64_t* label_values = labels.data<int64_t>();
  for (int64_t i = 0; i < rows; ++i) {
    PD_CHECK(label_values[i] == ignore_index || (label_values[i] >= 0 && label_values[i] < vocab),
             "ernie_m_cross_entropy: label ", label_values[i], " outside [0, ", vocab, ")");
  }
  auto loss = paddle::empty({rows}, logits.dtype(), logits.place());
  auto argmax = paddle::empty({rows}, paddle::DataType::INT64, logits.place());
  auto lse = paddle::empty({rows}, logits.dtype(), logits.place());
  cross_entropy_rows(logits.data<float>(), labels.data<int64_t>(), rows, vocab, ignore_index, loss.data<float>(),
                     argmax.data<int64_t>(), lse.data<float>());
  return {loss, argmax, lse};
}

std::vector<paddle::Tensor> CrossEntropyBackward(const paddle::Tensor& logits_in, const paddle::Tensor& labels,
                                                 const paddle::Tensor& lse, const paddle::Tensor& grad_loss,
                                                 int64_t ignore_index) {
  const auto logits = logits_in.contiguous();
  const auto g = grad_loss.contiguous();
  const int64_t vocab = last_dim(logits);
  auto grad = paddle::empty(logits.shape(), logits.dtype(), logits.place());
  cross_entropy_grad_rows(logits.data<float>(), labels.contiguous().data<int64_t>(), lse.data<float>(),
                          g.data<float>(), logits.numel() / vocab, vocab, ignore_index, grad.data<float>());
  return {grad};
}

std::vector<std::vector<int64_t>> CrossEntropyShapes(const std::vector<int64_t>& logits,
                                                     const std::vector<int64_t>&, int64_t) {
  const int64_t rows = leading_rows(logits);
  return {{rows}, {rows}, {rows}};
}

std::vector<paddle::DataType> CrossEntropyTypes(const paddle::DataType& logits, const paddle::DataType&) {
  return {logits, paddle::DataType::INT64, logits};
}

// ---- greedy decoding of a tied LM head: argmax of (hidden @ embedding^T + bias + penalty), tile by tile ---------
// A tile of rows x vocabulary ids is multiplied and reduced to each row's best so far while it is still in cache,
// instead of writing out [rows, vocab] logits, biasing them in a second pass and reading them again for an argmax.
// Tiles are taken in vocabulary order and a later tile wins only when strictly better: argmax's first-index rule.

EM_CLONES void update_best(const float* logits, const float* shift, int64_t rows, int64_t width, int64_t offset,
                           float* best, int64_t* best_ids) {
#pragma omp parallel if (rows * width >= kParallelMin)
  {
  std::vector<float> row(width);
#pragma omp for schedule(static)
  for (int64_t i = 0; i < rows; ++i) {
    const float* li = logits + i * width;
    float* v = row.data();
    float top = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : top)
    for (int64_t j = 0; j < width; ++j) {
      v[j] = li[j] + shift[j];
      top = v[j] > top ? v[j] : top;
    }
    if (top > best[i]) {
      best[i] = top;
      best_ids[i] = offset + first_index_of(v, width, top);
    }
  }
  }
}

std::vector<paddle::Tensor> GreedyIdsForward(const paddle::Tensor& hidden_in, const paddle::Tensor& embedding_in,
                                             const paddle::Tensor& bias, const paddle::Tensor& penalty) {
  check_float(hidden_in, "ernie_m_greedy_ids", "hidden");
  check_float(embedding_in, "ernie_m_greedy_ids", "embedding");
  const auto hidden = as_matrix(hidden_in.contiguous());
  const auto embedding = embedding_in.contiguous();
  const int64_t rows = hidden.shape()[0], vocab = embedding.shape()[0];
  PD_CHECK(bias.numel() == vocab && penalty.numel() == vocab, "ernie_m_greedy_ids: bias and penalty must have ",
           vocab, " values");
  std::vector<float> shift(vocab);
  const float* b = bias.contiguous().data<float>();
  const float* p = penalty.contiguous().data<float>();
  for (int64_t j = 0; j < vocab; ++j) shift[j] = b[j] + p[j];
  auto out = paddle::empty({rows}, paddle::DataType::INT64, hidden.place());
  int64_t* ids = out.data<int64_t>();
  std::fill(ids, ids + rows, 0);
  std::vector<float> best(rows, -std::numeric_limits<float>::infinity());
  constexpr int64_t kTileRows = 256, kTileVocab = 4096;
  for (int64_t r0 = 0; r0 < rows; r0 += kTileRows) {
    const int64_t r1 = r0 + kTileRows < rows ? r0 + kTileRows : rows;
    const auto block = hidden.slice(r0, r1);
    for (int64_t v0 = 0; v0 < vocab; v0 += kTileVocab) {
      const int64_t v1 = v0 + kTileVocab < vocab ? v0 + kTileVocab : vocab;
      auto logits = paddle::experimental::matmul(block, embedding.slice(v0, v1), false, true);
      update_best(logits.data<float>(), shift.data() + v0, r1 - r0, v1 - v0, v0, best.data() + r0, ids + r0);
    }
  }
  return {out};
}

std::vector<std::vector<int64_t>> GreedyIdsShapes(const std::vector<int64_t>& hidden, const std::vector<int64_t>&,
                                                  const std::vector<int64_t>&, const std::vector<int64_t>&) {
  const int64_t rows = leading_rows(hidden);
  return {{rows}};
}

std::vector<paddle::DataType> GreedyIdsTypes(const paddle::DataType&, const paddle::DataType&,
                                             const paddle::DataType&, const paddle::DataType&) {
  return {paddle::DataType::INT64};
}

}  // namespace

PD_BUILD_OP(ernie_m_greedy_ids)
    .Inputs({"Hidden", "Embedding", "Bias", "Penalty"})
    .Outputs({"Out"})
    .SetKernelFn(PD_KERNEL(GreedyIdsForward))
    .SetInferShapeFn(PD_INFER_SHAPE(GreedyIdsShapes))
    .SetInferDtypeFn(PD_INFER_DTYPE(GreedyIdsTypes));

PD_BUILD_OP(ernie_m_layer_norm)
    .Inputs({"X", "Weight", "Bias"})
    .Outputs({"Out", "Normalized", "Rstd"})
    .Attrs({"epsilon: float"})
    .SetKernelFn(PD_KERNEL(LayerNormForward))
    .SetInferShapeFn(PD_INFER_SHAPE(LayerNormShapes));

PD_BUILD_GRAD_OP(ernie_m_layer_norm)
    .Inputs({"Normalized", "Rstd", "Weight", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("Weight"), paddle::Grad("Bias")})
    .SetKernelFn(PD_KERNEL(LayerNormBackward));

PD_BUILD_OP(ernie_m_add_layer_norm)
    .Inputs({"X", "Residual", "Weight", "Bias"})
    .Outputs({"Out", "Normalized", "Rstd"})
    .Attrs({"epsilon: float"})
    .SetKernelFn(PD_KERNEL(AddLayerNormForward))
    .SetInferShapeFn(PD_INFER_SHAPE(AddLayerNormShapes));

PD_BUILD_GRAD_OP(ernie_m_add_layer_norm)
    .Inputs({"Normalized", "Rstd", "Weight", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("Residual"), paddle::Grad("Weight"), paddle::Grad("Bias")})
    .SetKernelFn(PD_KERNEL(AddLayerNormBackward));

PD_BUILD_OP(ernie_m_gelu)
    .Inputs({"X"})
    .Outputs({"Out"})
    .SetKernelFn(PD_KERNEL(GeluForward));

PD_BUILD_GRAD_OP(ernie_m_gelu)
    .Inputs({"X", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X")})
    .SetKernelFn(PD_KERNEL(GeluBackward));

PD_BUILD_OP(ernie_m_attention_softmax)
    .Inputs({"Scores", "Bias"})
    .Outputs({"Out"})
    .SetKernelFn(PD_KERNEL(AttentionSoftmaxForward))
    .SetInferShapeFn(PD_INFER_SHAPE(AttentionSoftmaxShapes));

PD_BUILD_GRAD_OP(ernie_m_attention_softmax)
    .Inputs({"Out", paddle::Grad("Out")})
    .Outputs({paddle::Grad("Scores")})
    .SetKernelFn(PD_KERNEL(AttentionSoftmaxBackward));

PD_BUILD_OP(ernie_m_linear)
    .Inputs({"X", "Weight", "Bias"})
    .Outputs({"Out"})
    .Attrs({"transposed: bool"})
    .SetKernelFn(PD_KERNEL(LinearForward))
    .SetInferShapeFn(PD_INFER_SHAPE(LinearShapes));

PD_BUILD_GRAD_OP(ernie_m_linear)
    .Inputs({"X", "Weight", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("Weight"), paddle::Grad("Bias")})
    .Attrs({"transposed: bool"})
    .SetKernelFn(PD_KERNEL(LinearBackward));

PD_BUILD_OP(ernie_m_cross_entropy)
    .Inputs({"Logits", "Labels"})
    .Outputs({"Loss", "Argmax", "LogSumExp"})
    .Attrs({"ignore_index: int64_t"})
    .SetKernelFn(PD_KERNEL(CrossEntropyForward))
    .SetInferShapeFn(PD_INFER_SHAPE(CrossEntropyShapes))
    .SetInferDtypeFn(PD_INFER_DTYPE(CrossEntropyTypes));

PD_BUILD_GRAD_OP(ernie_m_cross_entropy)
    .Inputs({"Logits", "Labels", "LogSumExp", paddle::Grad("Loss")})
    .Outputs({paddle::Grad("Logits")})
    .Attrs({"ignore_index: int64_t"})
    .SetKernelFn(PD_KERNEL(CrossEntropyBackward));
