"""What scaling an attached photo to what the model reads saves: bytes uploaded, and what it costs us.

A 4032x3024 JPEG of noise (compresses like a detailed photo, worst case for JPEG) is prepared for a
patch model (gpt-4.1-mini) and a tile model (gpt-4o), as a conversation does before sending it.
"""

from __future__ import annotations

import io
import statistics
import time
from typing import Any

from PIL import Image

from bot.billing.prices import PriceTable
from bot.media.image_limits import ImageLimits
from bot.media.vision import VisionFormula, prepare

RUNS = 3


def photo(width: int = 4032, height: int = 3024) -> bytes:
    """A phone-camera-sized JPEG whose pixels are noise."""
    out = io.BytesIO()
    Image.effect_noise((width, height), 40).convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


async def run() -> dict[str, Any]:
    """Sizes and tokens per model, and the median time to check and scale the photo."""
    prices = PriceTable.load()
    data = photo()
    limits = ImageLimits(max_pixels=50_000_000, max_per_message=10, max_bytes=25 * 2**20)  # the defaults
    report: dict[str, Any] = {"source": {"pixels": "4032x3024", "bytes": len(data)}}
    for model in ("gpt-4.1-mini", "gpt-4o"):
        formula = VisionFormula.from_table(prices.vision(model) or {})
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            image = await prepare("photo.jpg", data, formula, "auto", limits)
            times.append((time.perf_counter() - started) * 1000)
        report[model] = {
            "sent_pixels": f"{image.width}x{image.height}",
            "sent_bytes": len(image.data),
            "bytes_saved_share": round(1 - len(image.data) / len(data), 3),
            "tokens": image.tokens,
            "prepare_ms_p50": round(statistics.median(times)),
        }
    return report
