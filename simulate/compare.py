"""Side-by-side report of two or more profiled runs: markdown, JSON and a PNG.

Each run is a ``TargetEvaluation`` (``target_result.py``); the report's rows are
plain dicts, as report.json holds them. Reductions are relative to the
first run.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lavasparse.fileio import atomic_path, write_json, write_text

from .target_result import TargetEvaluation


def summarize(run: TargetEvaluation) -> dict:
    """The report row of one run (per-sample figures are per inference)."""
    p, ps = run.profile, run.profile.per_sample
    row = {
        "name": run.name,
        "accuracy_float": run.accuracy_float,
        "accuracy_target": run.accuracy_target,
        "spikes_per_sample": ps.spikes,
        "hidden_spikes_per_sample": p.hidden_spikes_per_sample,
        "synops_per_sample": ps.synops,
        "neuron_updates_per_sample": ps.neuron_updates,
        "energy_per_sample_j": ps.energy_j,
        "energy_dynamic_per_sample_j": ps.energy_dynamic_j,
        "energy_static_per_sample_j": ps.energy_static_j,
        "inference_time_s": ps.inference_time_s,
        "density": [l.density for l in p.layers if l.density is not None],
        "cores": p.cores,
        "neurobench": p.neurobench,
        "engine": run.engine,
        "samples": p.samples,
        "layers": [l.to_dict() for l in p.layers],
    }
    for k in ("network", "run", "checkpoint", "schedule", "sigma0", "encoding", "cost", "prune_density"):
        if getattr(run, k) is not None:
            row[k] = getattr(run, k)
    if run.agreement is not None:
        row["agreement"] = asdict(run.agreement)
    return row


def _reduction(value: float, base: float) -> str:
    if base == 0:
        return "n/a"
    return f"{100.0 * (base - value) / base:.1f}%"


def markdown_table(rows: list[dict]) -> str:
    base = rows[0]
    head = ("| run | input | cost | acc. SLAYER | acc. target | spikes/inf. | reduction | synops/inf. | reduction "
            "| dynamic (nJ) | static (nJ) | energy/inf. (nJ) | reduction |\n"
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    lines = []
    for r in rows:
        lines.append(
            f"| {r['name']} | {r.get('encoding', '-')} | {r.get('cost', '-') if r.get('sigma0') else '-'} "
            f"| {100 * r['accuracy_float']:.2f}% | {100 * r['accuracy_target']:.2f}% "
            f"| {r['spikes_per_sample']:.1f} | {_reduction(r['spikes_per_sample'], base['spikes_per_sample'])} "
            f"| {r['synops_per_sample']:.0f} | {_reduction(r['synops_per_sample'], base['synops_per_sample'])} "
            f"| {1e9 * r['energy_dynamic_per_sample_j']:.2f} | {1e9 * r['energy_static_per_sample_j']:.2f} "
            f"| {1e9 * r['energy_per_sample_j']:.2f} | {_reduction(r['energy_per_sample_j'], base['energy_per_sample_j'])} |")
    return head + "\n".join(lines) + "\n"


def layer_table(rows: list[dict]) -> str:
    out = ["| run | layer | neurons | cores | synapse density | spikes/inf. | spikes/neuron/step | synops/inf. "
           "| dynamic (nJ) | static (nJ) | energy/inf. (nJ) |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        n = r["samples"]
        for l in r["layers"]:
            density = "-" if l["density"] is None else f"{100 * l['density']:.1f}%"
            out.append(f"| {r['name']} | {l['name']} | {l['neurons']} | {l['cores']} | {density} | {l['spikes'] / n:.1f} "
                       f"| {l['spikes_per_neuron_per_step']:.4f} | {l['synops'] / n:.0f} "
                       f"| {1e9 * l['energy_dynamic_j'] / n:.3f} | {1e9 * l['energy_static_j'] / n:.3f} "
                       f"| {1e9 * l['energy_j'] / n:.3f} |")
    return "\n".join(out) + "\n"


def neurobench_table(rows: list[dict]) -> str:
    keys = list(rows[0]["neurobench"])
    out = ["| run | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
    for r in rows:
        out.append(f"| {r['name']} | " + " | ".join(f"{r['neurobench'][k]:.4g}" for k in keys) + " |")
    return "\n".join(out) + "\n"


def plot_energy_accuracy(rows: list[dict], path: Path, log_energy: bool = False) -> None:
    """Energy per inference (dynamic and total) against accuracy on the target,
    one point per run (a row averaged over seeds: its mean, with each seed's
    total as a small dot, from ``per_seed``); ``log_energy`` for rows that
    differ by orders of magnitude."""
    fig = Figure(figsize=(6.5, 4.5))   # no pyplot: no global backend, nothing left open
    ax = fig.subplots()
    for i, r in enumerate(rows):
        acc = 100 * r["accuracy_target"]
        ax.scatter([1e9 * r["energy_per_sample_j"]], [acc], color=f"C{i}", s=60, label=r["name"], zorder=3)
        ax.scatter([1e9 * r["energy_dynamic_per_sample_j"]], [acc], color=f"C{i}", s=60, marker="o",
                   facecolors="none", zorder=3)
        ax.plot([1e9 * r["energy_dynamic_per_sample_j"], 1e9 * r["energy_per_sample_j"]], [acc, acc],
                color=f"C{i}", lw=1)
        seeds = r.get("per_seed", [])
        if seeds:
            ax.scatter([1e9 * s["energy_per_sample_j"] for s in seeds],
                       [100 * s["test_accuracy_target"] for s in seeds], color=f"C{i}", s=10, alpha=0.6, zorder=2)
    if log_energy:
        ax.set_xscale("log")
    ax.set_xlabel("energy per inference (nJ): open = dynamic only, filled = dynamic + static"
                  + ("\n(small dots: each seed's total)" if any(r.get("per_seed") for r in rows) else ""))
    ax.set_ylabel("test accuracy on the target (%)")
    ax.set_title("energy against accuracy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def plot_layers(rows: list[dict], path: Path) -> None:
    names = [l["name"] for l in rows[0]["layers"]]
    x = np.arange(len(names))
    width = 0.8 / len(rows)
    fig = Figure(figsize=(16, 4))
    axes = fig.subplots(1, 3)
    for ax, key, label in ((axes[0], "spikes", "spikes per inference"),
                           (axes[1], "synops", "synaptic ops per inference"),
                           (axes[2], "energy_j", "energy per inference (J)")):
        for i, r in enumerate(rows):
            vals = [l[key] / r["samples"] for l in r["layers"]]
            ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=r["name"])
        ax.set_xticks(x, names)
        positive = [l[key] for r in rows for l in r["layers"] if l[key] > 0]
        if positive and max(positive) > 30 * min(positive):
            ax.set_yscale("log")  # layers differ by orders of magnitude
        ax.set_ylabel(label)
        ax.set_title(label + " by layer")
        ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def test_set_words(samples: int, draws: int = 1) -> str:
    """'360 images x 8 encodings each (2880 samples)', or '360 samples'."""
    return f"{samples // draws} images x {draws} encodings each ({samples} samples)" if draws > 1 else f"{samples} samples"


def write_report(runs: list[TargetEvaluation], out_dir: str | Path, title: str = "lavasparse comparison",
                 extra: dict | None = None, test_draws: int = 1) -> tuple[str, dict]:
    """Write report.md, report.json (the rows, the energy profile and
    ``extra``), report.png and energy_accuracy.png into ``out_dir``; return
    the markdown and the JSON document. ``test_draws``: encodings of each test
    image among the samples (said in the report)."""
    out_dir = Path(out_dir)
    if len(runs) < 2:
        raise ValueError("a comparison needs at least two runs")
    rows = [summarize(r) for r in runs]
    engines = sorted({r["engine"] for r in rows})
    prof = runs[0].profile.energy_profile.to_dict()
    estimates = [k for k, f in prof["figures"].items() if f["status"] != "published"]
    md = (f"# {title}\n\nTest set: {test_set_words(rows[0]['samples'], test_draws)}; figures per inference, measured on the "
          f"target ({', '.join(engines)}); reductions relative to {rows[0]['name']} (negative: more).\n\n"
          f"Energy profile `{prof['name']}`: {prof['description']}"
          + (f" Estimated, not published: {', '.join(estimates)}." if estimates else "") + "\n\n"
          + markdown_table(rows) + "\n## Per layer\n\n" + layer_table(rows)
          + "\n![per-layer spikes, synops and energy](report.png)\n\n"
          + "## Energy against accuracy\n\n![energy against accuracy](energy_accuracy.png)\n\n"
          + "## NeuroBench metrics (per inference)\n\n" + neurobench_table(rows)
          + "\n## Energy profile figures\n\n| figure | value | unit | status | source |\n|---|---:|---|---|---|\n"
          + "\n".join(f"| {k} | {f['value']:.4g} | {f['unit']} | {f['status']} | {f['source']} |"
                      for k, f in prof["figures"].items()) + "\n")
    write_text(out_dir / "report.md", md)
    doc = {"runs": rows, "energy_profile": prof, **(extra or {})}
    write_json(out_dir / "report.json", doc)
    plot_layers(rows, out_dir / "report.png")
    plot_energy_accuracy(rows, out_dir / "energy_accuracy.png")
    return md, doc
