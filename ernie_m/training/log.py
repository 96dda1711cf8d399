"""A run's log: JSON lines per rank, VisualDL scalars and a progress bar on rank 0."""
from __future__ import annotations

import json
import os
from typing import Dict, Optional


class RunLog:
    def __init__(self, output_dir: str, rank: int, total: int, initial: int = 0, desc: str = "train",
                 jsonl: Optional[str] = None, progress: bool = True):
        self.rank = rank
        self.path = os.path.join(output_dir, jsonl) if jsonl else None
        self.writer = None
        if rank == 0:
            from visualdl import LogWriter

            self.writer = LogWriter(logdir=os.path.join(output_dir, "visualdl"))
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=initial, disable=rank != 0 or not progress, desc=desc,
                        dynamic_ncols=True)

    def record(self, record: dict) -> None:
        """One JSON line in this rank's file."""
        if self.path:
            with open(self.path, "a") as handle:
                handle.write(json.dumps(record) + "\n")

    def scalars(self, values: Dict[str, float], step: int, prefix: str = "") -> None:
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(f"{prefix}{name}", value, step)

    def advance(self, **postfix) -> None:
        if postfix:
            self.bar.set_postfix(**postfix)
        self.bar.update(1)

    def message(self, text: str) -> None:
        """A line shown above the progress bar (rank 0 only)."""
        if self.rank == 0 and not self.bar.disable:
            self.bar.write(text)

    def close(self) -> None:
        self.bar.close()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
