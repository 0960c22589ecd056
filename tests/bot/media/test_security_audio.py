"""ffmpeg reads only the bytes we were given: a playlist or a concat list naming a file on the bot's disk is refused
before ffmpeg runs, and ffmpeg is told the format we checked instead of probing for one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.app import open_engine
from bot.errors import BadAttachment
from bot.media import audio
from tests.fakes.openai_server import FakeOpenAI
from tests.harness.audio import make_audio
from tests.harness.media import bytes_attachment, ledger, run
from tests.harness.messages import message


def playlists(secret: Path) -> dict[str, bytes]:
    """Lists that make ffmpeg's demuxers open another file, each naming the bot's own `secret`."""
    return {
        "voice.m3u8": (
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:75\n#EXT-X-MEDIA-SEQUENCE:0\n"
            f"#EXTINF:75.0,\n{secret}\n#EXT-X-ENDLIST\n"
        ).encode(),
        "voice.m3u": f"#EXTM3U\n#EXTINF:30,secret\n{secret}\n".encode(),
        "voice.ffconcat": f"ffconcat version 1.0\nfile '{secret.name}'\n".encode(),
        "voice.txt": f"\ufeff  #EXTM3U\n{secret}\n".encode(),
    }


@pytest.mark.parametrize("name", ["voice.m3u8", "voice.m3u", "voice.ffconcat", "voice.txt"])
async def test_a_playlist_naming_a_file_on_the_bots_disk_is_refused_before_ffmpeg_runs(
    make_settings: Any, fake_openai: FakeOpenAI, tmp_path: Path, name: str
) -> None:
    secret = make_audio(tmp_path / "secret.mp3", 75)
    data = playlists(secret)[name]
    settings = make_settings(transcribe_chunk_seconds=30)  # a split would send the secret's audio on
    async with open_engine(settings) as engine:
        r = await run(engine, message("/transcribe", attachments=(bytes_attachment(name, data),)))
    assert r.errors == [f"{name} is a playlist or a list of files, not audio; upload the audio file itself."]
    assert fake_openai.audio_files == []
    assert await ledger(settings) == []


async def test_ffmpeg_is_told_the_checked_format_and_reads_only_its_own_file(tmp_path: Path) -> None:
    clip = make_audio(tmp_path / "clip.mp3", 2)
    demuxer = audio.check_bytes(clip.read_bytes(), "clip.mp3")
    assert demuxer == "mp3"
    assert await audio.duration(clip, "clip.mp3", demuxer) == pytest.approx(2.0, abs=0.1)
    # Bytes that are not in the container we checked are not re-probed as something else.
    fake = tmp_path / "fake.mp3"
    fake.write_bytes(b"OggS" + clip.read_bytes())
    with pytest.raises(BadAttachment, match=r"no audio that ffmpeg can read|Could not measure"):
        await audio.duration(fake, "fake.mp3", audio.check_bytes(fake.read_bytes(), "fake.mp3"))


@pytest.mark.parametrize(("suffix", "demuxer"), [(".mp3", "mp3"), (".wav", "wav"), (".ogg", "ogg")])
def test_the_container_is_chosen_from_magic_bytes(tmp_path: Path, suffix: str, demuxer: str) -> None:
    clip = make_audio(tmp_path / f"clip{suffix}", 1)
    assert audio.check_bytes(clip.read_bytes(), f"renamed{'.m3u8'}") == demuxer
