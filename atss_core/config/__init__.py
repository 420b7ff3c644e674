from .defaults import _C as cfg


def load_config(config_file=None, opts=(), freeze=False):
    """A copy of the defaults with ``config_file`` (a yaml path, optional) and then ``opts``
    (KEY VALUE ... as on a command line) merged in; frozen when ``freeze``. The global ``cfg``
    is left as it is (tools/train_net.py and tools/test_net.py merge into it, as officially)."""
    loaded = cfg.clone()
    if config_file:
        loaded.merge_from_file(config_file)
    loaded.merge_from_list(list(opts or []))
    if freeze:
        loaded.freeze()
    return loaded


__all__ = ["cfg", "load_config"]
