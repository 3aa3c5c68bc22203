"""Video and sequence readers and writers (b2g_deploy.io.video): round trips, skipping, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from b2g_deploy.errors import InputError, OutputExistsError
from b2g_deploy.io.video import (
    CaptureSource,
    SequenceSource,
    VideoInfo,
    open_sink,
    open_source,
    read_frames,
    sample_frames,
)

W, H, N = 64, 48, 6


def clip_frames(n: int = N, channels: int = 3) -> list[np.ndarray]:
    """Frames whose content encodes their index (a flat level per frame plus a ramp), so order
    and identity can be checked after a lossless round trip."""
    ramp = np.linspace(0, 1, W, dtype=np.float32)[None, None, :].repeat(H, axis=1)
    frames = []
    for i in range(n):
        f = np.empty((channels, H, W), np.float32)
        f[:] = 0.5 * ramp
        f[:, : H // 2] = (10 + 30 * i) / 255.0  # top half: the frame index
        if channels == 3:
            f[1, H // 2 :, : W // 2] = 200 / 255.0  # a colour patch, so BGR/RGB mix-ups show
        frames.append(np.round(f * 255) / 255)
    return frames


def write_clip(path: Path, frames: list[np.ndarray], fps: float = 12.0, codec: str = "ffv1") -> Path:
    c, h, w = frames[0].shape
    sink = open_sink(path, VideoInfo(w, h, c, fps, len(frames)), codec)
    for f in frames:
        sink.write(f)
    sink.close()
    return path


def frame_index(frame: np.ndarray) -> int:
    return int(round((frame[0, 2, 2] * 255 - 10) / 30))


@pytest.mark.parametrize("codec,suffix", [("ffv1", ".mkv"), ("hfyu", ".mkv"), ("hfyu", ".avi")])
def test_lossless_round_trip_keeps_count_size_order_fps_and_values(tmp_path, codec, suffix):
    frames = clip_frames()
    path = write_clip(tmp_path / f"clip{suffix}", frames, codec=codec)
    source = open_source(path)
    assert (source.info.width, source.info.height, source.info.channels) == (W, H, 3)
    assert source.info.fps == pytest.approx(12.0)
    assert source.info.frame_count == N
    got = [(i, f) for i, f in source]
    source.close()
    assert [i for i, _ in got] == list(range(N))
    assert [frame_index(f) for _, f in got] == list(range(N))
    for (_, f), ref in zip(got, frames):
        np.testing.assert_array_equal(np.round(f * 255), np.round(ref * 255))  # FFV1 and HuffYUV are lossless


@pytest.mark.parametrize("codec", ["ffv1", "hfyu"])
def test_grey_video_reads_as_one_channel_and_refuses_grey_model_on_colour(tmp_path, codec):
    frames = clip_frames(channels=1)
    grey = write_clip(tmp_path / "grey.mkv", frames, codec=codec)
    source = open_source(grey)
    assert source.info.channels == 1
    got = [f for _, f in source]
    source.close()
    for f, ref in zip(got, frames):  # grey through HuffYUV's YUV path would be off by one level
        np.testing.assert_array_equal(np.round(f * 255), np.round(ref * 255))
    colour = write_clip(tmp_path / "colour.mkv", clip_frames())
    with pytest.raises(InputError, match="colour video"):
        open_source(colour, channels=1)


def test_sample_frames_spreads_over_the_clip(tmp_path):
    path = write_clip(tmp_path / "clip.mkv", clip_frames())
    stack, info, indices = sample_frames(path, 3)
    assert stack.shape == (3, 3, H, W)
    assert indices == [0, 2, 5] or indices == [0, 3, 5]
    assert [frame_index(f) for f in stack] == indices


class _Flaky(CaptureSource):
    """A capture whose frames 2 and 3 are corrupt: one returns None, one raises."""

    def read_raw(self):
        frame = super().read_raw()
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 3:
            return None
        if self.calls == 4:
            raise RuntimeError("corrupt packet")
        return frame


def test_corrupt_frames_in_the_middle_are_skipped_and_counted(tmp_path):
    path = write_clip(tmp_path / "clip.mkv", clip_frames())
    source = _Flaky(str(path))
    got = list(source)
    assert source.skipped == 2
    assert source.skipped_frames == ["frame 2 (undecodable)", "frame 3 (undecodable)"]  # named, not just counted
    assert [frame_index(f) for _, f in got] == [0, 1, 4, 5]
    assert [i for i, _ in got] == [0, 1, 4, 5]


class _Dropping(CaptureSource):
    """A 'live' stream that ends after two frames every time it is (re)opened."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.info = VideoInfo(W, H, 3, 12.0, None, live=True)

    def _open(self):
        self._served = 0
        return super()._open()

    def read_raw(self):
        self._served = getattr(self, "_served", 0) + 1
        return super().read_raw() if self._served <= 2 else None


