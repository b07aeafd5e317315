// Paged attention for sequences with a few query tokens each (decodes, draft verification),
// reading keys and values in place through each sequence's block table: no gather, no padding.
//
// Cache layout: [num_blocks, block_size, num_kv_heads, head_dim]. Sequence i owns query rows
// query_starts[i] .. query_starts[i + 1] of q; its query j sits at position
// context_lens[i] - q_len + j and sees keys up to that position (and, with a sliding window,
// no older than `window` tokens; with chunk > 0 (Llama 4), none before its own block of `chunk`
// positions); softcap > 0 (Gemma 2) turns each score s into
// softcap * tanh(s / softcap). One work item is a (sequence, KV head) pair: the KV head's
// group of query heads share every key and value read. Scores, softmax and the weighted sum
// run in float32 whatever the cache dtype; an int8 cache's scales (one per token and KV head) are
// multiplied into a key's scores and a value's weights.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels.h"
#include "vec.h"

namespace {

template <typename T>
inline float to_float(T x) { return static_cast<float>(x); }

// Where one KV head's rows lie in a cache of [num_blocks, block_size, num_kv_heads, head_dim], and what of
// each block to ask into the cache ahead: this head's rows, or every head's (the whole block, whose other
// heads the same thread reads next).
struct Layout {
  enum Prefetch { HEAD, BLOCK };
  int64_t block_size, token_stride, head_offset;
  Prefetch prefetch;
  const float* scales;  // an int8 cache's scales [num_blocks, block_size, num_kv_heads], at this head's; else null
  int64_t scale_stride;  // num_kv_heads
};

// Keys/values of tokens [begin, end) of one KV head, visited block by block: fn(first token, count, its row,
// its scale or null); the run's rows are token_stride apart, their scales scale_stride. Blocks lie anywhere
// in the cache, where no hardware prefetcher can guess them: the rows two blocks ahead are asked into the
// cache while one is visited (a decode step's attention otherwise waited on memory most of its time). A
// head's rows alone are 128-byte pieces (SmolLM2, bfloat16) a few hundred bytes apart, which memory delivers
// slower than whole blocks: a thread that attends for all of a sequence's heads prefetches whole blocks
// (SmolLM2's 64-sequence decode step: 15 % less time). The later heads' passes ask for their rows again:
// cheap where the first pass left them in the cache, and a long context's blocks do not all stay there.
template <typename scalar_t, typename Fn>
inline void for_each_run(const scalar_t* cache, const int32_t* block_table, int64_t begin, int64_t end,
                         const Layout& at, int64_t head_dim, Fn&& fn) {
  const auto block_start = [&](int64_t b) {
    return cache + static_cast<int64_t>(block_table[b]) * at.block_size * at.token_stride;
  };
  const auto prefetch_block = [&](int64_t b) {
    if (b * at.block_size >= end) return;
    const char* block = reinterpret_cast<const char*>(block_start(b));
    constexpr int64_t element_bytes = sizeof(scalar_t);
    if (at.prefetch == Layout::BLOCK) {
      for (int64_t byte = 0; byte < at.block_size * at.token_stride * element_bytes; byte += 64) __builtin_prefetch(block + byte);
      return;
    }
    for (int64_t t = 0; t < at.block_size; ++t)
      for (int64_t byte = 0; byte < head_dim * element_bytes; byte += 64)
        __builtin_prefetch(block + ((t * at.token_stride + at.head_offset) * element_bytes + byte));
  };
  const auto block_rows = [&](int64_t b) { return block_start(b) + at.head_offset; };
  constexpr int AHEAD = 2;
  for (int a = 0; a < AHEAD; ++a) prefetch_block(begin / at.block_size + a);
  for (int64_t b = begin / at.block_size; b * at.block_size < end; ++b) {
    prefetch_block(b + AHEAD);
    const int64_t first = std::max(begin, b * at.block_size), last = std::min(end, (b + 1) * at.block_size);
    const int64_t offset = first - b * at.block_size;  // the run's first row within its block
    const int64_t cache_row = static_cast<int64_t>(block_table[b]) * at.block_size + offset;
    fn(first, last - first, block_rows(b) + offset * at.token_stride,
       at.scales ? at.scales + cache_row * at.scale_stride : nullptr);
  }
}

#ifdef HAVE_VEC
// s[i] = e^(s[i] - peak) for i < n, peak = max s; returns Σ s[i].
inline float softmax_unnormalized(float* s, int64_t n, float& peak) {
  vec peak_v = vbroadcast(-std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES) peak_v = vmax(peak_v, vload(s + i));
  peak = hmax(peak_v);
  for (int64_t t = i; t < n; ++t) peak = std::max(peak, s[t]);
  vec sum_v = vzero();
  for (i = 0; i + LANES <= n; i += LANES) {
    const vec e = vexp(vfma(vload(s + i), vbroadcast(1.f), vbroadcast(-peak)));
    vstore(s + i, e);
    sum_v = vfma(e, vbroadcast(1.f), sum_v);
  }
  float sum = hsum(sum_v);
  for (; i < n; ++i) sum += s[i] = std::exp(s[i] - peak);
  return sum;
}
#else
inline float softmax_unnormalized(float* s, int64_t n, float& peak) {
  peak = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) peak = std::max(peak, s[i]);
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) {
    s[i] = std::exp(s[i] - peak);
    sum += s[i];
  }
  return sum;
}
#endif

