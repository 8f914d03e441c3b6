"""Exit statuses of the ``k8semu`` command, one per kind of outcome (httpie's ExitStatus)."""
from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    SUCCESS = 0
    ERROR = 1
    USAGE = 2
    SPEC_INVALID = 3
    SCENARIO_FAILED = 4
    NOT_ROOT = 5
    CTRL_C = 130