def test_dropped_stream_is_reconnected_then_stops_cleanly(tmp_path):
    path = write_clip(tmp_path / "clip.mkv", clip_frames())
    source = _Dropping(str(path), reconnects=2, backoff=0.0)
    got = list(source)
    assert source.reconnected == 2
    assert len(got) == 6  # two frames per connection, three connections


def test_unopenable_video_is_a_one_line_input_error(tmp_path):
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(b"not a video at all" * 10)
    with pytest.raises(InputError):
        open_source(bad)
    with pytest.raises(InputError, match="does not exist"):
        open_source(tmp_path / "missing.mp4")


def test_sixteen_bit_sequence_in_and_out(tmp_path):
    import cv2

    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        img = np.full((H, W), 1000 + 20000 * i, np.uint16)
        img[0, 0] = 12345  # a value 8 bits cannot hold
        cv2.imwrite(str(src / f"f{i}.png"), img)
    (src / "f10.png").write_bytes(b"truncated")  # unreadable file at the end of the natural order
    source = open_source(src)
    assert isinstance(source, SequenceSource)
    assert source.info.bit_depth == 16 and source.info.channels == 1
    out = tmp_path / "out"
    sink = open_sink(out, source.info)
    for index, frame in source:
        sink.write(frame, index)
    sink.close()
    assert source.skipped == 1 and source.skipped_frames == ["f10.png (not a readable image)"]
    written = sorted(out.iterdir())
    assert [p.name for p in written] == ["frame_000000.png", "frame_000001.png", "frame_000002.png"]
    back = cv2.imread(str(written[1]), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and back[0, 0] == 12345 and back[5, 5] == 21000
    assert len(read_frames(out)) == 3


def test_existing_outputs_need_force(tmp_path):
    info = VideoInfo(W, H, 3, 12.0, N)
    target = tmp_path / "out.mkv"
    target.write_bytes(b"x")
    with pytest.raises(OutputExistsError):
        open_sink(target, info)
    folder = tmp_path / "seq"
    folder.mkdir()
    (folder / "frame_000000.png").write_bytes(b"x")
    with pytest.raises(OutputExistsError):
        open_sink(folder, info)
    open_sink(target, info, force=True).close()  # allowed with force; no frame -> no new file
    with pytest.raises(InputError, match="FFV1"):
        open_sink(tmp_path / "a.mp4", info)
    with pytest.raises(InputError, match="HFYU needs a .mkv or .avi"):
        open_sink(tmp_path / "a.mp4", info, codec="hfyu")
    with pytest.raises(InputError, match="unknown codec 'h264'"):
        open_sink(tmp_path / "b.mkv", info, codec="h264")


@pytest.mark.parametrize("dtype, scale", [(np.uint8, 255.0), (np.uint16, 65535.0)])
def test_decoded_frames_are_the_raw_values_over_the_scale_in_rgb(dtype, scale):
    from b2g_deploy.io.video_readers import _bgr_to_unit

    raw = np.random.default_rng(0).integers(0, int(scale) + 1, (9, 11, 3)).astype(dtype)
    rgb = _bgr_to_unit(raw, 3)
    assert rgb.dtype == np.float32 and rgb.flags.c_contiguous
    assert np.array_equal(rgb, raw[..., ::-1].transpose(2, 0, 1).astype(np.float32) / np.float32(scale))
    assert np.array_equal(_bgr_to_unit(raw, 1), raw[None, ..., 1].astype(np.float32) / np.float32(scale))