// Plain loops, for any head size: scores[g * stride + t] = query_g · key_t.
template <typename scalar_t>
void score_keys_scalar(const float* query, int64_t group, int64_t head_dim, const scalar_t* k_cache,
                       const int32_t* block_table, int64_t begin, int64_t end, const Layout& at, float* scores,
                       int64_t stride) {
  for_each_run(k_cache, block_table, begin, end, at, head_dim,
               [&](int64_t t0, int64_t n, const scalar_t* rows, const float* row_scales) {
    for (int64_t i = 0; i < n; ++i) {
      const scalar_t* key = rows + i * at.token_stride;
      for (int64_t g = 0; g < group; ++g) {
        const float* qg = query + g * head_dim;
        float s = 0.f;
#pragma omp simd reduction(+ : s)
        for (int64_t d = 0; d < head_dim; ++d) s += qg[d] * to_float(key[d]);
        scores[g * stride + t0 + i] = row_scales ? s * row_scales[i * at.scale_stride] : s;
      }
    }
  });
}

// acc[g * head_dim + d] = Σ_t probs[g * stride + t] · value_t[d].
template <typename scalar_t>
void weigh_values_scalar(const float* probs, int64_t group, int64_t head_dim, const scalar_t* v_cache,
                         const int32_t* block_table, int64_t begin, int64_t end, const Layout& at, float* acc,
                         int64_t stride) {
  std::fill(acc, acc + group * head_dim, 0.f);
  for_each_run(v_cache, block_table, begin, end, at, head_dim,
               [&](int64_t t0, int64_t n, const scalar_t* rows, const float* row_scales) {
    for (int64_t i = 0; i < n; ++i) {
      const scalar_t* value = rows + i * at.token_stride;
      for (int64_t g = 0; g < group; ++g) {
        const float p = probs[g * stride + t0 + i] * (row_scales ? row_scales[i * at.scale_stride] : 1.f);
        float* a = acc + g * head_dim;
#pragma omp simd
        for (int64_t d = 0; d < head_dim; ++d) a[d] += p * to_float(value[d]);
      }
    }
  });
}

#ifdef HAVE_VEC

