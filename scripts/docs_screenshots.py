"""Copy the browser tests' screenshots that the docs show into docs/img/, scaled and reduced to a small palette.

Run by scripts/screenshots.sh after the browser tests have written artifacts/screenshots/. Which test's
screenshot becomes which docs image is listed here, once.
"""
from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "artifacts" / "screenshots"
TARGET = ROOT / "docs" / "img"

# docs image -> (screenshot written by a browser test, width to scale to, height to crop the top to or None)
SHOTS: dict[str, tuple[str, int, int | None]] = {
    "monitor-running.png": ("demo-streaming.png", 1000, None),     # tests/browser/test_demo_browser.py
    "monitor-finished.png": ("demo-finished.png", 1000, None),     # tests/browser/test_demo_browser.py
    "monitor-waiting.png": ("waiting.png", 700, 700),              # tests/browser/test_monitor_chrome.py
    "monitor-phone.png": ("phone-390.png", 390, None),              # tests/browser/test_monitor_live.py
    "report.png": ("report-light.png", 900, 1300),                  # tests/browser/test_report_browser.py
    "runs.png": ("runs.png", 900, 500),                             # tests/browser/test_report_browser.py
}
COLOURS = 64  # fast octree keeps the verdict colours; median cut turned green to grey


def optimise(src: Path, dst: Path, width: int, crop_h: int | None) -> int:
    img = Image.open(src).convert("RGB")
    if img.width > width:
        img = img.resize((width, round(img.height * width / img.width)), Image.LANCZOS)
    if crop_h and img.height > crop_h:
        img = img.crop((0, 0, img.width, crop_h))
    img.quantize(colors=COLOURS, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(
        dst, optimize=True)
    return dst.stat().st_size


def main() -> int:
    missing = [s for s, _w, _h in SHOTS.values() if not (SOURCE / s).is_file()]
    if missing:
        print(f"missing in {SOURCE}: {', '.join(missing)} (run the browser tests first: scripts/screenshots.sh)",
              file=sys.stderr)
        return 1
    TARGET.mkdir(parents=True, exist_ok=True)
    total = 0
    for name, (src, width, crop_h) in SHOTS.items():
        size = optimise(SOURCE / src, TARGET / name, width, crop_h)
        total += size
        print(f"{TARGET.relative_to(ROOT) / name}: {size // 1024} KB (from {src})")
    print(f"total {total // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
