# Second run of the session: where the time of the Llama-3-8B-shaped HF
# checkpoint goes (generate --profile, timed per kernel), after packing
# KV-cache views into a buffer sized once (run h regrew it every step);
# then the Llama example with bf16 attention again, and without --profile.
set -x
export OUT=${OUT:-/tmp}
timeout 200 bash bench/gpu/run.sh hf-llama3 --prompt 8192 --decode 16 --generate-args=--profile > $OUT/hf-llama3-profile.log 2>&1; echo hf-llama3 profile rc $?
grep -E "ms |prefill|decode|kernel|rel L2|checks" $OUT/hf-llama3-profile.log | grep -vE "^\[|^ +[0-9]+ +[0-9]+ +[0-9]+ +(yes|NO)" | head -70
timeout 120 bash bench/gpu/run.sh llama --weights bf16 --attn bf16 --prompt 8192 --decode 32 > $OUT/llama-8192-bf16.log 2>&1; echo llama attn bf16 rc $?
mv $OUT/llama.json $OUT/llama-8192-attn-bf16.json 2>/dev/null
grep -E "deltaflow dense|deltaflow sparse|PyTorch eager|dense vs PyTorch|worst rel|checks|FAIL|rror" $OUT/llama-8192-bf16.log | tail -10
