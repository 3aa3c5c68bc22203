"""Which network `denoise VIDEO` fits without a model: temporal for a file wherever a shipped
temporal prior starts the fit (colour or grey), single-frame for a colour camera or stream, or where no
prior starts it, unless asked, and how many frames each fits on."""

from __future__ import annotations

from b2g_deploy.checkpoint import load_checkpoint
from b2g_deploy.temporal.export import read_temporal_metadata
from video_clips import clip, one_thread, run  # noqa: F401  (one_thread: an autouse fixture)


def test_one_command_flow_fits_a_temporal_window_from_the_temporal_prior_by_default(tmp_path):
    # No flags: the temporal network, centred for a file, on 8 frames as fit --temporal: a 5-frame
    # window fits in them, so k stays 2 and the fit starts from the shipped temporal prior. On 4
    # (the single-frame flow's default, which --temporal used before) k fell to 1 and the prior
    # was dropped.
    from b2g_deploy.api import denoise_video

    video = clip(tmp_path / "clip.mkv", n=10, channels=3)
    report = denoise_video(video, tmp_path / "out.mkv", preset="fast", fit_seconds=0.5, device="cpu")
    checkpoint = load_checkpoint(tmp_path / "out.b2g.pt")
    assert checkpoint.is_temporal and checkpoint.meta["frames"] == list(range(8))
    assert checkpoint.meta["temporal_fit"]["start"] == "prior_rgb_t2.pt"
    meta = read_temporal_metadata(tmp_path / "out.onnx")
    assert (meta.k, meta.causal) == (2, False)
    assert report.written == 10 and not any("too few" in n or "single-frame fit" in n for n in report.notes)


def test_single_frame_flow_and_too_few_frames_for_a_window(tmp_path):
    from b2g_deploy.api import denoise_video

    video = clip(tmp_path / "clip.mkv", n=6, channels=3)
    single = denoise_video(video, tmp_path / "s.mkv", preset="fast", fit_seconds=0.3, device="cpu", temporal=False)
    checkpoint = load_checkpoint(tmp_path / "s.b2g.pt")
    assert not checkpoint.is_temporal and checkpoint.meta["frames"] == list(range(4)) and single.written == 6
    # One frame to fit on: the default falls back to the single-frame network and says so; asked
    # for, the temporal network is a one-line error before any fit.
    one = denoise_video(video, tmp_path / "o.mkv", preset="fast", fit_seconds=0.3, device="cpu", fit_frames=1)
    assert not load_checkpoint(tmp_path / "o.b2g.pt").is_temporal
    assert any("single-frame network" in n for n in one.notes)
    asked = run("denoise", video, "-o", tmp_path / "a.mkv", "--temporal", "--fit-frames", 1, "--device", "cpu")
    assert asked.exit_code == 2 and asked.output.startswith("error:") and "2 frames" in asked.output
    assert not (tmp_path / "a.b2g.pt").exists()
    for flags in (["--single-frame", "--causal"], ["--single-frame", "--k", "3"]):
        refused = run("denoise", video, "-o", tmp_path / "r.mkv", *flags)
        assert refused.exit_code == 2 and "--single-frame" in refused.output


def test_what_a_video_is_fitted_with_files_and_live_sources():
    from b2g_deploy.api.denoising import video_fit_choice

    assert video_fit_choice(None, None, 2, live=False) == (None, False, [])  # the priors decide
    single, causal, notes = video_fit_choice(None, None, 2, live=True)  # colour
    assert (single, causal) == (False, True) and "single-frame" in notes[0]
    assert video_fit_choice(None, None, 2, live=True, channels=1) == (None, True, [])  # grey: the priors decide
    assert video_fit_choice(True, None, 2, live=True) == (True, True, [])  # asked: causal on a stream
    assert video_fit_choice(None, True, 2, live=True) == (None, True, [])  # --causal asks for it too
    assert video_fit_choice(None, False, 2, live=True) == (None, False, [])  # --centred
    assert video_fit_choice(None, None, 3, live=True) == (None, True, [])  # --k


def test_a_grey_video_fits_from_the_grey_temporal_priors_and_a_window_without_one(tmp_path):
    # A grey file gets the temporal network from the shipped grey temporal prior, as a colour one
    # does, and --causal from the grey causal one. For a window no prior reads (k=1) the flow
    # keeps the single-frame network, with a note (a temporal fit from the single-frame fit
    # measured no better, in more time); --temporal fits one anyway.
    from b2g_deploy.api import denoise_video

    video = clip(tmp_path / "grey.mkv", n=6)
    report = denoise_video(video, tmp_path / "g.mkv", preset="fast", fit_seconds=0.3, device="cpu")
    checkpoint = load_checkpoint(tmp_path / "g.b2g.pt")
    assert checkpoint.is_temporal and checkpoint.channels == 1 and report.written == 6
    assert checkpoint.meta["temporal_fit"]["start"] == "prior_grey_t2.pt"
    assert read_temporal_metadata(tmp_path / "g.onnx").k == 2
    assert not any("no shipped temporal prior" in n or "single-frame fit" in n for n in report.notes)
    causal = denoise_video(video, tmp_path / "c.mkv", preset="fast", fit_seconds=0.3, device="cpu", causal=True)
    fitted = load_checkpoint(tmp_path / "c.b2g.pt")
    assert fitted.is_temporal and fitted.meta["temporal"]["causal"] and causal.written == 6
    assert fitted.meta["temporal_fit"]["start"] == "prior_grey_t2c.pt"
    narrow = denoise_video(video, tmp_path / "n.mkv", preset="fast", fit_seconds=0.3, device="cpu", k=1)
    assert not load_checkpoint(tmp_path / "n.b2g.pt").is_temporal and narrow.written == 6
    assert any("no shipped temporal prior" in n for n in narrow.notes)
    asked = denoise_video(video, tmp_path / "t.mkv", preset="fast", fit_seconds=0.3, device="cpu", temporal=True, k=1)
    assert asked.written == 6 and not any("no shipped temporal prior" in n for n in asked.notes)
    assert load_checkpoint(tmp_path / "t.b2g.pt").meta["temporal_fit"]["start"] == "single-frame fit"


def test_a_camera_gets_the_causal_temporal_network_in_grey_and_the_single_frame_one_in_colour(tmp_path, monkeypatch):
    # A file run as a camera is (the live test answers yes; the frames still open as the file):
    # as a stream the causal temporal flow won every held-out grey clip and lost colour ones at
    # sigma 50, so grey gets it by default and colour keeps the single-frame network.
    from b2g_deploy.api import denoise_video, denoising
    from b2g_deploy.io.video_readers import open_source

    monkeypatch.setattr(denoising, "_is_live", lambda spec: True)
    monkeypatch.setattr(denoising, "_open", lambda spec, channels, reconnects: open_source(spec, channels))
    grey = denoise_video(clip(tmp_path / "grey.mkv", n=6), tmp_path / "g.mkv", preset="fast", fit_seconds=0.3,
                         device="cpu")
    fitted = load_checkpoint(tmp_path / "g.b2g.pt")
    assert fitted.is_temporal and fitted.meta["temporal"]["causal"] and grey.written == 6
    assert fitted.meta["temporal_fit"]["start"] == "prior_grey_t2c.pt" and not grey.notes
    colour = denoise_video(clip(tmp_path / "rgb.mkv", n=6, channels=3), tmp_path / "c.mkv", preset="fast",
                           fit_seconds=0.3, device="cpu")
    assert not load_checkpoint(tmp_path / "c.b2g.pt").is_temporal and colour.written == 6
    assert any("colour camera or stream" in n for n in colour.notes)
