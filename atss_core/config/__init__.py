from .defaults import _C as cfg

__all__ = ["cfg"]
