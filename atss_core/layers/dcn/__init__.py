from .deform_conv_func import deform_conv, modulated_deform_conv
from .deform_conv_module import DeformConv, ModulatedDeformConv, ModulatedDeformConvPack

__all__ = ["deform_conv", "modulated_deform_conv", "DeformConv", "ModulatedDeformConv", "ModulatedDeformConvPack"]
