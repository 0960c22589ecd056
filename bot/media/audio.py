"""Audio checks and splitting with the ffmpeg binary that imageio-ffmpeg ships (no system ffmpeg needed).

Every ffmpeg run is an async subprocess: nothing blocks the event loop. ffmpeg reads only the bytes we
hand it: the input format is the one we chose from the magic bytes we checked (never ffmpeg's own
probing, which would follow an HLS playlist or an ffconcat list to other files), and only the `file`
protocol is allowed for the one temporary file we wrote.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import imageio_ffmpeg

from bot.errors import BadAttachment

# Signatures of files people paste where audio was expected, with what to tell them.
_NOT_AUDIO = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
)
# Lists that make a demuxer open further inputs (files on our disk, URLs): refused by name, before ffmpeg runs.
_PLAYLISTS = re.compile(
    rb"^(\xef\xbb\xbf)?\s*(#EXTM3U|#EXT-X-|ffconcat|\[playlist\]|<\?xml|<asx|<smil|<MPD|file\s+'|#EXTINF)",
    re.IGNORECASE,
)
_HTML = re.compile(rb"^\s*(<!doctype html|<html|<head|<!--)", re.IGNORECASE)
_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_DECODED_TIME = re.compile(r"time=(\d+):(\d\d):(\d\d(?:\.\d+)?)")
_SILENCE = re.compile(r"silence_(start|end): (-?\d+(?:\.\d+)?)")


def ffmpeg_exe() -> str:
    """Path of the bundled ffmpeg."""
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _container(data: bytes) -> str | None:
    """The ffmpeg demuxer for the audio or video container these bytes start with; None when not one we read."""
    head = data[:12]
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if len(data) > 188 and data[0] == 0x47 and data[188] == 0x47:
        return "mpegts"  # 188-byte packets, each starting with the sync byte
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free"):
        return "mov"  # MP4, M4A, MOV, 3GP: external data references stay off (the demuxer's default)
    if head[:3] == b"ID3":
        return "mp3"
    if head[:2] in (b"\xff\xf1", b"\xff\xf9"):
        return "aac"  # ADTS: layer bits 00
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06:
        return "mp3"  # an MPEG audio frame header with a layer
    for magic, demuxer in _CONTAINERS:
        if head.startswith(magic):
            return demuxer
    return None


_CONTAINERS = (
    (b"OggS", "ogg"),
    (b"fLaC", "flac"),
    (b"\x1a\x45\xdf\xa3", "matroska"),  # WebM and MKV
    (b"#!AMR", "amr"),
    (b"caff", "caf"),
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "asf"),  # WMA, WMV
    (b"\x00\x00\x01\xba", "mpeg"),  # MPEG program stream (.mpg, .vob)
)


def check_bytes(data: bytes, name: str) -> str:
    """Refuse, before any spending, what is certainly not audio: empty files, web pages, images, documents,
    playlists. Returns the ffmpeg demuxer for the container the bytes start with."""
    if not data:
        raise BadAttachment(f"{name} is empty (0 bytes).")
    if _HTML.match(data[:512]):
        raise BadAttachment(
            f"{name} is a web page, not audio. On Slack this means the bot lacks the files:read scope "
            "(ask an admin to add it and reinstall the app); elsewhere, upload the file itself rather than a link."
        )
    for magic, what in _NOT_AUDIO:
        if data.startswith(magic):
            raise BadAttachment(f"{name} is {what}, not audio or video.")
    if _PLAYLISTS.match(data[:512]):
        raise BadAttachment(f"{name} is a playlist or a list of files, not audio; upload the audio file itself.")
    demuxer = _container(data)
    if demuxer is None:
        raise BadAttachment(
            f"{name} has no audio that ffmpeg can read; send an audio or video file "
            "(MP3, M4A/MP4/MOV, WAV, OGG/Opus, FLAC, WebM/MKV, AAC, AIFF, AMR, WMA, AVI, MPEG)."
        )
    return demuxer


def _input(path: Path, demuxer: str) -> list[str]:
    """ffmpeg's arguments for reading our own temporary file, in the format we checked, and nothing else."""
    return ["-protocol_whitelist", "file", "-f", demuxer, "-i", f"file:{path}"]


async def _run(*args: str) -> tuple[int, str]:
    """Run ffmpeg; returns (exit code, stderr text)."""
    process = await asyncio.create_subprocess_exec(
        ffmpeg_exe(), "-hide_banner", "-nostdin", *args,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, err.decode("utf-8", "replace")


def _seconds(match: re.Match[str]) -> float:
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


async def duration(path: Path, name: str, demuxer: str) -> float:
    """Seconds of audio actually in the file; BadAttachment when ffmpeg finds no audio stream in it.

    Measured by reading every packet (stream copy, no decoding: about half a second per hour of
    MP3), not from the header, which a truncated file still fills with the whole recording's length.
    """
    _, log = await _run(*_input(path, demuxer), "-vn", "-map", "0:a:0", "-c", "copy", "-f", "null", "-")
    if "Audio:" not in log:
        raise BadAttachment(f"{name} has no audio that ffmpeg can read; send an audio or video file.")
    times = list(_DECODED_TIME.finditer(log))
    if times:
        return _seconds(times[-1])
    header = _DURATION.search(log)
    if header is None:
        raise BadAttachment(f"Could not measure the length of {name}.")
    return _seconds(header)


async def silences(
    path: Path, demuxer: str, min_silence: float = 0.4, threshold_db: int = -35
) -> list[tuple[float, float]]:
    """(start, end) of the quiet stretches, where a cut will not split a word."""
    _, log = await _run(
        *_input(path, demuxer), "-vn", "-af", f"silencedetect=n={threshold_db}dB:d={min_silence}", "-f", "null", "-"
    )
    spans: list[tuple[float, float]] = []
    start: float | None = None
    for kind, value in _SILENCE.findall(log):
        if kind == "start":
            start = max(0.0, float(value))
        elif start is not None:
            spans.append((start, float(value)))
            start = None
    return spans


def plan_cuts(total: float, chunk: float, quiet: list[tuple[float, float]], slack: float = 0.2) -> list[float]:
    """Cut points so no part is longer than `chunk`, each at the middle of a silence when one lies
    within the last `slack` share of the part, else exactly at the limit."""
    cuts: list[float] = []
    start = 0.0
    while total - start > chunk:
        limit = start + chunk
        earliest = limit - chunk * slack
        candidates = [(a + b) / 2 for a, b in quiet if earliest <= (a + b) / 2 <= limit]
        cut = max(candidates) if candidates else limit
        cuts.append(round(cut, 3))
        start = cut
    return cuts


async def split(path: Path, demuxer: str, cuts: list[float], folder: Path) -> list[Path]:
    """Re-encode into compact mono MP3 parts (16 kHz, 48 kb/s: ~3.6 MB per 10 minutes), cut at `cuts`."""
    pattern = folder / "part-%03d.mp3"
    args = ["-y", *_input(path, demuxer), "-vn", "-ac", "1", "-ar", "16000", "-c:a", "libmp3lame", "-b:a", "48k"]
    if cuts:
        args += ["-f", "segment", "-segment_times", ",".join(f"{c:.3f}" for c in cuts), "-reset_timestamps", "1"]
        target = str(pattern)
    else:
        target = str(folder / "part-000.mp3")
    code, log = await _run(*args, target)
    if code != 0:
        raise BadAttachment(
            f"ffmpeg could not convert the audio: {log.strip().splitlines()[-1] if log.strip() else code}"
        )
    return sorted(await asyncio.to_thread(lambda: list(folder.glob("part-*.mp3"))))
