"""The fast canonical encoder writes exactly what the RFC 8785 reference writes."""

from __future__ import annotations

from typing import Any

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from app.canonical import canonical_json

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_canonical_json_equals_the_rfc8785_reference(value: Any) -> None:
    try:
        expected = bytes(rfc8785.dumps(value))
    except Exception:  # values RFC 8785 refuses must not be accepted silently either
        try:
            canonical_json(value)
        except Exception:
            return
        raise AssertionError("accepted a value the reference refuses") from None
    assert canonical_json(value) == expected


def test_key_order_uses_utf16_code_units_beyond_the_bmp() -> None:
    value = {"\U0001f600": 1, "\uffff": 2}
    assert canonical_json(value) == bytes(rfc8785.dumps(value))
