"""lavasparse check: whether a netx file fits Loihi 2, and what it uses (no torch, no Lava)."""
from __future__ import annotations

from lavasparse.deploy.loihi2 import LOIHI2, ChipSpec
from lavasparse.deploy.resources import check_network, format_report
from lavasparse.export.netx_format import read_network
from lavasparse.fileio import write_json


def run(a) -> int:
    spec = ChipSpec.from_json(a.chip) if a.chip else LOIHI2
    report = check_network(read_network(a.net, any_neuron=True), spec)
    print(format_report(report))
    if a.json:
        write_json(a.json, report.to_dict())
    return 0 if report.fits else 1
