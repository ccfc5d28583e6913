"""Import the ultralytics/yolov5 reference from a checkout outside this repository.

Nothing of the reference lives in yolocore: the checkout's path comes from --ref (callers pass it to
load()) or from the environment variable YOLO_REF. The shims below let the 2022-era source run on
Debian's PyTorch 1.13 / NumPy 1.24 without tensorboard and without network access; they are applied
from here, never as edits to the reference:
  - numpy.int, removed in NumPy 1.24, is aliased to int;
  - torch.utils.tensorboard is replaced by a module whose SummaryWriter does nothing;
  - utils.general.check_requirements and utils.general.check_font become no-ops (they would try to
    pip-install packages and download a font);
  - pkg_resources, which recent setuptools no longer ships, is replaced (if missing) by a module
    whose parse_version is packaging's Version (the reference uses it for version checks only).

Usage (from another script in tools/parity/):
    from reference import load
    ref = load(args.ref)            # or load(None) to read YOLO_REF
    model = ref.Model("configs/yolov5n.yaml")
    ref.commit                      # "48a85314bc80..." when the checkout is a git work tree, else None
"""

import logging
import os
import subprocess
import sys
import types
from pathlib import Path


class Reference:
    """The reference's modules after import: Model, Detect, parse_model, model_info, fuse_conv_and_bn,
    initialize_weights, LOGGER, plus root (the checkout path) and commit (its git HEAD, or None)."""


def _apply_shims():
    import numpy as np
    if not hasattr(np, "int"):
        np.int = int

    if "torch.utils.tensorboard" not in sys.modules:
        tb = types.ModuleType("torch.utils.tensorboard")

        class SummaryWriter:
            def __init__(self, *args, **kwargs):
                pass

            def __getattr__(self, name):
                return lambda *args, **kwargs: None

        tb.SummaryWriter = SummaryWriter
        sys.modules["torch.utils.tensorboard"] = tb

    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        from packaging.version import Version
        pkg = types.ModuleType("pkg_resources")
        pkg.parse_version = Version
        pkg.parse_requirements = lambda *args, **kwargs: []
        pkg.require = lambda *args, **kwargs: None
        sys.modules["pkg_resources"] = pkg


def _git_commit(root):
    """The checkout's git HEAD; for a copy without .git (tools/fetch_gpu_deps.sh), its REF_COMMIT
    file; else None. A copy inside another work tree must not report that tree's HEAD."""
    try:
        top = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, check=True).stdout.strip()
        if Path(top).resolve() == root:
            return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                  check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    stamp = root / "REF_COMMIT"
    return stamp.read_text().strip() if stamp.is_file() else None


def load(ref_path=None):
    """Import the reference found at ref_path (or $YOLO_REF) and return a Reference namespace."""
    path = ref_path or os.environ.get("YOLO_REF")
    if not path:
        raise SystemExit("reference.py: give the reference checkout with --ref PATH or YOLO_REF=PATH "
                         "(ultralytics/yolov5 at commit 48a85314)")
    root = Path(path).resolve()
    if not (root / "models" / "yolo.py").is_file():
        raise SystemExit(f"reference.py: {root} has no models/yolo.py; is it a yolov5 checkout?")

    _apply_shims()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))

    import utils.general as general
    general.check_requirements = lambda *args, **kwargs: None
    general.check_font = lambda *args, **kwargs: None

    import models.yolo as yolo
    import models.common as common
    import utils.torch_utils as torch_utils

    ref = Reference()
    ref.root = root
    ref.commit = _git_commit(root)
    ref.yolo = yolo
    ref.common = common
    ref.torch_utils = torch_utils
    ref.Model = yolo.Model
    ref.Detect = yolo.Detect
    ref.parse_model = yolo.parse_model
    ref.model_info = torch_utils.model_info
    ref.fuse_conv_and_bn = torch_utils.fuse_conv_and_bn
    ref.initialize_weights = torch_utils.initialize_weights
    ref.LOGGER = general.LOGGER
    return ref


def quiet(ref):
    """Silence the reference's INFO logging (parse_model tables, model summaries)."""
    ref.LOGGER.setLevel(logging.WARNING)


class CaptureLog(logging.Handler):
    """Collects the reference LOGGER's messages while attached (used to read model_info's summary line)."""

    def __init__(self, logger):
        super().__init__(logging.INFO)
        self.logger = logger
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())

    def __enter__(self):
        self._level = self.logger.level
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self)
        self.logger.setLevel(self._level)
        return False
