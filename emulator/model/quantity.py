"""Kubernetes resource quantities (``500m``, ``128Mi``, ``1.5``, ``2e3``), as resource.Quantity
parses them, for the limits the sandbox turns into cgroup settings."""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

QUANTITY = re.compile(r"([+-]?[0-9.]+)([eE][-+]?[0-9]+|[numkMGTPE]|Ki|Mi|Gi|Ti|Pi|Ei)?")
SUFFIXES = {None: Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
            "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12,
            "P": Decimal(10) ** 15, "E": Decimal(10) ** 18, "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20,
            "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60}
MAX = Decimal(2) ** 63


class QuantityError(ValueError):
    pass


def parse(value: object) -> Decimal:
    """A quantity's value.

    Raises:
        QuantityError: not a quantity, negative, or beyond what Kubernetes can hold (2^63).
    """
    text = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else None
    m = QUANTITY.fullmatch(text or "")
    if not m:
        raise QuantityError(f"{value!r}: quantities must match the regular expression "
                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    try:
        number = Decimal(m.group(1))
        suffix = m.group(2)
        scale = Decimal(10) ** int(suffix[1:]) if suffix and suffix[0] in "eE" else SUFFIXES[suffix]
        result = number * scale
    except (InvalidOperation, ValueError, OverflowError):
        raise QuantityError(f"{value!r}: not a valid quantity") from None
    if result < 0:
        raise QuantityError(f"{value!r}: must be greater than or equal to 0")
    if result > MAX:
        raise QuantityError(f"{value!r}: too large")
    return result


def millicores(value: object) -> int:
    """CPU as thousandths of a core, rounded up as Kubernetes does (``MilliValue``)."""
    return int((parse(value) * 1000).to_integral_value(rounding="ROUND_CEILING"))


def bytes_of(value: object) -> int:
    """Memory in bytes, rounded up."""
    return int(parse(value).to_integral_value(rounding="ROUND_CEILING"))
