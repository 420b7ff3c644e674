"""Measurements behind tools/benchmark.py and tools/gpu_check.py: the compiled ops and the
detector against torchvision in the same run, COCO evaluation backends, the GPU check."""
