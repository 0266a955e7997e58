"""The rate ANN behind EMSTDP, trained by plain backprop: ``plausigrad.analysis.ann_baseline``
with ``--preset emstdp`` (see that module for the model and the switches).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python tools/emstdp_ann_baseline.py \
        --data-dir ../shared/data/mnist --train-limit 10000 --epochs 4 --lr 0.5
"""

import sys

from plausigrad.analysis.ann_baseline import main

if __name__ == "__main__":
    main(["--preset", "emstdp", *sys.argv[1:]])
