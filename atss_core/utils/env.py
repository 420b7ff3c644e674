"""Site-specific start-up code, as officially: $TORCH_DETECTRON_ENV_MODULE may name a Python
file whose ``setup_environment()`` runs when this module is first imported (cluster paths,
library settings). Without it nothing happens."""
import importlib.util
import os

ENV_MODULE_VARIABLE = "TORCH_DETECTRON_ENV_MODULE"


def setup_custom_environment(custom_module_path):
    """Runs ``setup_environment()`` of the Python file ``custom_module_path``."""
    if not os.path.isfile(custom_module_path):
        raise FileNotFoundError("{} names {}, which is not a file".format(ENV_MODULE_VARIABLE, custom_module_path))
    spec = importlib.util.spec_from_file_location("atss_core.utils.env.custom_module", custom_module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    setup = getattr(module, "setup_environment", None)
    if not callable(setup):
        raise AttributeError("{} ({}) has no setup_environment() function to call".format(
            custom_module_path, ENV_MODULE_VARIABLE))
    setup()


def setup_environment():
    """Runs the file $TORCH_DETECTRON_ENV_MODULE names, if any."""
    custom_module_path = os.environ.get(ENV_MODULE_VARIABLE)
    if custom_module_path:
        setup_custom_environment(custom_module_path)


setup_environment()
