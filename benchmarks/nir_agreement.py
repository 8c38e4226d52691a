"""Our NIR export read by snnTorch (import_from_nir) beside the target, on
trained MNIST networks: per layer, the spikes both have, and the predicted
class. Reads the rows of a study folder (``lavasparse study``: each row's
evaluated netx file and the test inputs beside them).

    python benchmarks/nir_agreement.py runs/mnist-final --rows rate-baseline:rate latency-energy-pruned:latency
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from lavasparse.export.netx_format import read_network
from lavasparse.export.nir_export import export_nir
from lavasparse.simulate.nir_reference import target_against_snntorch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("study", help="a study folder (rows/<name>/eval-*/network.net, test_input_<code>.npy)")
    p.add_argument("--rows", nargs="+", default=["rate-baseline:rate"], help="row:input-code pairs")
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--out", default="runs/nir-agreement", help="where the NIR files go")
    a = p.parse_args()
    root = Path(a.study)
    labels = np.load(root / "test_labels.npy")[:a.samples]
    for pair in a.rows:
        row, code = pair.split(":")
        evals = sorted((root / "rows" / row).glob("eval-*"))
        if not evals:
            raise SystemExit(f"{root / 'rows' / row}: no eval-* folder (run the study first)")
        desc = read_network(evals[0] / "network.net")
        out = Path(a.out) / row
        out.mkdir(parents=True, exist_ok=True)
        export_nir(desc, out / "network.nir")
        x = np.array(np.load(root / f"test_input_{code}.npy", mmap_mode="r")[:a.samples])
        t0 = time.time()
        report = target_against_snntorch(desc, out / "network.nir", x, labels, progress=True)
        print(f"## {row} ({evals[0].name}, {len(labels)} test images, {code} code; target and snnTorch "
              f"{time.time() - t0:.0f} s)\n")
        print(report.table(), flush=True)


if __name__ == "__main__":
    main()
