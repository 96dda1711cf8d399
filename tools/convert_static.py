"""Convert an original static-graph ERNIE-M checkpoint (PaddlePaddle/ERNIE, ernie-m/) to our layout.

    python tools/convert_static.py PARAMS_DIR OUT_DIR --config ernie_m_config.json [--tokenizer DIR]

The same as `ernie-m convert from-static`; the name mapping and the position-id offset are explained in
ernie_m/convert/original.py.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ernie_m.cli import main  # noqa: E402

if __name__ == "__main__":
    main(["convert", "from-static", *sys.argv[1:]])
