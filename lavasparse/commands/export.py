"""lavasparse export: a training run's checkpoint as a netx HDF5 file, or a
run or any netx file our reader accepts as a NIR graph."""
from __future__ import annotations

import tempfile
from pathlib import Path

from lavasparse.export.netx_export import export_netx
from lavasparse.export.netx_format import describe, read_network
from lavasparse.export.nir_export import export_nir
from lavasparse.train.trainer import load_trained


def run(a) -> int:
    source = Path(a.run)
    if source.is_file():
        if a.format != "nir":
            raise ValueError(f"{source}: a file; export writes a run folder's checkpoint as netx, or (--format nir) "
                             f"a netx file as NIR")
        return _write_nir(read_network(source), a.out or str(source.with_suffix(".nir")), a.dt, None)
    model, _ = load_trained(source, which=a.checkpoint)
    if a.format == "netx":
        net_out = a.out or str(source / "network.net")
        desc = export_netx(model, net_out)
        print(f"wrote {net_out}")
        print_layers(describe(desc))
        return 0
    # NIR from a run: through a netx description that is not kept (the run's
    # network.net may hold another checkpoint; it is left as it is)
    with tempfile.TemporaryDirectory() as tmp:
        desc = export_netx(model, Path(tmp) / "network.net")
    print_layers(describe(desc))
    return _write_nir(desc, a.out or str(source / "network.nir"), a.dt, {"run": str(source), "checkpoint": a.checkpoint})


def _write_nir(desc, out: str, dt: float, origin: dict | None) -> int:
    graph = export_nir(desc, out, dt, origin)
    kinds = ", ".join(f"{name} ({type(node).__name__})" for name, node in graph.nodes.items())
    print(f"wrote {out}: NIR {kinds}; dt {dt:g} s per step in its metadata")
    return 0


def print_layers(rows: list[dict]) -> None:
    """The rows of ``describe`` as a table (export and import print it)."""
    cols = ["name", "type", "shape", "neurons", "weights", "weight_bits", "weight_exponent", "sign_mode"]
    print("  ".join(f"{c:>15s}" for c in cols))
    for r in rows:
        print("  ".join(f"{str(r[c]) if r[c] is not None else '-':>15s}" for c in cols))
