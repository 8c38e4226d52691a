"""lavasparse export: a training run's checkpoint as a netx HDF5 file."""
from __future__ import annotations

from pathlib import Path

from lavasparse.export.netx_export import export_netx
from lavasparse.export.netx_format import describe
from lavasparse.train.trainer import load_trained


def run(a) -> int:
    model, _ = load_trained(a.run, which=a.checkpoint)
    out = a.out or str(Path(a.run) / "network.net")
    desc = export_netx(model, out)
    print(f"wrote {out}")
    _print_rows(describe(desc))
    return 0


def _print_rows(rows: list[dict]) -> None:
    cols = ["name", "type", "shape", "neurons", "weights", "weight_bits", "weight_exponent", "sign_mode"]
    print("  ".join(f"{c:>15s}" for c in cols))
    for r in rows:
        print("  ".join(f"{str(r[c]) if r[c] is not None else '-':>15s}" for c in cols))
