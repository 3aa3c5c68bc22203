"""Frames in and out: video files, image sequences, cameras and network streams (OpenCV).

One import for what the parts hold: ``video_formats`` (VideoInfo, the suffixes),
``video_readers`` (sources: files, sequences, cameras, streams), ``video_writers`` (sinks: video
files and image sequences) and ``video_overwrite_guard`` (an output must not be an input).
"""

from .video_formats import DEFAULT_SEQUENCE_FPS, VIDEO_SUFFIXES, VideoInfo
from .video_overwrite_guard import check_output_not_input
from .video_readers import CaptureSource, SequenceSource, is_video_input, open_source, read_frames, sample_frames
from .video_writers import CODECS, SequenceSink, VideoSink, check_codec, check_output, open_sink

__all__ = ["CODECS", "DEFAULT_SEQUENCE_FPS", "VIDEO_SUFFIXES", "CaptureSource", "SequenceSink", "SequenceSource",
           "VideoInfo", "VideoSink", "check_codec", "check_output", "check_output_not_input", "is_video_input", "open_sink",
           "open_source", "read_frames", "sample_frames"]