// The scalar loops' results, KB keys at a time: each key row is loaded once for up to QB query heads of
// its group (QB x KB accumulators, KB key vectors and a query vector in registers: AVX-512 4 x 4, AVX2 3 x 3,
// which takes a group of three, as SmolLM2's, in one pass), and the KB dot products of a head are summed
// across lanes together (one lane sum per key was most of the time the plain loops took).
template <typename scalar_t, int D>
void score_keys(const float* query, int64_t group, const scalar_t* k_cache, const int32_t* block_table,
                int64_t begin, int64_t end, const Layout& at, float* scores, int64_t stride) {
  constexpr int C = D / LANES, QB = REGISTERS == 32 ? 4 : 3, KB = QB;
  for_each_run(k_cache, block_table, begin, end, at, D, [&](int64_t t0, int64_t n, const scalar_t* rows,
                                                            const float* row_scales) {
    for (int64_t i = 0; i < n; i += KB) {
      const scalar_t* key[KB];
      for (int r = 0; r < KB; ++r) key[r] = rows + std::min<int64_t>(i + r, n - 1) * at.token_stride;
      for (int64_t g0 = 0; g0 < group; g0 += QB) {
        vec acc[QB][KB];
        for (int g = 0; g < QB; ++g)
          for (int r = 0; r < KB; ++r) acc[g][r] = vzero();
        for (int c = 0; c < C; ++c) {
          vec k[KB];
          for (int r = 0; r < KB; ++r) k[r] = vload(key[r] + c * LANES);
          for (int g = 0; g < QB; ++g) {
            if (g0 + g >= group) break;
            const vec qv = vload(query + (g0 + g) * D + c * LANES);
            for (int r = 0; r < KB; ++r) acc[g][r] = vfma(qv, k[r], acc[g][r]);
          }
        }
        for (int g = 0; g < QB && g0 + g < group; ++g) {
          float four[4];
          _mm_storeu_ps(four, sum4(acc[g][0], acc[g][1], acc[g][2], acc[g][KB - 1]));
          if (row_scales)
            for (int r = 0; r < KB; ++r) four[r] *= row_scales[std::min<int64_t>(i + r, n - 1) * at.scale_stride];
          std::copy(four, four + std::min<int64_t>(KB, n - i), scores + (g0 + g) * stride + t0 + i);
        }
      }
    }
  });
}

// The value pass: VB query heads' accumulators at a time, each value row loaded once for all of them. A
// row too wide for that (AVX2's 16 registers hold one head of 64 floats) is taken CP vectors at a time,
// so that a group of heads still shares each load: with one head at a time, a row was loaded once per
// query head of the group, and the pass waited on those loads (SmolLM2 on AVX2: 3 loads a row).
template <typename scalar_t, int D>
void weigh_values(const float* probs, int64_t group, const scalar_t* v_cache, const int32_t* block_table,
                  int64_t begin, int64_t end, const Layout& at, float* acc, int64_t stride) {
  constexpr int C = D / LANES;
  constexpr int CP = C >= REGISTERS / 2 ? 4 : C;  // vectors of a row per pass
  constexpr int VB = CP == C ? REGISTERS / 2 / C : (REGISTERS - 1) / (CP + 1);  // accumulators, weights, a row
  for (int c0 = 0; c0 < C; c0 += CP) {
    for (int64_t g0 = 0; g0 < group; g0 += VB) {
      const int64_t heads = std::min<int64_t>(VB, group - g0);
      vec sum[VB][CP];
      for (int g = 0; g < VB; ++g)
        for (int c = 0; c < CP; ++c) sum[g][c] = vzero();
      for_each_run(v_cache, block_table, begin, end, at, D, [&](int64_t t0, int64_t n, const scalar_t* rows,
                                                                const float* row_scales) {
        for (int64_t i = 0; i < n; ++i) {
          const scalar_t* value = rows + i * at.token_stride + c0 * LANES;
          const float row_scale = row_scales ? row_scales[i * at.scale_stride] : 1.f;
          vec p[VB];
          for (int g = 0; g < VB; ++g)
            p[g] = vbroadcast(g < heads ? probs[(g0 + g) * stride + t0 + i] * row_scale : 0.f);
          for (int c = 0; c < CP; ++c) {
            const vec v = vload(value + c * LANES);
            for (int g = 0; g < VB; ++g) sum[g][c] = vfma(p[g], v, sum[g][c]);
          }
        }
      });
      for (int64_t g = 0; g < heads; ++g)
        for (int c = 0; c < CP; ++c) vstore(acc + (g0 + g) * D + (c0 + c) * LANES, sum[g][c]);
    }
  }
}
#endif

