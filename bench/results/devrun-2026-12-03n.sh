# After the refactor 2e86b5e (planPack(const Tensor&), markHostWritten): the Llama example with bf16 attention at 2048 on the H200, to check the GPU paths CI cannot run.
timeout 150 bash bench/gpu/run.sh llama --weights bf16 --attn bf16 --prompt 2048 --decode 32
