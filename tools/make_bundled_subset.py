"""Derive the small MNIST subset bundled in ``protocols/bundled`` from the official files.

Takes the first 2000 training and the first 500 test samples of the official MNIST .gz files
(their published MD5s are verified first), writes them as gzip IDX files with the standard names
(no file name and a zero timestamp in the gzip header, so the output is byte-reproducible), and
writes ``manifest.json`` (MD5, sample count, source MD5 per file) and ``README.md`` (attribution).

Usage, from the repository root::

    .venv/bin/python tools/make_bundled_subset.py [--source DIR] [--out DIR]

``--source`` defaults to ``../shared/data/mnist`` relative to the repository root.
"""

import argparse
import json
import sys
from pathlib import Path

from plausigrad.protocols.datasets import (FILENAMES, PUBLISHED_MD5, DatasetError, file_md5,
                                           read_idx, write_idx)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "data" / "mnist"
DEFAULT_OUT = REPO_ROOT / "protocols" / "bundled"
COMMAND = ".venv/bin/python tools/make_bundled_subset.py"
N_TRAIN = 2000
N_TEST = 500

README = """\
# Bundled MNIST subset

This directory holds a small subset of MNIST so that plausigrad's tests and demos run without
a download. It is loaded by `plausigrad.protocols.datasets.load_dataset("mnist")` when neither
`--data-dir` nor `PLAUSIGRAD_DATA_DIR` is given.

| file | samples | source indices |
|---|---|---|
{rows}

The samples are the first ones of the official files, in their original order (no shuffling,
no changes to pixel values). The MD5 of each file and of its official source file is listed
in `manifest.json`; the loader checks the former.

## Attribution

The MNIST database of handwritten digits is by Yann LeCun, Corinna Cortes and
Christopher J. C. Burges: <http://yann.lecun.com/exdb/mnist/>.

Please cite: Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, "Gradient-based learning applied
to document recognition", *Proceedings of the IEEE* 86(11):2278-2324, 1998.

Licence: unverified. MNIST is commonly listed as available under the Creative Commons
Attribution-Share Alike 3.0 licence (CC BY-SA 3.0); check the original source before
redistributing it further.

## Regenerating

These files are generated (this README included) by

    {command}

run from the repository root, with the four official MNIST .gz files in `../shared/data/mnist`
(or pass `--source DIR`). The output is byte-reproducible (gzip with no name and mtime 0).
"""


def subset_sizes():
    """Number of samples kept per file name: the first N_TRAIN train / N_TEST test samples."""
    return {filename: N_TRAIN if role.startswith("train") else N_TEST
            for role, filename in FILENAMES.items()}


def build_subset(source, out):
    """Write the subset, manifest.json and README.md from ``source`` into ``out``.

    Returns the manifest as a dict. Raises :class:`DatasetError` on a bad source file.
    """
    source, out = Path(source), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for filename, count in subset_sizes().items():
        source_md5 = PUBLISHED_MD5["mnist"][filename]
        data = read_idx(source / filename, expected_md5=source_md5)
        target = write_idx(out / filename, data[:count])
        files[filename] = {
            "md5": file_md5(target),
            "samples": count,
            "indices": f"0-{count - 1}",
            "bytes": target.stat().st_size,
            "source_file": filename,
            "source_md5": source_md5,
        }
    manifest = {
        "dataset": "mnist",
        "description": f"first {N_TRAIN} training and first {N_TEST} test samples of MNIST",
        "generated_by": COMMAND,
        "files": files,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    rows = "\n".join(f"| `{name}` | {info['samples']} | {info['indices']} |"
                     for name, info in files.items())
    (out / "README.md").write_text(README.format(rows=rows, command=COMMAND), encoding="utf-8")
    return manifest


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help="directory with the four official MNIST .gz files "
                             "(default: ../shared/data/mnist relative to the repository root)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output directory (default: protocols/bundled)")
    args = parser.parse_args(argv)
    try:
        manifest = build_subset(args.source, args.out)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for filename, info in manifest["files"].items():
        print(f"{args.out / filename}: {info['samples']} samples, {info['bytes']} bytes, "
              f"md5 {info['md5']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