// A part of a sequence's keys: positions [lo, hi). Where a sequence's keys come in several parts, each
// part's pass leaves its unnormalized results here — per query row and head, the weighted values, the
// peak score and the sum of e^(score - peak) — and merge_parts combines them.
struct Partial {
  float *acc, *peak, *sum;  // [rows, num_heads, head_dim], [rows, num_heads], [rows, num_heads]
};

// HEAD_DIM > 0: a head size the vector passes take (a multiple of the vector width); 0 reads it at run
// time and takes the plain loops. Keys at positions [lo, hi) only; with `partial`, the part's unnormalized
// results go there (rows counted from first_row) instead of the normalized output into `out`.
template <typename scalar_t, typename cache_t, int HEAD_DIM>
void attend(const scalar_t* q, const cache_t* k_cache, const cache_t* v_cache, const float* k_scales,
            const float* v_scales, scalar_t* out, const int32_t* block_table, int64_t context_len, int64_t q_len,
            int64_t first_row, int64_t kv_head, int64_t num_heads, int64_t num_kv_heads, int64_t runtime_head_dim,
            int64_t block_size, Layout::Prefetch prefetch, double scale, int64_t window, int64_t chunk, float softcap,
            int64_t lo, int64_t hi, const Partial* partial,
            std::vector<float>& scores, std::vector<float>& acc, std::vector<float>& query, std::vector<float>& norm) {
  const int64_t head_dim = HEAD_DIM > 0 ? HEAD_DIM : runtime_head_dim;
  const int64_t group = num_heads / num_kv_heads;
  const auto layout = [&](const float* scales) {  // keys' and values' differ only in their scales
    return Layout{block_size, num_kv_heads * head_dim, kv_head * head_dim, prefetch,
                  scales ? scales + kv_head : nullptr, num_kv_heads};
  };
  const Layout keys = layout(k_scales), values = layout(v_scales);
  scores.resize(group * context_len);
  acc.resize(group * head_dim);
  query.resize(group * head_dim);
  norm.resize(2 * group);  // each head's sum, then its peak
  for (int64_t j = 0; j < q_len; ++j) {
    const int64_t row = first_row + j;
    const int64_t pos = context_len - q_len + j;
    const int64_t begin = std::max({window > 0 ? pos - window + 1 : 0, chunk > 0 ? pos / chunk * chunk : 0, lo});
    const int64_t end = std::min(pos + 1, hi);
    if (begin >= end) {  // only a part's rows can see none of its keys
      for (int64_t g = 0; g < group; ++g) {
        const int64_t at_head = j * num_heads + kv_head * group + g;
        partial->peak[at_head] = -std::numeric_limits<float>::infinity(), partial->sum[at_head] = 0.f;
        std::fill_n(partial->acc + at_head * head_dim, head_dim, 0.f);
      }
      continue;
    }
    for (int64_t g = 0; g < group; ++g) {
      const scalar_t* qh = q + (row * num_heads + kv_head * group + g) * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) query[g * head_dim + d] = to_float(qh[d]) * static_cast<float>(scale);
    }
#ifdef HAVE_VEC
    if constexpr (HEAD_DIM > 0 && vec_loadable<cache_t>)
      score_keys<cache_t, HEAD_DIM>(query.data(), group, k_cache, block_table, begin, end, keys, scores.data(), context_len);
    else
#endif
      score_keys_scalar(query.data(), group, head_dim, k_cache, block_table, begin, end, keys, scores.data(), context_len);
    for (int64_t g = 0; g < group; ++g) {
      float* sg = scores.data() + g * context_len;
      if (softcap > 0.f)
        for (int64_t t = begin; t < end; ++t) sg[t] = softcap * std::tanh(sg[t] / softcap);
      norm[g] = softmax_unnormalized(sg + begin, end - begin, norm[group + g]);
    }
#ifdef HAVE_VEC
    if constexpr (HEAD_DIM > 0 && vec_loadable<cache_t>)
      weigh_values<cache_t, HEAD_DIM>(scores.data(), group, v_cache, block_table, begin, end, values, acc.data(), context_len);
    else
#endif
      weigh_values_scalar(scores.data(), group, head_dim, v_cache, block_table, begin, end, values, acc.data(), context_len);
    for (int64_t g = 0; g < group; ++g) {
      if (partial) {
        const int64_t at_head = j * num_heads + kv_head * group + g;
        partial->sum[at_head] = norm[g], partial->peak[at_head] = norm[group + g];
        std::copy_n(acc.data() + g * head_dim, head_dim, partial->acc + at_head * head_dim);
        continue;
      }
      const float inverse = 1.f / norm[g];
      scalar_t* o = out + (row * num_heads + kv_head * group + g) * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) o[d] = static_cast<scalar_t>(acc[g * head_dim + d] * inverse);
    }
  }
}

