"""One entry point from a weights name to a local file (MODEL.WEIGHT, the demos' --weights,
tools/export_onnx.py): a path is used as it is; ``catalog://NAME`` (Detectron's ImageNet
models), ``http(s)://URL``, ``torchvision://ARCH`` (torchvision's ImageNet ResNets, address
and hash from torchvision's weight enums) and ``mmdet://NAME`` (mmdetection's ATSS models,
weights/mmdet.py; $ATSS_MMDET_URL replaces their address up to the file name, for a mirror)
are downloaded into the cache
($ATSS_WEIGHTS_DIR, default ~/.cache/atss_core/weights) the first time (download.py)."""
import hashlib
import os
import urllib.parse

from atss_core.config.paths_catalog import ModelCatalog
from atss_core.weights.download import download
from atss_core.weights.mmdet import mmdet_url
from atss_core.weights.torchvision import torchvision_weight_file_name, torchvision_weight_url

CATALOG_PREFIX = "catalog://"
TORCHVISION_PREFIX = "torchvision://"
MMDET_PREFIX = "mmdet://"
URL_PREFIXES = ("http://", "https://")


def url_cache_path(url):
    """$ATSS_WEIGHTS_DIR/<host>/<path of the URL>[/query-<hash>]/<file name>: two addresses never
    share a cache file (download links often differ in their query only)."""
    parsed = urllib.parse.urlparse(url)
    parts = [p for p in parsed.path.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise ValueError("{} does not name a file (the cache keeps it under its file name)".format(url))
    if parsed.query:
        parts.insert(len(parts) - 1, "query-" + hashlib.sha256(parsed.query.encode()).hexdigest()[:12])
    return os.path.join(ModelCatalog.weights_dir(), parsed.netloc.replace(":", "_"), *parts)


def resolve_weights(name):
    """A local path for the weights ``name`` (downloaded first when it is remote and not cached)."""
    if name.startswith(CATALOG_PREFIX):
        entry = name[len(CATALOG_PREFIX):]
        return download(ModelCatalog.url(entry), ModelCatalog.get(entry))
    if name.startswith(TORCHVISION_PREFIX):
        arch = name[len(TORCHVISION_PREFIX):]
        return download(torchvision_weight_url(arch), os.path.join(ModelCatalog.weights_dir(), "torchvision",
                                                                   torchvision_weight_file_name(arch)))
    if name.startswith(MMDET_PREFIX):
        url = mmdet_url(name[len(MMDET_PREFIX):])
        file_name = os.path.basename(urllib.parse.urlparse(url).path)
        mirror = os.environ.get("ATSS_MMDET_URL")
        if mirror:
            url = mirror.rstrip("/") + "/" + file_name
        return download(url, os.path.join(ModelCatalog.weights_dir(), "mmdet", file_name))
    if name.startswith(URL_PREFIXES):
        return download(name, url_cache_path(name))
    return name
