"""lavasparse export: a training run's checkpoint as a netx HDF5 file, or a
run or any netx file our reader accepts as a NIR graph."""
from __future__ import annotations

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
        desc = read_network(source)
    else:
        model, _ = load_trained(source, which=a.checkpoint)
        net_out = a.out if a.format == "netx" and a.out else str(source / "network.net")
        desc = export_netx(model, net_out)
        print(f"wrote {net_out}")
        print_layers(describe(desc))
        if a.format == "netx":
            return 0
    out = a.out or str(source.with_suffix(".nir") if source.is_file() else source / "network.nir")
    graph = export_nir(desc, out, a.dt)
    kinds = ", ".join(f"{name} ({type(node).__name__})" for name, node in graph.nodes.items())
    print(f"wrote {out}: NIR {kinds}; dt {a.dt:g} s per step in its metadata")
    return 0


def print_layers(rows: list[dict]) -> None:
    """The rows of ``describe`` as a table (export and import print it)."""
    cols = ["name", "type", "shape", "neurons", "weights", "weight_bits", "weight_exponent", "sign_mode"]
    print("  ".join(f"{c:>15s}" for c in cols))
    for r in rows:
        print("  ".join(f"{str(r[c]) if r[c] is not None else '-':>15s}" for c in cols))
