"""Test helpers for backend authors: a contract any unilog backend can run against itself.

    from unilog.testing import check_backend

    def test_my_backend_honours_the_contract(tmp_path):
        report = check_backend("mybackend", {"some_option": 1}, tmp_path)
        # then read back what your SDK wrote under report["run_dir"]

``check_backend`` drives a real run through the backend (config with a
secret, 100 steps of scalars, every media type, a summary, an artifact) and
fails if the backend raised, dropped or missed anything. What the backend
stored is then for the author's own reader to check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import unilog

SECRET = "unilog-contract-secret-value"


def contract_run(backend: str, options: dict[str, Any], root: Path,
                 steps: int = 100) -> unilog.Run:
    """Log the standard contract run through ``backend`` (beside the CSV record) and finish it."""
    with unilog.init(project="contract", dir=root, backends={backend: options},
                     config={"lr": 0.01, "model": {"depth": 3}, "api_key": SECRET},
                     tags=["contract"], notes="unilog backend contract", mode="offline",
                     on_error="raise") as run:
        for step in range(steps):
            run.log({"train/loss": 1.0 / (step + 1), "train/acc": step / steps})
        run.log(_media_values())
        run.summary["best_acc"] = 0.99
        artifact_file = root / "contract-artifact.txt"
        artifact_file.write_text("artifact payload")
        run.log_artifact(artifact_file, name="payload", type="dataset", aliases=["best"],
                         metadata={"rows": 1})
    return run


def _media_values() -> dict[str, Any]:
    try:
        import numpy as np
    except ImportError:  # media that need no numpy still exercise the fallbacks
        return {"media/text": unilog.Text("hello"),
                "media/table": unilog.Table(columns=["a"], data=[[1]])}
    return {"media/image": unilog.Image(np.zeros((8, 8, 3), dtype=np.uint8), caption="zeros"),
            "media/histogram": unilog.Histogram(np.arange(100.0)),
            "media/text": unilog.Text("hello"),
            "media/table": unilog.Table(columns=["a", "b"], data=[[1, "x"]])}


def check_backend(backend: str, options: dict[str, Any], root: Path) -> dict[str, Any]:
    """Run the contract and assert the backend took everything without an error.

    Returns the backend's finish report with ``run_dir`` added.
    """
    run = contract_run(backend, options, Path(root))
    report = unilog.read_run(run.dir).manifest["backends"][backend]
    problems = {k: report[k] for k in ("errors", "dropped", "failed", "undelivered",
                                       "collisions") if report.get(k)}
    assert not problems and not report["timed_out"] and not report["disabled"], (
        f"backend {backend!r} did not take the contract run cleanly: {report}")
    assert report["delivered"] > 0, f"backend {backend!r} received nothing"
    return {**report, "run_dir": run.dir}
