// RUN: deltaflow-opt %s -split-input-file -verify-diagnostics

func.func @budget(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{policy 'token-select': budget must be an integer in [1, 16777216], got 0}}
  %i = attn.select %q, %k policy(#attn.token_select<budget = 0, sinks = 4, window = 16, chunk = 32>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x1x?x1xi32>
  return
}

// -----

func.func @sinks(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{policy 'token-select': sinks must be an integer in [0, 16777216], got -1}}
  %i = attn.select %q, %k policy(#attn.token_select<budget = 8, sinks = -1, window = 16, chunk = 32>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x1x?x8xi32>
  return
}

// -----

func.func @p(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{policy 'adaptive': p must be in (0, 1], got 1.5}}
  %i = attn.select %q, %k policy(#attn.adaptive<p = 1.5, min_budget = 8, max_budget = 64, sinks = 4, window = 16, chunk = 32>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x2x?x64xi32>
  return
}

// -----

func.func @minmax(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{policy 'adaptive': max-budget (4) must be >= min-budget (8)}}
  %i = attn.select %q, %k policy(#attn.adaptive<p = 0.9, min_budget = 8, max_budget = 4, sinks = 4, window = 16, chunk = 32>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x2x?x4xi32>
  return
}

// -----

func.func @page(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{policy 'block-topk': budget (8) must hold at least one page of 16}}
  %i = attn.select %q, %k policy(#attn.block_topk<budget = 8, page = 16, sinks = 4, window = 16, chunk = 32>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x2x?x8xi32>
  return
}

// -----

func.func @plugin_params(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{policy 'dilated' needs an integer 'chunk' parameter}}
  %i = attn.select %q, %k policy(#attn.policy<"dilated", {sinks = 4 : i64, window = 16 : i64}>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x1x?x8xi32>
  return
}

// -----

func.func @select_type(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{'attn.select' op result must be a rank-4 tensor of i32 [batch, heads, chunks, slots], got 'tensor<1x1x?x8xf32>'}}
  %i = attn.select %q, %k policy(#attn.token_select<budget = 8, sinks = 4, window = 16, chunk = 32>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x1x?x8xf32>
  return
}

// -----

func.func @select_heads(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{'attn.select' op result heads must be 1 (shared) or the 2 key/value heads, got 4}}
  %i = attn.select %q, %k policy(#attn.token_select<budget = 8, sinks = 4, window = 16, chunk = 32>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x4x?x8xi32>
  return
}

// -----

func.func @select_chunks(%q: tensor<1x8x70x64xf32>, %k: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{'attn.select' op result has 2 chunks but 70 query rows in chunks of 32 make 3}}
  %i = attn.select %q, %k policy(#attn.token_select<budget = 8, sinks = 4, window = 16, chunk = 32>) : tensor<1x8x70x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x1x2x8xi32>
  return
}

// -----

func.func @sparse_geometry(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>, %v: tensor<1x2x?x64xf32>) {
  %i = attn.select %q, %k policy(#attn.token_select<budget = 8, sinks = 4, window = 16, chunk = 32>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x1x?x8xi32>
  // expected-error @+1 {{'attn.sparse_attention' op sinks/window/chunk (4, 32, 32) differ from its selection's (4, 16, 32)}}
  %o = attn.sparse_attention %q, %k, %v indices(%i : tensor<1x1x?x8xi32>) sinks(4) window(32) chunk(32) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return
}

// -----

func.func @sparse_chunk(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>, %v: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{'attn.sparse_attention' op needs sinks >= 0, window >= 0 and chunk > 0, got 4, 16, 0}}
  %o = attn.sparse_attention %q, %k, %v sinks(4) window(16) chunk(0) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return
}

// -----

func.func @sparse_indices(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>, %v: tensor<1x2x?x64xf32>, %i: tensor<1x1x?x8xf32>) {
  // expected-error @+1 {{'attn.sparse_attention' op indices must be a rank-4 i32 tensor, got 'tensor<1x1x?x8xf32>'}}
  %o = attn.sparse_attention %q, %k, %v indices(%i : tensor<1x1x?x8xf32>) sinks(4) window(16) chunk(32) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return
}

// -----

func.func @rows_stride(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>, %v: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{'attn.dense_rows' op stride must be > 0, got 0}}
  %r = attn.dense_rows %q, %k, %v stride(0) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return
}

// -----

func.func @delta_rows(%s: tensor<1x8x70x64xf32>, %r: tensor<1x8x100x64xf32>) {
  // expected-error @+1 {{'attn.delta_correct' op dense rows has 100 rows; stride 16 over 70 query rows needs 148}}
  %o = attn.delta_correct %s, %r stride(16) : tensor<1x8x70x64xf32>, tensor<1x8x100x64xf32>
  return
}

// -----

func.func @delta_heads(%s: tensor<1x8x?x64xf32>, %r: tensor<1x4x?x64xf32>) {
  // expected-error @+1 {{'attn.delta_correct' op dimension 1 differs: 8 (sparse) vs 4 (rows)}}
  %o = attn.delta_correct %s, %r stride(16) : tensor<1x8x?x64xf32>, tensor<1x4x?x64xf32>
  return
}

// -----

func.func @delta_stride(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>, %v: tensor<1x2x?x64xf32>, %s: tensor<1x8x?x64xf32>) {
  %r = attn.dense_rows %q, %k, %v stride(16) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  // expected-error @+1 {{'attn.delta_correct' op stride 32 differs from its dense rows' stride 16}}
  %o = attn.delta_correct %s, %r stride(32) : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>
  return
}

// -----

func.func @cache_write_f16_rows_into_f32(%c: tensor<1x2x?x64xf32>, %n: tensor<1x2x3x64xf16>) {
  // expected-error @+1 {{cannot write 'f16' rows into a 'f32' cache (same type, or f32 rows into an f16 cache)}}
  %r = attn.cache_write %c, %n : tensor<1x2x?x64xf32>, tensor<1x2x3x64xf16>
  return
}

// -----

// In-tree policies without an attribute of their own are checked by the
// same registry bounds as the typed ones.
func.func @strided_params(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{policy 'strided': stride must be an integer in [1, 1048576], got 0}}
  %i = attn.select %q, %k policy(#attn.policy<"strided", {budget = 8 : i64, chunk = 32 : i64, stride = 0 : i64, sinks = 4 : i64, window = 16 : i64}>) : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x1x?x8xi32>
  return
}
