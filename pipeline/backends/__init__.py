"""Storage backends behind ``pipeline.volume.Volume``: one file per format."""
