// Every sparse kernel on its own, for the float64 reference tests
// (SparseKernelTest.cpp): Hq 8, Hkv 2 (groups of 4), head dim 64.
// Selection: sinks 8, window 32, chunk 32.

func.func @select_token(%q: tensor<1x8x?x64xf32> {deltaflow.name = "q"},
                        %k: tensor<1x2x?x64xf32> {deltaflow.name = "k"})
    -> (tensor<1x1x?x48xi32> {deltaflow.name = "idx"}) {
  %i = attn.select %q, %k policy(#attn.token_select<budget = 48, sinks = 8, window = 32, chunk = 32>)
      : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x1x?x48xi32>
  return %i : tensor<1x1x?x48xi32>
}

func.func @select_adaptive(%q: tensor<1x8x?x64xf32> {deltaflow.name = "q"},
                           %k: tensor<1x2x?x64xf32> {deltaflow.name = "k"})
    -> (tensor<1x2x?x64xi32> {deltaflow.name = "idx"}) {
  %i = attn.select %q, %k policy(#attn.adaptive<p = 0.9, min_budget = 8, max_budget = 64, sinks = 8, window = 32, chunk = 32>)
      : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x2x?x64xi32>
  return %i : tensor<1x2x?x64xi32>
}

func.func @select_block(%q: tensor<1x8x?x64xf32> {deltaflow.name = "q"},
                        %k: tensor<1x2x?x64xf32> {deltaflow.name = "k"})
    -> (tensor<1x2x?x48xi32> {deltaflow.name = "idx"}) {
  %i = attn.select %q, %k policy(#attn.block_topk<budget = 48, page = 8, sinks = 8, window = 32, chunk = 32>)
      : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32> -> tensor<1x2x?x48xi32>
  return %i : tensor<1x2x?x48xi32>
}

// Sparse attention over indices given as an input: shared, and per KV head.
func.func @sparse_shared(%q: tensor<1x8x?x64xf32> {deltaflow.name = "q"},
                         %k: tensor<1x2x?x64xf32> {deltaflow.name = "k"},
                         %v: tensor<1x2x?x64xf32> {deltaflow.name = "v"},
                         %idx: tensor<1x1x?x48xi32> {deltaflow.name = "idx"})
    -> (tensor<1x8x?x64xf32> {deltaflow.name = "out"}, tensor<1x8x?xf32> {deltaflow.name = "lse"}) {
  %o, %l = attn.sparse_attention %q, %k, %v indices(%idx : tensor<1x1x?x48xi32>) sinks(8) window(32) chunk(32) lse
      : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return %o, %l : tensor<1x8x?x64xf32>, tensor<1x8x?xf32>
}

func.func @sparse_per_head(%q: tensor<1x8x?x64xf32> {deltaflow.name = "q"},
                           %k: tensor<1x2x?x64xf32> {deltaflow.name = "k"},
                           %v: tensor<1x2x?x64xf32> {deltaflow.name = "v"},
                           %idx: tensor<1x2x?x64xi32> {deltaflow.name = "idx"})
    -> (tensor<1x8x?x64xf32> {deltaflow.name = "out"}) {
  %o = attn.sparse_attention %q, %k, %v indices(%idx : tensor<1x2x?x64xi32>) sinks(8) window(32) chunk(32) scale(0.2)
      : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return %o : tensor<1x8x?x64xf32>
}

// Window + sinks with a chunk that 16 does not divide (query tile 8).
func.func @sparse_window(%q: tensor<1x8x?x64xf32> {deltaflow.name = "q"},
                         %k: tensor<1x2x?x64xf32> {deltaflow.name = "k"},
                         %v: tensor<1x2x?x64xf32> {deltaflow.name = "v"})
    -> (tensor<1x8x?x64xf32> {deltaflow.name = "out"}) {
  %o = attn.sparse_attention %q, %k, %v sinks(5) window(20) chunk(24)
      : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return %o : tensor<1x8x?x64xf32>
}

// Per-query sliding windows whatever the chunk: (sinks, window, chunk) =
// (0, 7, 1), (16, 64, 512), (3, 100, 8).
func.func @window_a(%q: tensor<1x8x?x64xf32> {deltaflow.name = "q"},
                    %k: tensor<1x2x?x64xf32> {deltaflow.name = "k"},
                    %v: tensor<1x2x?x64xf32> {deltaflow.name = "v"})
    -> (tensor<1x8x?x64xf32> {deltaflow.name = "out"}) {
  %o = attn.sparse_attention %q, %k, %v sinks(0) window(7) chunk(1)
      : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return %o : tensor<1x8x?x64xf32>
}
func.func @window_b(%q: tensor<1x8x?x64xf32> {deltaflow.name = "q"},
                    %k: tensor<1x2x?x64xf32> {deltaflow.name = "k"},
                    %v: tensor<1x2x?x64xf32> {deltaflow.name = "v"})
    -> (tensor<1x8x?x64xf32> {deltaflow.name = "out"}) {
  %o = attn.sparse_attention %q, %k, %v sinks(16) window(64) chunk(512)
      : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return %o : tensor<1x8x?x64xf32>
}
func.func @window_c(%q: tensor<1x8x?x64xf32> {deltaflow.name = "q"},
                    %k: tensor<1x2x?x64xf32> {deltaflow.name = "k"},
                    %v: tensor<1x2x?x64xf32> {deltaflow.name = "v"})
    -> (tensor<1x8x?x64xf32> {deltaflow.name = "out"}) {
  %o = attn.sparse_attention %q, %k, %v sinks(3) window(100) chunk(8)
      : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return %o : tensor<1x8x?x64xf32>
}

func.func @dense_rows(%q: tensor<1x8x?x64xf32> {deltaflow.name = "q"},
                      %k: tensor<1x2x?x64xf32> {deltaflow.name = "k"},
                      %v: tensor<1x2x?x64xf32> {deltaflow.name = "v"})
    -> (tensor<1x8x?x64xf32> {deltaflow.name = "rows"}) {
  %r = attn.dense_rows %q, %k, %v stride(16)
      : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return %r : tensor<1x8x?x64xf32>
}

func.func @delta(%s: tensor<1x8x?x64xf32> {deltaflow.name = "sparse"},
                 %r: tensor<1x8x?x64xf32> {deltaflow.name = "rows"})
    -> (tensor<1x8x?x64xf32> {deltaflow.name = "out"}) {
  %o = attn.delta_correct %s, %r stride(16) : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>
  return %o : tensor<1x8x?x64xf32>
}
