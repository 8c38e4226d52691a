"""lavasparse compare: training runs side by side on the test set, on the target."""
from __future__ import annotations

from pathlib import Path

from lavasparse.deploy.lava_runner import load_input, load_labels
from lavasparse.pipeline import run_test_input
from lavasparse.simulate.compare import write_report
from lavasparse.simulate.evaluate import evaluate_on_target


def run(a) -> int:
    """Compare training run folders on the test set, each in its own input code."""
    if (a.input is None) != (a.labels is None):
        raise ValueError("--input and --labels go together")
    given, draws = None, 1
    if a.input:
        x = load_input(a.input, a.layout)
        given = (x, load_labels(a.labels, len(x)))
    runs = []
    for r in a.runs:
        if given:
            x, labels = given
        else:
            x, labels, draws = run_test_input(Path(r), a.test_limit, a.test_draws)
        runs.append(evaluate_on_target(Path(r), x, labels, a.engine, a.cross_check, energy_profile=a.energy_profile,
                                       input_origin=a.input))
    print(write_report(runs, a.out, test_draws=draws)[0].split("\n## Per layer")[0])
    return 0
