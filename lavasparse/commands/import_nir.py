"""lavasparse import: a NIR graph as a run folder and netx file, and how far
the target's spikes are from snnTorch's float reading of the same file."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from lavasparse.export.netx_format import describe
from lavasparse.export.nir_import import import_nir
from lavasparse.fileio import write_json, write_text
from lavasparse.simulate.nir_reference import target_against_snntorch
from lavasparse.train.test_set import encode_test_set

from .export import print_layers


def run(a) -> int:
    out = Path(a.out)
    imported = import_nir(a.nir, out, dataset=a.dataset, steps=a.steps, dt=a.dt, rescale=a.rescale,
                          encoding=a.encoding)
    desc = imported.description
    print(f"wrote {out}/config.json, best.pt and {desc.path} (imported.json: how each node was read); "
          f"dt {imported.dt:g} s, " + ("rescaled to 8-bit weights" if imported.rescaled else "not rescaled"))
    print_layers(describe(desc))
    if a.fidelity_samples <= 0:
        return 0
    if importlib.util.find_spec("snntorch") is None or importlib.util.find_spec("nirtorch") is None:
        print("no fidelity report: snnTorch's NIR reader is not installed (pip install snntorch nirtorch)")
        return 0
    x, labels = encode_test_set(a.dataset, a.data_dir, imported.config.net.arch, a.steps, imported.config.seed,
                                imported.config.input_code, limit=a.fidelity_samples)
    report = target_against_snntorch(desc, a.nir, x, labels, progress=True)
    text = (f"# Fidelity of the import of {a.nir}\n\n{len(labels)} {a.dataset} test images, {a.encoding}-coded, "
            f"{a.steps} steps: the target (emulator, bit-exact to Lava) against snnTorch's float reading of "
            f"the NIR file (import_from_nir).\n\n{report.table()}")
    write_text(out / "fidelity.md", text)
    write_json(out / "fidelity.json", {"prediction_match": report.prediction_match,
                                       "accuracy_target": report.accuracy_target,
                                       "accuracy_snntorch": report.accuracy_reference,
                                       "hidden_spikes_matched": report.hidden_matched,
                                       "hidden_spikes_shared": report.hidden_shared,
                                       "layers": [vars(l) for l in report.layers]})
    print(text)
    return 0
