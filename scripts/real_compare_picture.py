"""The README's picture of a `gsenv real compare` report (CPU reference renderer).

    python scripts/real_compare_picture.py [--out docs/img] [--density 0.5]

A synthetic "real" recording of the default scene (gsenv.realgap.synthetic: 6 arm configurations, the
third-person camera moved by 5 mm and 0.5 degrees, a colour gain and bias, sensor noise, the hand moved
2 cm in frame 2) compared with the scene at 120x160; its contact sheet is written as
real_compare_contact_sheet.png and the report's table printed.
"""
from __future__ import annotations

import argparse
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from gsenv.realgap.camera_fit import se3_exp
from gsenv.realgap.compare import compare_recording
from gsenv.realgap.recording import read_recording
from gsenv.realgap.synthetic import arm_configurations, write_synthetic_recording
from gsenv.scene.resolve import resolve_scene
from gsenv.sim import names

SIZE = (120, 160)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/img")
    parser.add_argument("--density", type=float, default=0.5)
    args = parser.parse_args()
    bundle = resolve_scene("default", density=args.density, task=None)
    axis = np.array([0.6, -0.4, 0.66]) / np.linalg.norm([0.6, -0.4, 0.66])
    offset = se3_exp(torch.tensor([0.003, -0.004, 0.0, *(axis * math.radians(0.5))], dtype=torch.float64))
    with tempfile.TemporaryDirectory() as tmp:
        root = write_synthetic_recording(Path(tmp) / "recording", bundle, arm_configurations(6), image_size=SIZE,
                                         camera_offset=offset, moved_links={(2, names.HAND_LINK): (0.0, 0.02, 0.0)},
                                         colour_gain=(1.06, 0.97, 1.0), colour_bias=(6.0, -4.0, 3.0), noise_std=2.0,
                                         render_backend="torch")
        recording = read_recording(root, [c.name for c in bundle.cameras])
        report = compare_recording(bundle, recording, render_backend="torch", device="cpu", out_dir=Path(tmp) / "out")
        print(report.format_table())
        for problem in report.problems:
            print(problem)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(tmp) / "out" / "contact_sheet.png", out / "real_compare_contact_sheet.png")
    print(f"written: {out / 'real_compare_contact_sheet.png'}")


if __name__ == "__main__":
    main()
