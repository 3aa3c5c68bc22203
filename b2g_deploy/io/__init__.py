"""Reading and writing images, video and streams; tiling large frames."""
