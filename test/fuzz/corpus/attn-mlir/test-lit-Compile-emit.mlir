// REQUIRES: deltaflow-compile
// RUN: rm -rf %t && mkdir -p %t

// --emit=mlir shows the graph after deltaflow's passes.
// RUN: deltaflow-compile %s -o %t/m --emit=mlir && FileCheck %s --check-prefix=MLIR < %t/m.mlir
// MLIR-LABEL: func.func @attention
// MLIR: attn.attention %{{.+}}, %{{.+}}, %{{.+}} causal offset(5) : tensor<1x4x?x64xf32>

// --emit=halide-stmt shows each kernel's lowered Halide statements.
// RUN: deltaflow-compile %s -o %t/m --emit=halide-stmt && FileCheck %s --check-prefix=STMT < %t/m.stmt
// STMT-DAG: func attention_k0_prefill
// STMT-DAG: func attention_k0_decode
// STMT-DAG: produce state

// --emit=so writes the library, the header and the manifest, and says how long.
// RUN: deltaflow-compile %s -o %t/m --timing 2> %t/timing.txt
// RUN: FileCheck %s --check-prefix=TIMING < %t/timing.txt
// TIMING: parse + verify
// TIMING: halide: build + lower attention_k0
// TIMING: link: out.so
// TIMING: total
// RUN: test -f %t/m.so && test -f %t/m.h
// RUN: FileCheck %s --check-prefix=HEADER < %t/m.h
// HEADER: int attention_k0_prefill(struct halide_buffer_t *_q_buffer, struct halide_buffer_t *_k_buffer, struct halide_buffer_t *_v_buffer, struct halide_buffer_t *_out_buffer);
// HEADER: int attention_k0_decode(
// RUN: FileCheck %s --check-prefix=MANIFEST < %t/m.manifest.json
// MANIFEST: "format": "deltaflow-module"
// MANIFEST: "name": "attention"
// MANIFEST: "inputs": [
// MANIFEST: "name": "q"
// MANIFEST: "shape": [
// MANIFEST-NEXT: 1,
// MANIFEST-NEXT: 4,
// MANIFEST-NEXT: -1,
// MANIFEST-NEXT: 64
// MANIFEST: "outputs": [
// MANIFEST: "name": "out"
// MANIFEST: "like": "q"
// MANIFEST: "kernels": [
// MANIFEST: "loc": "{{.*}}emit.mlir:{{[0-9]+}}:{{[0-9]+}}"
// MANIFEST: "causal": true
// MANIFEST: "offset": 5
// MANIFEST: "symbol": "attention_k0_decode"
// MANIFEST: "symbol": "attention_k0_prefill"

// --emit=object leaves the kernel and runtime objects for the user's linker.
// RUN: deltaflow-compile %s -o %t/obj --emit=object --target=x86-64-avx2
// RUN: test -f %t/obj.o && test -f %t/obj.runtime.o && test -f %t/obj.h && test ! -f %t/obj.so

// Every x86 target compiles.
// RUN: deltaflow-compile %s -o %t/avx512 --target=x86-64-avx512
// RUN: FileCheck %s --check-prefix=AVX512 < %t/avx512.manifest.json
// AVX512: "halide_target": "x86-64-linux-{{.*}}avx512

func.func @attention(%q: tensor<1x4x?x64xf32> {deltaflow.name = "q"},
                     %k: tensor<1x2x?x64xf32> {deltaflow.name = "k"},
                     %v: tensor<1x2x?x64xf32> {deltaflow.name = "v"})
    -> (tensor<1x4x?x64xf32> {deltaflow.name = "out"}) {
  %o = attn.attention %q, %k, %v causal offset(5) : tensor<1x4x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return %o : tensor<1x4x?x64xf32>
}
