"""Convert ERNIE-M checkpoints between our (PaddleNLP's) layout and HF transformers' ErnieM layout.

    python tools/convert_hf.py to-hf   OUR_DIR HF_DIR
    python tools/convert_hf.py from-hf HF_DIR  OUR_DIR

The same as `ernie-m convert`; what the layouts differ in is explained in ernie_m/convert/hf.py.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ernie_m.cli import main  # noqa: E402

if __name__ == "__main__":
    main(["convert", *sys.argv[1:]])