// Where a step has fewer (sequence, KV head) pairs than twice the threads, a sequence's keys are split into
// parts of PART positions, each part a work item of its own, so that even one sequence's attention is shared
// by the threads (one SmolLM2 stream has three KV heads for two threads: one thread did two of them while the
// other waited). Larger batches share out without it, and split they ran a few percent slower (the partial
// results written and merged). A split sequence's output differs from the unsplit one in the last bits.
constexpr int64_t PART = 256;

inline int64_t parts_of(int64_t context_len, bool split) {
  return split ? std::max<int64_t>(1, (context_len + PART - 1) / PART) : 1;
}

// out for query rows [first_row, first_row + q_len) of a split sequence: each head's parts combined, in
// part order — Σ_p e^(peak_p - peak) acc_p / Σ_p e^(peak_p - peak) sum_p.
template <typename scalar_t>
void merge_parts(scalar_t* out, const Partial& partial, int64_t parts, int64_t q_len, int64_t first_row,
                 int64_t num_heads, int64_t head_dim) {
  const int64_t part_rows = q_len * num_heads;  // a part's (row, head) entries
  std::vector<float> total(head_dim);
  for (int64_t e = 0; e < part_rows; ++e) {
    float peak = -std::numeric_limits<float>::infinity();
    for (int64_t p = 0; p < parts; ++p) peak = std::max(peak, partial.peak[p * part_rows + e]);
    float sum = 0.f;
    std::fill(total.begin(), total.end(), 0.f);
    for (int64_t p = 0; p < parts; ++p) {
      const int64_t at_part = p * part_rows + e;
      if (partial.sum[at_part] == 0.f) continue;
      const float weight = std::exp(partial.peak[at_part] - peak);
      sum += weight * partial.sum[at_part];
      const float* a = partial.acc + at_part * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) total[d] += weight * a[d];
    }
    scalar_t* o = out + (first_row * num_heads + e) * head_dim;
    for (int64_t d = 0; d < head_dim; ++d) o[d] = static_cast<scalar_t>(total[d] / sum);
  }
}

}  // namespace

PagedRows paged_rows(const torch::Tensor& block_tables, const torch::Tensor& context_lens,
                     const torch::Tensor& query_starts) {
  TORCH_CHECK(block_tables.scalar_type() == torch::kInt32 && context_lens.scalar_type() == torch::kInt32 &&
                  query_starts.scalar_type() == torch::kInt32, "paged_attention: metadata must be int32");
  TORCH_CHECK(block_tables.is_contiguous() && block_tables.dim() == 2 && context_lens.is_contiguous() &&
                  query_starts.is_contiguous() && query_starts.numel() == context_lens.numel() + 1 &&
                  block_tables.size(0) == context_lens.numel(),
              "paged_attention: block_tables [n, max_blocks], context_lens [n] and query_starts [n + 1] expected");
  return {block_tables.data_ptr<int32_t>(), block_tables.size(1), context_lens.data_ptr<int32_t>(),
          query_starts.data_ptr<int32_t>(), context_lens.numel()};
}

