"""The pretraining data path's reading cost as the readers grow: bytes read and lines/s per reader.

A corpus of three languages (60 / 30 / 10% of the bytes) is generated, then read for one pass the way
`ernie_m.pretraining.data` reads it with R ranks x W workers: reader g owns the virtual shards v with v mod (R x W) =
g, and reads each shard's pieces of every language. Readers run one after another in this process, so each one's
lines/s is its own, not shared with the others. Tokenization is not included (section `tokenizer` measures it).
"""
from __future__ import annotations

import os
import statistics
import time
from typing import Dict, List, Sequence

import numpy as np

LANGUAGE_SHARES = {"en": 0.6, "de": 0.3, "sw": 0.1}


def make_corpus(directory: str, megabytes: float, seed: int = 0) -> Dict[str, str]:
    """`<lang>.txt` files of random words, lines of 1 to 60 words, `megabytes` in all."""
    rng = np.random.default_rng(seed)
    words = ["".join(chr(97 + c) for c in rng.integers(0, 26, rng.integers(2, 10))) for _ in range(5000)]
    block = "".join(" ".join(rng.choice(words, rng.integers(1, 60))) + "\n" for _ in range(20000)).encode()
    paths = {}
    os.makedirs(directory, exist_ok=True)
    for language, share in LANGUAGE_SHARES.items():
        path = paths[language] = os.path.join(directory, f"{language}.txt")
        target = int(megabytes * share * (1 << 20))
        with open(path, "wb") as handle:
            written = 0
            while written < target:
                piece = block[:target - written]
                cut = piece.rfind(b"\n") + 1 or len(piece)  # whole lines only
                handle.write(piece[:cut])
                written += cut
    return paths


def read_pass(sources, shards: Sequence[int], total_shards: int) -> Dict[str, float]:
    """One reader's pass over its shards of every source: lines, bytes read, seconds."""
    from ernie_m.pretraining.corpus import LineReader, shard_pieces

    lines = read = 0
    started = time.perf_counter()
    for shard in shards:
        for source in sources:
            reader = LineReader(shard_pieces(source.pieces, shard, total_shards), 1)
            for _ in reader:
                if reader.epoch:
                    break
                lines += 1
            read += reader.bytes_read
    return {"lines": lines, "bytes_read": read, "seconds": time.perf_counter() - started}


def run(work_dir: str, megabytes: float, ranks: Sequence[int] = (1, 2, 4, 8), workers: int = 2,
        shards: int = 64, min_piece_bytes: int = 1 << 20) -> Dict:
    from ernie_m.pretraining.corpus import MonolingualFile
    from ernie_m.pretraining.data import sources_of

    paths = make_corpus(os.path.join(work_dir, "corpus"), megabytes)
    size = sum(os.path.getsize(path) for path in paths.values())
    files = [MonolingualFile(path, language) for language, path in paths.items()]
    sources = sources_of(files, shards, min_piece_bytes)
    rows: List[Dict] = []
    for rank_count in ranks:
        readers = rank_count * workers
        passes = [read_pass(sources, range(g, shards, readers), shards) for g in range(readers)]
        total_read = sum(p["bytes_read"] for p in passes)
        rows.append({
            "ranks": rank_count, "workers": workers, "readers": readers,
            "bytes_read": total_read, "bytes_read_over_corpus": total_read / size,
            "lines": sum(p["lines"] for p in passes),
            "lines_per_second_per_reader_median": statistics.median(p["lines"] / p["seconds"] for p in passes),
            "lines_per_second_per_reader_min": min(p["lines"] / p["seconds"] for p in passes),
        })
        print(f"data: {rank_count} rank(s) x {workers} workers: read {total_read / size:.4f} x the corpus, "
              f"{rows[-1]['lines_per_second_per_reader_median']:.0f} lines/s per reader", flush=True)
    first = rows[0]["lines_per_second_per_reader_median"]
    return {"corpus_bytes": size, "shards": shards, "min_piece_bytes": min_piece_bytes, "rows": rows,
            "ratios": {f"per_reader_speed_{row['readers']}_readers_over_{rows[0]['readers']}":
                       row["lines_per_second_per_reader_median"] / first for row in rows[1:]}}
