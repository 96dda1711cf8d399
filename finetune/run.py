"""One entry file for every task, for `paddle.distributed.launch` (which takes a script, not a module):

    python -m paddle.distributed.launch --nproc_per_node 8 finetune/run.py classification --task xnli ...
    python finetune/run.py ner --train en:eng.train ...          (one process: the same as python -m finetune.ner)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ernie_m.distributed import end_with_launcher, run_entry  # noqa: E402

if __name__ == "__main__":  # first: a launcher killed while Paddle loads must not leave this rank running
    end_with_launcher()
    from ernie_m.cpu import configure_process

    configure_process()  # before Paddle loads (ernie_m/cpu.py)


from finetune import classification, ner, qa, retrieval  # noqa: E402

TASKS = {"classification": classification, "ner": ner, "qa": qa, "retrieval": retrieval}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        raise SystemExit(f"usage: finetune/run.py {{{','.join(TASKS)}}} [task arguments]; --help after the task "
                         "name lists them")
    run_entry(TASKS[sys.argv[1]].main, sys.argv[2:])  # a rank of a launched job ends without exit-time teardown
