"""Test audio made on the spot with the bundled ffmpeg: no binary fixtures in the repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bot.media.audio import ffmpeg_exe


def make_audio(path: Path, seconds: float, *, gap_every: float | None = None, gap: float = 1.5) -> Path:
    """A 440 Hz tone of `seconds`, silent for `gap` seconds at the end of every `gap_every` seconds."""
    tone = "0.5*sin(2*PI*440*t)"
    if gap_every:
        tone += f"*lt(mod(t\\,{gap_every})\\,{gap_every - gap})"
    codec = {".mp3": ["-c:a", "libmp3lame", "-b:a", "24k"], ".wav": ["-c:a", "pcm_s16le"], ".ogg": ["-c:a", "libopus"]}
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", f"aevalsrc='{tone}':s=16000:d={seconds}", "-ac", "1", *codec[path.suffix], str(path)],
        check=True,
    )  # fmt: skip
    return path
