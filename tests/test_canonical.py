"""The fast canonical encoder writes exactly what the RFC 8785 reference writes."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from app.canonical import canonical_json, fast_canonical_json

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


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
        | st.text(alphabet=st.characters(codec="utf-8")),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.text(max_size=8, alphabet=st.characters(codec="utf-8")), children, max_size=4
            )
        ),
        max_leaves=30,
    )
)
def test_the_fast_path_takes_float_free_documents_and_matches_the_reference(value: Any) -> None:
    fast = fast_canonical_json(value)
    if fast is not None:
        assert fast == bytes(rfc8785.dumps(value))


def test_documents_the_fast_path_cannot_write_exactly_go_to_the_reference() -> None:
    for value in (
        {"p": 0.1},  # a float
        {"p": 1e21},
        [2**53 - 1],  # the largest exact integer
        {"\U0001f600": 1},  # a key outside the BMP
        {"k": "time 12:00.5 is text, 1.5 too"},  # digits and dots inside strings are fine
    ):
        assert canonical_json(value) == bytes(rfc8785.dumps(value))
    assert fast_canonical_json({"p": 0.1}) is None
    # Exponents without a fraction (orjson: 1e-6, 1e+16), in every position a number takes.
    for value in ([1e-6], {"p": 1e16}, {"p": [2.0, 1e-7]}, [-1.5e16], {"a": 5e-324}):
        assert fast_canonical_json(value) is None
        assert canonical_json(value) == bytes(rfc8785.dumps(value))
    assert fast_canonical_json({"k": "re-e+2 e-mail", "n": [1, 2]}) is not None
    assert fast_canonical_json([2**53]) is None  # beyond IEEE 754's exact integers
    with pytest.raises(ValueError, match="safe integer"):
        canonical_json([2**53])
    assert fast_canonical_json({"k": "12:00.5"}) is not None
