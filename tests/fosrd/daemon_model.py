"""A small model bundle for daemon tests, learnt once per session."""

from __future__ import annotations

from pathlib import Path

from fosr.cli import main as fosr_main
from fosr.samples import build_lab_capture


def learn_lab_model(folder: Path) -> Path:
    """Synthesise a lab capture, learn a bundle from it, return its path."""
    capture = folder / "lab.pcap"
    model = folder / "lab.fosr"
    build_lab_capture(capture, seed=3, sessions=120)
    code = fosr_main(["learn", str(capture), "-o", str(model), "--quiet"])
    assert code == 0 and model.is_file()
    return model
