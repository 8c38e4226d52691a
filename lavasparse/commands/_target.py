"""What the verbs that run a netx file (deploy, profile) share."""
from __future__ import annotations

import sys

from lavasparse.deploy.lava_runner import input_transform_note


def note_input_transform(desc, inputs) -> None:
    """On stderr, when 0/1 spikes go into an input neuron whose file asks for a transform Lava never applies."""
    note = input_transform_note(desc, inputs)
    if note:
        print(f"note: {note}", file=sys.stderr)
