"""One entry file for every fine-tuning task, for `paddle.distributed.launch` (which takes a script, not a module):

    python -m paddle.distributed.launch --nproc_per_node 8 finetune/run.py classification --task xnli ...
    python finetune/run.py ner --train en:eng.train ...          (one process: the same as python -m finetune.ner)

The tasks are the ones `finetune.tasks` registers; the package is installed with ernie_m (`pip install -e .`).
"""
import sys

from ernie_m.distributed import end_with_launcher, run_entry


def main(argv=None) -> None:
    from finetune.tasks import load_tasks

    tasks = load_tasks()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in tasks:
        raise SystemExit(f"usage: finetune/run.py {{{','.join(sorted(tasks))}}} [task arguments]; --help after the "
                         "task name lists them")
    run_entry(tasks[argv[0]].main, argv[1:])  # a rank of a launched job ends without exit-time teardown


if __name__ == "__main__":
    end_with_launcher()  # first: a launcher killed while Paddle loads must not leave this rank running
    from ernie_m.cpu import configure_process

    configure_process()  # before Paddle loads (ernie_m/cpu.py)
    main()