template <typename scalar_t, typename cache_t>
void paged_attention_rows(scalar_t* out, const scalar_t* q, const cache_t* k_cache, const cache_t* v_cache,
                          const float* k_scales, const float* v_scales, const PagedRows& rows,
                          const AttentionShape& shape) {
  // torch's own thread pool (so torch.set_num_threads holds), items handed out one at a time because
  // sequences differ in length. An item is a sequence's keys (or a part of them, parts_of) for its KV heads, one
  // after another (whole blocks read once, by the first), where there are parts enough to share out; else
  // for one KV head.
  const int64_t n = rows.sequences, num_kv_heads = shape.num_kv_heads, num_heads = shape.num_heads;
  const int64_t threads = at::get_num_threads();
  struct Item {
    int64_t sequence, part;
  };
  struct Buffers {
    std::vector<Item> parts;
    std::vector<int64_t> partial_start;  // where each split sequence's entries begin
    std::vector<float> acc, peak, sum;  // the split sequences' partial results
  };
  thread_local Buffers caller_buffers;  // the caller's, kept from call to call: the workers read it through `b`
  Buffers& b = caller_buffers;
  std::vector<Item>& parts = b.parts;
  std::vector<int64_t>& partial_start = b.partial_start;
  parts.clear();
  partial_start.assign(n + 1, 0);
  const bool split = n * num_kv_heads < 2 * threads;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t count = parts_of(rows.context_lens[i], split);
    const int64_t q_len = rows.query_starts[i + 1] - rows.query_starts[i];
    for (int64_t p = 0; p < count; ++p) parts.push_back({i, p});
    partial_start[i + 1] = partial_start[i] + (count > 1 ? count * q_len * num_heads : 0);
  }
  b.acc.resize(partial_start[n] * shape.head_dim), b.peak.resize(partial_start[n]), b.sum.resize(partial_start[n]);
  const auto partial_of = [&](int64_t entry) {
    return Partial{b.acc.data() + entry * shape.head_dim, b.peak.data() + entry, b.sum.data() + entry};
  };
  const int64_t heads_per_item = static_cast<int64_t>(parts.size()) >= 4 * threads ? num_kv_heads : 1;
  const int64_t items = static_cast<int64_t>(parts.size()) * num_kv_heads / heads_per_item;
  auto run = shape.head_dim == 64    ? attend<scalar_t, cache_t, 64>
             : shape.head_dim == 128 ? attend<scalar_t, cache_t, 128>
             : shape.head_dim == 256 ? attend<scalar_t, cache_t, 256>
                                     : attend<scalar_t, cache_t, 0>;
  std::atomic<int64_t> next{0};
  at::parallel_for(0, std::min(threads, items), 1, [&](int64_t, int64_t) {
    thread_local std::vector<float> scores, acc, query, norm;
    for (int64_t item = next++; item < items; item = next++) {
      const Item part = parts[item * heads_per_item / num_kv_heads];
      const int64_t i = part.sequence, first = item * heads_per_item % num_kv_heads;
      const int64_t start = rows.query_starts[i], q_len = rows.query_starts[i + 1] - start;
      const bool parted = partial_start[i + 1] > partial_start[i];
      const Partial partial = partial_of(partial_start[i] + part.part * q_len * num_heads);
      const int64_t lo = part.part * PART, hi = parted ? lo + PART : rows.context_lens[i];
      for (int64_t h = first; h < first + heads_per_item; ++h) {
        const Layout::Prefetch prefetch = heads_per_item > 1 && h == first ? Layout::BLOCK : Layout::HEAD;
        run(q, k_cache, v_cache, k_scales, v_scales, out, rows.block_tables + i * rows.max_blocks, rows.context_lens[i],
            q_len, start, h, num_heads, num_kv_heads, shape.head_dim, shape.block_size, prefetch, shape.scale,
            shape.window, shape.chunk, shape.softcap, lo, hi, parted ? &partial : nullptr, scores, acc, query, norm);
      }
    }
  });
  for (int64_t i = 0; i < n; ++i) {
    if (partial_start[i + 1] == partial_start[i]) continue;
    merge_parts(out, partial_of(partial_start[i]), parts_of(rows.context_lens[i], split),
                rows.query_starts[i + 1] - rows.query_starts[i], rows.query_starts[i], num_heads, shape.head_dim);
  }
}

