"""ernie_m.pretraining.schedule: the stage and objective of a step, the same on every rank."""
import os
import subprocess
import sys

import pytest

from ernie_m.pretraining import Stage, objective_at, stage_at

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_schedule_is_deterministic_and_follows_stage_weights():
    stages = [Stage("one", 10, {"camlm": 1.0, "mmlm": 1.0}), Stage("two", 10, {"btmlm": 3.0, "camlm": 1.0})]
    assert stage_at(stages, 9)[0] == 0 and stage_at(stages, 10)[0] == 1 and stage_at(stages, 99)[0] == 1
    drawn = [objective_at(stages[1], step, seed=5) for step in range(4000)]
    # Same on every rank: another process, drawing the steps in reverse order, gets the same objective each step.
    code = ("from ernie_m.pretraining import Stage, objective_at\n"
            "stage = Stage('two', 10, {'btmlm': 3.0, 'camlm': 1.0})\n"
            "print(' '.join(reversed([objective_at(stage, step, seed=5) for step in reversed(range(4000))])))")
    other_rank = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert other_rank.stdout.split() == drawn, other_rank.stderr[-2000:]
    assert [objective_at(stages[1], step, seed=6) for step in range(200)] != drawn[:200]  # the seed matters
    assert abs(drawn.count("btmlm") / 4000 - 0.75) < 0.03
    with pytest.raises(ValueError, match="unknown objectives"):
        Stage("bad", 5, {"xlm": 1.0})
    with pytest.raises(ValueError, match="steps must be positive"):
        Stage("bad", 0, {"mmlm": 1.0})
