// The kernels' pointer-level entry points, shared by their torch operators and the fused decoder layer
// (decode_layer.cpp), which calls them on its own buffers: no tensor made, no dispatch, per step.
#pragma once

#include <torch/extension.h>

#include <cstdint>
#include <optional>
#include <utility>

// y [rows, n] = x [rows, k] W^T for float32 x: int4 weights (qs, dm) or int8 ones (values, scales).
void int4_linear_rows(const float* x, int64_t rows, int64_t k, const uint8_t* qs, const uint16_t* dm, int64_t n, float* y);
void int8_linear_rows(const float* x, int64_t rows, int64_t k, const int8_t* values, const float* scales, int64_t n,
                      float* y);

// A step's paged sequences: block tables [sequences, max_blocks], context lengths [sequences] and the
// first query row of each (query_starts [sequences + 1]).
struct PagedRows {
  const int32_t* block_tables;
  int64_t max_blocks;
  const int32_t* context_lens;
  const int32_t* query_starts;
  int64_t sequences;
};

struct AttentionShape {
  int64_t num_heads, num_kv_heads, head_dim, block_size;
  double scale;
  int64_t window;
  float softcap;
  int64_t chunk;
};

PagedRows paged_rows(const torch::Tensor& block_tables, const torch::Tensor& context_lens,
                     const torch::Tensor& query_starts);

// out, q: [tokens, num_heads, head_dim]; caches: [num_blocks, block_size, num_kv_heads, head_dim], in q's
// dtype, int8 with scales (k_scales, v_scales: [num_blocks, block_size, num_kv_heads]; else null) or, under
// float32 q, in 16 bits (kv_cache_dtype; see cache_pairs_with).
template <typename scalar_t, typename cache_t>
void paged_attention_rows(scalar_t* out, const scalar_t* q, const cache_t* k_cache, const cache_t* v_cache,
                          const float* k_scales, const float* v_scales, const PagedRows& rows,
                          const AttentionShape& shape);

// Whether a KV cache of dtype `cache` serves activations of dtype `q`: the same float32, bfloat16 or
// float16; int8 (with scales); or a bfloat16 or float16 cache under float32 activations.
inline bool cache_pairs_with(at::ScalarType q, at::ScalarType cache) {
  const bool activations = q == at::kFloat || q == at::kBFloat16 || q == at::kHalf;
  const bool half = cache == at::kBFloat16 || cache == at::kHalf;
  return activations && (q == cache || cache == at::kChar || (q == at::kFloat && half));
}

// fn(q_t{}, cache_t{}) with the C++ types of a pair cache_pairs_with accepts (checked by the caller).
template <typename Fn>
void dispatch_cache_pair(at::ScalarType q, at::ScalarType cache, Fn&& fn) {
  if (cache == at::kChar) {
    if (q == at::kBFloat16) return fn(c10::BFloat16{}, int8_t{});
    if (q == at::kHalf) return fn(c10::Half{}, int8_t{});
    return fn(float{}, int8_t{});
  }
  if (q == at::kBFloat16) return fn(c10::BFloat16{}, c10::BFloat16{});
  if (q == at::kHalf) return fn(c10::Half{}, c10::Half{});
  if (cache == at::kBFloat16) return fn(float{}, c10::BFloat16{});
  if (cache == at::kHalf) return fn(float{}, c10::Half{});
  fn(float{}, float{});
}

// An int8 cache's scales as pointers (float32 [num_blocks, block_size, num_kv_heads, 1], both given); null for
// any other cache (none given).
inline std::pair<float*, float*> cache_scales(const torch::Tensor& k_cache, const torch::Tensor& v_cache,
                                              const std::optional<torch::Tensor>& k_scale,
                                              const std::optional<torch::Tensor>& v_scale) {
  const bool int8 = k_cache.scalar_type() == at::kChar;
  TORCH_CHECK(k_scale.has_value() == int8 && v_scale.has_value() == int8,
              int8 ? "an int8 KV cache needs its k_scale and v_scale" : "scales go with an int8 KV cache only");
  if (!int8) return {nullptr, nullptr};
  for (const torch::Tensor* t : {&*k_scale, &*v_scale})
    TORCH_CHECK(t->scalar_type() == at::kFloat && t->is_contiguous() && t->dim() == 4 &&
                    t->sizes().slice(0, 3) == k_cache.sizes().slice(0, 3) && t->size(3) == 1,
                "KV cache scales must be contiguous float32 [num_blocks, block_size, num_kv_heads, 1]");
  return {k_scale->data_ptr<float>(), v_scale->data_ptr<float>()};
}
