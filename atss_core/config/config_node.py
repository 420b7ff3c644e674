"""yacs CfgNode whose merges name an unknown key and suggest the closest known one."""
import difflib
import os
import re

import yaml
from yacs.config import CfgNode as _YacsCfgNode

_UNKNOWN_KEY = re.compile(r"Non-existent (?:config )?key: ([A-Za-z0-9_.]+)")
_TYPE_MISMATCH = re.compile(r"Type mismatch \(<class '(\w+)'> vs\. <class '(\w+)'>\) with values \((.*) vs\. (.*)\) "
                            r"for config key: ([A-Za-z0-9_.]+)", re.S)


def _type_error_message(error, source):
    """yacs's type-mismatch error, reworded: the key, the expected type and an example."""
    match = _TYPE_MISMATCH.search(str(error))
    if match is None:
        return "{} (in {})".format(error, source)
    expected, got, default, value, key = match.groups()
    message = "config key {} expects a value of type {} (current value {}), got {} of type {} in {}".format(
        key, expected, default, value, got, source)
    if expected in ("tuple", "list"):
        message += "; write a sequence such as ({},)".format(value)
    return message


def _all_keys(node, prefix=""):
    keys = []
    for name, value in node.items():
        full = prefix + name
        keys.append(full)
        if isinstance(value, _YacsCfgNode):
            keys.extend(_all_keys(value, full + "."))
    return keys


class CfgNode(_YacsCfgNode):
    def _unknown_key_error(self, error, source):
        match = _UNKNOWN_KEY.search(str(error))
        if match is None:
            return error
        key = match.group(1)
        message = "unknown config key '{}' in {}".format(key, source)
        close = difflib.get_close_matches(key, _all_keys(self), n=1, cutoff=0.6)
        if close:
            message += " (did you mean '{}'?)".format(close[0])
        return KeyError(message)

    def merge_from_file(self, cfg_filename):
        if not os.path.isfile(cfg_filename):
            raise FileNotFoundError("config file not found: {}".format(cfg_filename))
        try:
            super().merge_from_file(cfg_filename)
        except (KeyError, AssertionError) as error:
            raise self._unknown_key_error(error, cfg_filename) from None
        except yaml.YAMLError as error:
            raise ValueError("config file {} is not valid YAML: {}".format(cfg_filename, error)) from None
        except AttributeError:  # the file is a YAML list or scalar
            raise ValueError("config file {} must be a mapping of config keys".format(cfg_filename)) from None
        except ValueError as error:  # yacs: a value of the wrong type
            raise ValueError(_type_error_message(error, cfg_filename)) from None

    def merge_from_list(self, cfg_list):
        if len(cfg_list) % 2:
            raise ValueError("config overrides must be KEY VALUE pairs, got an odd number of items: {}".format(
                list(cfg_list)))
        try:
            super().merge_from_list(cfg_list)
        except (KeyError, AssertionError) as error:
            raise self._unknown_key_error(error, "the command-line overrides") from None
        except ValueError as error:  # yacs: a value of the wrong type
            raise ValueError(_type_error_message(error, "the command-line overrides")) from None
