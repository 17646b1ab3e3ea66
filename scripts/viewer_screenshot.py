"""The README's picture of `gsenv view`: the viewer on the embedded scene after a few expert steps,
photographed by the headless Chromium of the browser test (tests/browser.py).

    .venv/bin/python scripts/viewer_screenshot.py [--out docs/img/viewer.jpg] [--steps 12]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser import Browser  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "docs" / "images" / "viewer.jpg"))
    p.add_argument("--steps", type=int, default=12, help="expert steps before the picture (default 12)")
    p.add_argument("--size", default="1280x800", help="browser window WIDTHxHEIGHT (default 1280x800)")
    p.add_argument("--collision", action="store_true", help="show the collision overlay")
    args = p.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))

    import gymnasium as gym
    import imageio.v3 as iio

    import gsenv  # noqa: F401
    from gsenv.scene.resolve import resolve_scene

    bundle = resolve_scene("default")
    cameras = [c.name for c in bundle.cameras] + [c.name for c in getattr(bundle, "link_cameras", ())]  # as gsenv view
    env = gym.make("GSEnv/PutCubeOnPlate-v0", num_envs=1, obs_mode="rgb", image_size=(240, 320), device="cpu",
                   scene=bundle, cameras=cameras)
    try:
        with env.unwrapped.open_viewer(port=0) as viewer, Browser(width, height, timeout_s=300) as page:
            for _ in range(args.steps):
                viewer.submit("step", wait=300)
            if args.collision:
                viewer.submit("collision", True, wait=300)
            page.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                      mobile=False)
            page.open(viewer.url)
            page.wait_for(f"document.body.innerText.includes('episode step {args.steps}')", what="the status")
            time.sleep(8)  # the splats arrive and are sorted on the CPU (SwiftShader)
            # the "software WebGL" notice is about this headless browser, not the viewer
            page.evaluate("document.querySelectorAll('.mantine-Notification-closeButton, "
                          "[class*=Notification] button').forEach(b => b.click())")
            time.sleep(1)
            shot = page.screenshot()
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        iio.imwrite(args.out, shot, quality=85) if args.out.endswith(".jpg") else iio.imwrite(args.out, shot)
        print(f"wrote {args.out} ({shot.shape[1]}x{shot.shape[0]})")
    finally:
        env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
