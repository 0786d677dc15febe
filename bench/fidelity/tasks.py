"""RULER-style long-context retrieval tasks over byte-level text.

Shared by the trainer (bench/fidelity/train.py, on the device) and the
fidelity harness (deltaflow-bench fidelity's prompts); pure Python, and
deterministic for a seed: the same (task, length, seed) gives the same bytes
everywhere.

A sample is `prompt` (filler text with needles at random depths, then
"\\n\\nQuestion: ...\\nAnswer:") and `answer` (" VALUE\\n"). Tasks (after
RULER, Hsieh et al. 2024):
  needle    one pass key (6 digits) stated once, asked at the end;
  multikey  4 "special magic number for WORD" needles, one asked;
  kv        8 "key HEX: value HEX" pairs, one key asked (UUID-style lookup);
  vartrack  VAR A = number, VAR B = VAR A, VAR C = VAR B (two hops) plus a
            distracting chain; the value of the last variable asked.
"""
import random

TASKS = ("needle", "multikey", "kv", "vartrack")
SYLLABLES = [c + v for c in "bdfghklmnprstvz" for v in "aeiou"]


def word(rng):
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))


def hexword(rng, n=8):
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def needles_of(task, rng):
    """(needle sentences, question, answer value)."""
    if task == "needle":
        k = str(rng.randint(100000, 999999))
        return [f"The pass key is {k}. Remember it. {k} is the pass key."], "What is the pass key?", k
    if task == "multikey":
        words = set()
        while len(words) < 4:
            words.add(word(rng))
        pairs = [(w, str(rng.randint(100000, 999999))) for w in sorted(words)]
        rng.shuffle(pairs)
        w, v = rng.choice(pairs)
        return ([f"The special magic number for {a} is {b}." for a, b in pairs],
                f"What is the special magic number for {w}?", v)
    if task == "kv":
        pairs = [(hexword(rng), hexword(rng)) for _ in range(8)]
        k, v = rng.choice(pairs)
        return [f"key {a}: value {b}." for a, b in pairs], f"What is the value of key {k}?", v
    if task == "vartrack":
        names = set()
        while len(names) < 6:
            names.add(word(rng).upper())
        names = sorted(names)
        rng.shuffle(names)
        a, b, c, x, y, z = names
        v, w = str(rng.randint(10000, 99999)), str(rng.randint(10000, 99999))
        chain = [f"VAR {a} = {v}.", f"VAR {b} = VAR {a}.", f"VAR {c} = VAR {b}."]
        other = [f"VAR {x} = {w}.", f"VAR {y} = VAR {x}.", f"VAR {z} = VAR {y}."]
        # Each chain keeps its order; the two interleave at random.
        merged = []
        while chain or other:
            src = chain if (chain and (not other or rng.random() < 0.5)) else other
            merged.append(src.pop(0))
        return merged, f"What is the value of VAR {c}?", v
    raise ValueError(f"unknown task {task!r} (tasks: {', '.join(TASKS)})")


def sample(task, length, rng, filler):
    """(prompt bytes, answer bytes): len(prompt) == length (bytes = tokens)."""
    needles, question, value = needles_of(task, rng)
    tail = f"\n\nQuestion: {question}\nAnswer:".encode()
    pieces = [(" " + n + " ").encode() for n in needles]
    budget = length - len(tail) - sum(len(p) for p in pieces)
    if budget < 16:
        raise ValueError(f"length {length} is too short for task {task}")
    start = rng.randrange(0, len(filler) - budget)
    text = filler[start:start + budget]
    cuts = sorted(rng.randrange(0, budget + 1) for _ in pieces)
    out, prev = [], 0
    for cut, piece in zip(cuts, pieces):
        out += [text[prev:cut], piece]
        prev = cut
    out += [text[prev:], tail]
    prompt = b"".join(out)
    assert len(prompt) == length
    return prompt, f" {value}\n".encode()


def eval_set(task, length, count, seed, filler):
    """The fixed evaluation prompts of (task, length)."""
    rng = random.Random(f"{seed}:{task}:{length}")
    return [sample(task, length, rng, filler) for _ in range(count)]
