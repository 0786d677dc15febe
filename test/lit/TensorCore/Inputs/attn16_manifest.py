"""Summarises, per entry of a Llama-style module's manifest, how its first
attention is fed: the KV caches' dtypes, the attention kernel's operand and
result dtypes and variants, the kernels that produce Q/K/V and the one that
reads its output (llama-attn16.test)."""
import json
import sys

m = json.load(open(sys.argv[1]))
for e in m["entries"]:
    dtype = {t["name"]: t["dtype"] for t in e["inputs"] + e["outputs"] + e.get("temporaries", [])}
    producer = {o: k for k in e["kernels"] for o in k["outputs"]}
    att = next(k for k in e["kernels"] if k["kind"] == "attention")
    q, kc, vc = att["inputs"][:3]
    caches = [t["dtype"] for t in e["inputs"] if t["name"].startswith("cache.")][:2]
    # K/V reach attention through the cache: the cache write's new rows.
    rows = [w["inputs"][0] for w in e["kernels"] if w["kind"] == "cache_write" and w["outputs"][0] in (kc, vc)]
    feeds = [producer[x] for x in [q] + rows]
    ok = all(f["kind"] == "graph" and dtype[f["outputs"][0]] == att["params"]["dtype"] for f in feeds)
    out = att["outputs"][0]
    readers = [k for k in e["kernels"] if out in k["inputs"]]
    widened = all(k["kind"] == "graph" for k in readers) and readers
    print(f"{e['name']}: caches {' '.join(caches)}; attention q/k/v {dtype[q]} {dtype[kc]} {dtype[vc]} -> "
          f"{dtype[out]} via {','.join(v['symbol'] for v in att['variants'])}; q, k, v from "
          f"{'graph kernels writing ' + att['params']['dtype'] if ok and len(feeds) == 3 else 'elsewhere'}; "
          f"output {'widened by a graph kernel' if widened else 'read elsewhere'}")
