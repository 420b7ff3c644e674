"""Registries that map config names to builders (instead of if/else chains)."""


class Registry(dict):
    """A name -> callable mapping filled with the ``register`` decorator."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind

    def register(self, name):
        def add(fn):
            if name in self:
                raise KeyError("{} {!r} is registered twice".format(self.kind, name))
            self[name] = fn
            return fn

        return add

    def __getitem__(self, name):
        if name not in self:
            raise KeyError("unknown {} {!r}; registered: {}".format(self.kind, name, ", ".join(sorted(self))))
        return super().__getitem__(name)


BACKBONES = Registry("backbone (MODEL.BACKBONE.CONV_BODY)")
RESNET_STEM_FUNCS = Registry("ResNet stem (MODEL.RESNETS.STEM_FUNC)")
RESNET_TRANSFORMATION_FUNCS = Registry("ResNet block (MODEL.RESNETS.TRANS_FUNC)")
# the official registry of RPN heads, built as head(cfg, in_channels, num_anchors) (MODEL.RPN.RPN_HEAD)
RPN_HEADS = Registry("RPN head (MODEL.RPN.RPN_HEAD)")
# the dense detector in the "rpn" slot, built as module(cfg, in_channels) and chosen by MODEL.ATSS_ON
# (FCOS_ON, RETINANET_ON): what the official build_rpn chose with if/else
RPN_MODULES = Registry("rpn head")
