// The kernels' pointer-level entry points, shared by their torch operators and the fused decoder layer
// (decode_layer.cpp), which calls them on its own buffers: no tensor made, no dispatch, per step.
#pragma once

#include <torch/extension.h>

#include <cstdint>

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

// out, q: [tokens, num_heads, head_dim]; caches: [num_blocks, block_size, num_kv_heads, head_dim].
template <typename scalar_t>
void paged_attention_rows(scalar_t* out, const scalar_t* q, const scalar_t* k_cache, const scalar_t* v_cache,
                          const PagedRows& rows, const AttentionShape& shape);
