"""Import a target's module as Python would, and say exactly what is missing when that fails.

- A file inside a package (an `__init__.py` in its folder, walking up) is imported as its dotted module,
  with the top package's parent folder on `sys.path`, so relative imports (`from .parts import *`) work.
  A plain file is imported under its own name with its folder first on `sys.path`, as when it is run
  as a script, so sibling imports (`from layers import Block`) work.
- Module targets (`unet.unet_model:UNet`) resolve from the configuring pyproject's folder (`root`, and
  its `src/`), then the current directory (as `python -c "import unet"` does), then the installed packages.
- Two targets of one run that each have a sibling module of the same name (`projA/layers.py`,
  `projB/layers.py`) each get their own: before a target's folder is used, cached modules of the user's
  project that a module in that folder shadows are dropped from `sys.modules` (never the standard
  library's, installed packages' or reslint's own).
- A module that exists but imports a missing dependency names the dependency
  (`No module named 'einops' (pip install einops)`); "module not found" is said only when the target's
  own module (or one of its parent packages) is missing.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import site
import sys
import sysconfig
import types
from functools import lru_cache

from reslint.errors import TargetError
from reslint.where import display_path, traceback_user_location

# Import names whose pip distribution is named differently.
PIP_NAMES = {
    "cv2": "opencv-python", "PIL": "pillow", "sklearn": "scikit-learn", "skimage": "scikit-image",
    "yaml": "pyyaml", "mamba_ssm": "mamba-ssm", "causal_conv1d": "causal-conv1d", "attr": "attrs",
    "Bio": "biopython", "dateutil": "python-dateutil", "google.protobuf": "protobuf", "fvcore": "fvcore",
}


def import_file(path: str, root: str | None = None) -> types.ModuleType:
    """The module of a file target, imported as Python would import it (see the module docstring)."""
    if not os.path.exists(path):
        raise TargetError(f"{path}: file not found")
    if os.path.isdir(path):
        raise TargetError(f"{path}: is a folder; name a file, or lint the folder without ':Name'")
    path = os.path.abspath(path)
    shown = display_path(path)
    folder = os.path.dirname(path)
    packages = package_parts(folder)
    stem = os.path.splitext(os.path.basename(path))[0]
    # Folders the project's own imports may start from, lowest priority first: the pyproject's folder,
    # the current directory (repositories are run from their root), then the file's own folder.
    for extra in (root, os.getcwd()):
        if extra:
            _add_to_path(os.path.abspath(extra), front=False)
    if packages:
        base = folder
        for _ in packages:
            base = os.path.dirname(base)
        dotted = ".".join(packages if stem == "__init__" else [*packages, stem])
        use_folder(base)  # as `python -m pkg.sub.mod` from base: the package's inner folders stay off sys.path
        module = _import_module(dotted, shown, path)
        if _location(module) != path:  # something cached under that name that use_folder may not drop
            raise TargetError(f"{shown}: importing it as {dotted} gave {_location(module)} instead; a module of that name is already loaded")
        return module
    use_folder(folder)
    name = stem
    existing = sys.modules.get(name)
    if existing is not None:
        if _location(existing) == path:
            return existing
        name = f"reslint_target_{abs(hash(path))}_{stem}"  # a protected module (stdlib, installed) has that name
    return _exec_file(name, path, shown)


def import_module(dotted: str, root: str | None = None, hint_name: str | None = None) -> types.ModuleType:
    """A module target, from `root`, then the current directory, then the installed packages."""
    src = os.path.join(root, "src") if root else None  # the src layout: root/src/pkg
    folders = list(dict.fromkeys(os.path.abspath(f) for f in (root, src, os.getcwd()) if f and os.path.isdir(f)))
    top = dotted.split(".")[0]
    for folder in reversed(folders):  # the first one ends up first on sys.path
        _add_to_path(folder, front=True)
    provider = next((f for f in folders if _defines(f, top)), None)
    if provider is not None:
        use_folder(provider, only={top})
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError as error:
        if error.name and _is_self_or_parent(error.name, dotted):
            file_form = dotted.replace(".", "/") + ".py" + (f":{hint_name}" if hint_name else "")
            part = "" if error.name == dotted else f": no package {error.name!r}"
            raise TargetError(
                f"module {dotted!r} not found{part} (looked in {', '.join(display_path(f) or '.' for f in folders)} and the installed "
                f"packages); run reslint from the folder that contains it, or give its file: {file_form}"
            ) from None
        raise import_failure(error, dotted, dotted) from None
    except Exception as error:
        raise import_failure(error, dotted, dotted) from None


def package_parts(folder: str) -> list[str]:
    """`['pkg', 'sub']` for a folder pkg/sub/ whose folders up the tree have an __init__.py; [] for none."""
    parts: list[str] = []
    while os.path.isfile(os.path.join(folder, "__init__.py")):
        name = os.path.basename(folder)
        if not name.isidentifier():
            break
        parts.append(name)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return parts[::-1]


def use_folder(folder: str, only: set[str] | None = None) -> None:
    """Put folder first on sys.path and drop cached project modules that a module in it shadows.

    A cached top-level module `layers` (and `layers.*`) from another project folder is dropped when
    folder has its own `layers.py` or `layers/`, so the target imports its own sibling, as it would
    when run alone. Modules of the standard library, installed packages and reslint stay.
    """
    _add_to_path(folder, front=True)
    for name, module in list(sys.modules.items()):
        top = name.partition(".")[0]
        if top.startswith("__") or (only is not None and top not in only) or not _defines(folder, top):
            continue
        location = _location(module)
        if location is None or _is_protected(location) or top in ("reslint", "torch"):
            continue
        if not location.startswith(os.path.join(folder, top)):
            del sys.modules[name]


def _exec_file(name: str, path: str, shown: str) -> types.ModuleType:
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        raise import_failure(error, shown, path) from None
    return module


def _import_module(dotted: str, shown: str, path: str) -> types.ModuleType:
    try:
        return importlib.import_module(dotted)
    except Exception as error:
        raise import_failure(error, shown, path) from None


def import_failure(error: Exception, shown: str, path: str) -> TargetError:
    """The one-line error for what importing `shown` (the file at `path`) raised."""
    if isinstance(error, SyntaxError):
        return TargetError(f"{display_path(error.filename or path)}:{error.lineno}: syntax error: {error.msg}")
    if isinstance(error, ModuleNotFoundError):
        return missing_dependency(shown, error)
    if isinstance(error, ImportError) and "no known parent package" in str(error):
        return TargetError(
            f"importing {shown} failed: it uses a relative import but its folder has no __init__.py; "
            f"add one, or name it as a module from the folder above: {_module_form(path)}"
        )
    if isinstance(error, ImportError):
        return _failed_import(shown, error)
    return import_raised(shown, error)


def missing_dependency(source: str, error: ModuleNotFoundError) -> TargetError:
    """`importing m failed: No module named 'einops' (pip install einops) at m.py:3`."""
    missing = error.name or str(error)
    top = missing.partition(".")[0]
    local = [f for f in _project_folders() if _defines(f, top)]
    if local:
        hint = f"{top} is in {display_path(local[0]) or '.'}, which is not on the import path; run reslint from the folder that contains it"
    else:
        hint = f"pip install {PIP_NAMES.get(missing, PIP_NAMES.get(top, top.replace('_', '-')))}"
    return TargetError(f"importing {source} failed: No module named {missing!r} ({hint}){_at(error)}")


def _failed_import(source: str, error: ImportError) -> TargetError:
    return TargetError(f"importing {source} failed: {_first_line(error)}{_at(error)}")


def import_raised(source: str, error: BaseException) -> TargetError:
    return TargetError(f"importing {source} raised {type(error).__name__}: {_first_line(error)}{_at(error)}")


def _at(error: BaseException) -> str:
    where = traceback_user_location(error.__traceback__)
    return f" at {where.path and display_path(where.path)}:{where.line}" if where else ""


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _module_form(path: str) -> str:
    folder, file = os.path.split(path)
    return f"{os.path.basename(folder)}.{os.path.splitext(file)[0]}:Name (run from {display_path(os.path.dirname(folder)) or '.'})"


def _is_self_or_parent(missing: str, dotted: str) -> bool:
    return dotted == missing or dotted.startswith(missing + ".")


def _defines(folder: str, top: str) -> bool:
    """Whether `import top` with folder on sys.path finds a module there (a file, package or namespace package)."""
    return os.path.isfile(os.path.join(folder, top + ".py")) or os.path.isdir(os.path.join(folder, top))


def _location(module: types.ModuleType) -> str | None:
    """The file of a module, or the folder of a namespace package; None for built-in modules."""
    file = getattr(module, "__file__", None)
    if file:
        return os.path.abspath(file)
    path = getattr(module, "__path__", None)
    try:
        first = next(iter(path)) if path is not None else None
    except (TypeError, StopIteration):
        first = None
    return os.path.abspath(first) if isinstance(first, str) else None


@lru_cache(maxsize=1)
def _protected_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths["stdlib"], paths["platstdlib"], paths["purelib"], paths["platlib"]}
    try:
        roots.update(site.getsitepackages())
        roots.add(site.getusersitepackages())
    except AttributeError:  # virtualenv's old site module
        pass
    roots.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep + "reslint")
    return tuple(os.path.abspath(r) + os.sep for r in roots if r)


def _is_protected(location: str) -> bool:
    return (location + os.sep).startswith(_protected_roots()) or location.startswith(_protected_roots())


def _project_folders() -> list[str]:
    return [p for p in (os.getcwd(), *sys.path) if p and os.path.isdir(p) and not _is_protected(os.path.abspath(p))]


def _add_to_path(folder: str, front: bool) -> None:
    if front:
        if sys.path and sys.path[0] == folder:
            return
        if folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)
    elif folder not in sys.path:
        sys.path.append(folder)
