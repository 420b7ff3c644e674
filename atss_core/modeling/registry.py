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
RPN_HEADS = Registry("rpn head")
