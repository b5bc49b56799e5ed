"""Python websockets in tether-bench's deflate scenario (run by the harness, not by hand).

    python3 deflate_bench.py DIR BUDGET_MS REPS

DIR holds, per case, the files the harness wrote: `<size>.texts.json` (the texts, in order)
and `<size>.frames` (the masked, compressed client frames the Rust libraries decode). The
measured path is websockets' own sans-IO layer, the same work as the Rust libraries':
compress = `Frame(TEXT).serialize(mask=False, extensions=[PerMessageDeflate])` (deflate,
header); decompress = `Frame.parse(..., mask=True, extensions=[...])` over a `StreamReader`
(header, unmasking, inflate) and a UTF-8 decode of the text. The agreement is the Rust
libraries': context takeover both ways, 15-bit windows, zlib level 1, no threshold.

Prints one line per sample: SAMPLE <case> <rep> <messages per CPU-second> <ns per message>
[<wire ratio>], tab-separated. CPU time is this thread's (`time.thread_time`).
"""

import json
import os
import sys
import time

from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader


def extension():
    return PerMessageDeflate(False, False, 15, 15, {"level": 1})


def measure(budget, run):
    """Runs run(n) in growing batches: an untimed warm-up, then batches until `budget`
    seconds of CPU time are spent. Returns (operations, cpu seconds)."""
    batch = 1
    while True:
        t = time.thread_time()
        run(batch)
        e = time.thread_time() - t
        if e >= 0.002 or batch >= 1 << 20:
            break
        batch *= 4
    start = time.thread_time()
    ops = 0
    while True:
        ops += run(batch)
        cpu = time.thread_time() - start
        if cpu >= budget:
            return ops, cpu


def compress_runner(texts):
    ext = extension()
    payloads = [t.encode() for t in texts]
    state = {"i": 0, "wire": 0, "payload": 0}

    def run(n):
        for _ in range(n):
            p = payloads[state["i"] % len(payloads)]
            state["i"] += 1
            out = Frame(Opcode.TEXT, p).serialize(mask=False, extensions=[ext])
            state["wire"] += len(out)
            state["payload"] += len(p)
        return n

    return run, state


def decompress_runner(frames, length):
    ext = extension()
    reader = StreamReader()

    def run(n):
        for _ in range(n):
            parser = Frame.parse(reader.read_exact, mask=True, extensions=[ext])
            try:
                while True:
                    next(parser)
                    # More input wanted: another pass of the frames (each pass ends at a
                    # message boundary, as the Rust libraries' in-memory stream wraps).
                    reader.feed_data(frames)
            except StopIteration as done:
                frame = done.value
            text = frame.data.decode()
            assert frame.opcode == Opcode.TEXT and len(text) == length, len(text)
        return n

    return run, None


def main():
    directory, budget_ms, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    budget = budget_ms / 1000.0
    sizes = sorted(
        int(name.split(".")[0])
        for name in os.listdir(directory)
        if name.endswith(".texts.json")
    )
    for size in sizes:
        with open(os.path.join(directory, f"{size}.texts.json"), encoding="utf-8") as f:
            texts = json.load(f)
        with open(os.path.join(directory, f"{size}.frames"), "rb") as f:
            frames = f.read()
        for rep in range(reps):
            run, state = compress_runner(texts)
            ops, cpu = measure(budget, run)
            ratio = state["wire"] / max(state["payload"], 1)
            print(f"SAMPLE\tcompress\t{size}\t{rep}\t{ops / cpu}\t{cpu / ops * 1e9}\t{ratio}", flush=True)
            run, _ = decompress_runner(frames, len(texts[0].encode()))
            ops, cpu = measure(budget, run)
            print(f"SAMPLE\tdecompress\t{size}\t{rep}\t{ops / cpu}\t{cpu / ops * 1e9}", flush=True)


if __name__ == "__main__":
    main()
