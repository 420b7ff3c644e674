"""Where weights come from: local files, catalog:// names, http(s):// URLs and torchvision://
backbones, downloaded into a verified cache (download.py, sources.py), and the converters
that turn other projects' files into our state-dict names (torchvision.py)."""
