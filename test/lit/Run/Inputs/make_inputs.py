"""Writes random q/k/v .npy files with the example's head shapes, without numpy.

usage: make_inputs.py DIR NQ NK
"""
import os
import random
import struct
import sys


def save(path, shape):
    n = 1
    for d in shape:
        n *= d
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % ", ".join(map(str, shape))
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack("<%df" % n, *(random.gauss(0, 1) for _ in range(n))))


out, nq, nk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(out, exist_ok=True)
random.seed(nq * 1000 + nk)
save(os.path.join(out, "q.npy"), (1, 32, nq, 128))
save(os.path.join(out, "k.npy"), (1, 8, nk, 128))
save(os.path.join(out, "v.npy"), (1, 8, nk, 128))
