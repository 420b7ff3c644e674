from .build import make_gradient_clipper, make_lr_scheduler, make_optimizer
from .lr_scheduler import WarmupCosineLR, WarmupMultiStepLR

__all__ = ["make_optimizer", "make_lr_scheduler", "WarmupMultiStepLR", "WarmupCosineLR", "make_gradient_clipper"]
