"""The library's entry points, callable from Python; the CLI only parses, prints and maps errors.

Each function takes paths or arrays, returns a small result object and raises the package's
typed errors (``b2g_deploy.errors``) for anything the caller got wrong.
"""

from .denoising import ImagesReport, VideoReport, denoise_images, denoise_video, is_video_job, source_spec
from .exporting import EngineReport, ExportReport, TritonReport, build_checked_engine, export
from .fitting import FitReport, FittedNetwork, checkpoint_meta, default_fit_outputs, fit, fit_network
from .pretrain import PretrainReport, pretrain
from .runtime_choice import open_runtime, runtime_options
from .temporal_stage import TemporalStage, fit_temporal_stage

__all__ = ["EngineReport", "ExportReport", "FitReport", "FittedNetwork", "ImagesReport", "PretrainReport",
           "TemporalStage", "TritonReport", "VideoReport", "build_checked_engine", "checkpoint_meta",
           "default_fit_outputs", "denoise_images", "denoise_video", "export", "fit", "fit_network",
           "fit_temporal_stage", "is_video_job", "open_runtime", "pretrain", "runtime_options", "source_spec"]
