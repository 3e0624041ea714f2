"""Build models without downloading their pretrained weights.

A constructor may load weights from the network (`torchvision.models.vgg19(weights=...)` inside a
perceptual loss, `torch.hub.load_state_dict_from_url`, `from_pretrained`). reslint needs only shapes:
downloading hundreds of MB for a lint is wrong, and on a machine without network it fails. While a
model is built, URL downloads hand back an empty state dict that `load_state_dict` accepts as "nothing
to load", Hugging Face hubs are offline, and the URLs skipped are said in a note.
"""

from __future__ import annotations

import contextlib
import os
import sys
import weakref
from typing import Any, Iterator

import torch
from torch import nn


class NotDownloaded(dict):
    """The state dict a skipped download stands for: loading it changes nothing."""


@contextlib.contextmanager
def weights_not_downloaded() -> Iterator[list[str]]:
    """Yields the list of URLs whose download was skipped during the block."""
    skipped: list[str] = []
    hub = torch.hub
    originals = {
        "load_state_dict_from_url": hub.load_state_dict_from_url,
        "download_url_to_file": hub.download_url_to_file,
    }
    load_state_dict = nn.Module.load_state_dict

    def load_from_url(url: str, *args: Any, **kwargs: Any) -> dict:
        skipped.append(url)
        return NotDownloaded()

    def download(url: str, *args: Any, **kwargs: Any) -> None:
        raise OSError(f"reslint does not download {url}: build the model without pretrained weights")

    def load(self: nn.Module, state_dict: Any, strict: bool = True, *args: Any, **kwargs: Any) -> Any:
        # Also a state dict derived from a skipped download (`{k.replace(...): v for ...}`) is empty.
        if isinstance(state_dict, NotDownloaded) or (skipped and isinstance(state_dict, dict) and not state_dict):
            return nn.modules.module._IncompatibleKeys([], [])
        return load_state_dict(self, state_dict, strict, *args, **kwargs)

    offline = {name: os.environ.get(name) for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    # Libraries import these by name (torchvision: `from torch.hub import load_state_dict_from_url`).
    replaced = _replace_everywhere({originals["load_state_dict_from_url"]: load_from_url, originals["download_url_to_file"]: download})
    nn.Module.load_state_dict = load
    os.environ.update({name: "1" for name in offline})
    try:
        yield skipped
    finally:
        for namespace, name, function in replaced:
            setattr(namespace, name, function)
        nn.Module.load_state_dict = load_state_dict
        for name, value in offline.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# Module globals found bound to one of the download functions. Each module is searched once (by
# identity, weakly held: the loader may drop and re-import project modules), so a build costs the new
# modules only, not a walk of every global of torch and transformers (25 ms with torchvision loaded).
_searched: "weakref.WeakSet" = weakref.WeakSet()
_holders: list[tuple[Any, str]] = []


def _replace_everywhere(replacements: dict[Any, Any]) -> list[tuple[Any, str, Any]]:
    """Rebind every module global that is one of the functions; returns what to put back."""
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not namespace or module in _searched:
            continue
        try:
            _searched.add(module)
        except TypeError:  # not weakly referenceable: searched each time
            pass
        _holders.extend((module, name) for name, value in list(namespace.items()) if _lookup(replacements, value) is not None)
    replaced = []
    for module, name in _holders:
        value = getattr(module, name, None)
        new = _lookup(replacements, value)
        if new is not None:
            replaced.append((module, name, value))
            setattr(module, name, new)
    return replaced


def _lookup(replacements: dict[Any, Any], value: Any) -> Any:
    try:
        return replacements.get(value)
    except TypeError:  # an unhashable global
        return None
