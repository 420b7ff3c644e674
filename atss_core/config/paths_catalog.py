"""Where named weights live on this machine (no downloads: files are read from local paths).

``catalog://ImageNetPretrained/MSRA/R-50`` resolves to ``$ATSS_WEIGHTS_DIR/ImageNetPretrained/MSRA/R-50.pkl``
(default directory: ~/.cache/atss_core/weights). Put the Detectron ImageNet files there.
"""
import os

DEFAULT_WEIGHTS_DIR = os.path.join(os.path.expanduser("~"), ".cache", "atss_core", "weights")
# the official (Detectron) download location, quoted in error messages
DETECTRON_URL = "https://dl.fbaipublicfiles.com/detectron"


class ModelCatalog:
    KNOWN = (
        "ImageNetPretrained/MSRA/R-50",
        "ImageNetPretrained/MSRA/R-101",
        "ImageNetPretrained/MSRA/R-50-GN",
        "ImageNetPretrained/MSRA/R-101-GN",
        "ImageNetPretrained/FAIR/20171220/X-101-32x8d",
        "ImageNetPretrained/FAIR/20171220/X-101-64x4d",
    )

    @staticmethod
    def weights_dir():
        return os.environ.get("ATSS_WEIGHTS_DIR", DEFAULT_WEIGHTS_DIR)

    @staticmethod
    def get(name):
        """Local path of catalog entry ``name`` (without the catalog:// prefix)."""
        if name not in ModelCatalog.KNOWN:
            raise KeyError("unknown catalog:// weights {!r}; known: {}".format(name, ", ".join(ModelCatalog.KNOWN)))
        path = os.path.join(ModelCatalog.weights_dir(), name + ".pkl")
        if not os.path.isfile(path):
            raise FileNotFoundError(
                "catalog://{} resolves to {}, which does not exist. Download {}/{}.pkl there (or set "
                "ATSS_WEIGHTS_DIR), or set MODEL.WEIGHT to a local file.".format(name, path, DETECTRON_URL, name))
        return path