#define INSTANTIATE(Q, C)                                                                                 \
  template void paged_attention_rows(Q*, const Q*, const C*, const C*, const float*, const float*, const PagedRows&, \
                                     const AttentionShape&);
INSTANTIATE(float, float)
INSTANTIATE(c10::BFloat16, c10::BFloat16)
INSTANTIATE(c10::Half, c10::Half)
INSTANTIATE(float, c10::BFloat16)
INSTANTIATE(float, c10::Half)
INSTANTIATE(float, int8_t)
INSTANTIATE(c10::BFloat16, int8_t)
INSTANTIATE(c10::Half, int8_t)
#undef INSTANTIATE

// out, q: [tokens, num_heads, head_dim]; caches: [num_blocks, block_size, num_kv_heads, head_dim], an int8
// one with its scales [num_blocks, block_size, num_kv_heads, 1]; block_tables: int32 [n, max_blocks];
// context_lens: int32 [n]; query_starts: int32 [n + 1].
void paged_attention(torch::Tensor out, torch::Tensor q, torch::Tensor k_cache, torch::Tensor v_cache,
                     torch::Tensor block_tables, torch::Tensor context_lens, torch::Tensor query_starts,
                     double scale, int64_t window, double softcap, int64_t chunk,
                     const std::optional<torch::Tensor>& k_scale, const std::optional<torch::Tensor>& v_scale) {
  TORCH_CHECK(q.is_contiguous() && out.is_contiguous() && k_cache.is_contiguous() && v_cache.is_contiguous(),
              "paged_attention: tensors must be contiguous");
  TORCH_CHECK(q.scalar_type() == out.scalar_type() && k_cache.scalar_type() == v_cache.scalar_type() &&
                  cache_pairs_with(q.scalar_type(), k_cache.scalar_type()),
              "paged_attention: q and out must share a dtype (float32, bfloat16 or float16) and the caches q's, int8, "
              "or under float32 q bfloat16 or float16");
  const auto [k_scales, v_scales] = cache_scales(k_cache, v_cache, k_scale, v_scale);
  const PagedRows rows = paged_rows(block_tables, context_lens, query_starts);
  const AttentionShape shape{q.size(1), k_cache.size(2), q.size(2), k_cache.size(1), scale, window,
                             static_cast<float>(softcap), chunk};
  dispatch_cache_pair(q.scalar_type(), k_cache.scalar_type(), [&](auto q_type, auto cache_type) {
    using q_t = decltype(q_type);
    using cache_t = decltype(cache_type);
    paged_attention_rows(out.data_ptr<q_t>(), q.data_ptr<q_t>(), k_cache.data_ptr<cache_t>(),
                         v_cache.data_ptr<cache_t>(), k_scales, v_scales, rows, shape);
  });
}

TORCH_LIBRARY(agentforge, m) {
  m.def("paged_attention(Tensor(a!) out, Tensor q, Tensor k_cache, Tensor v_cache, Tensor block_tables, "
        "Tensor context_lens, Tensor query_starts, float scale, int window, float softcap, int chunk, "
        "Tensor? k_scale=None, Tensor? v_scale=None) -> ()");
  m.impl("paged_attention", torch::kCPU, &paged_attention);
}
