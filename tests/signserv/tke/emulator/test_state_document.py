"""The state file's JSON mapping round-trips every field of the state model."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from signserv.tke.emulator.state import CryptoUnitState, DomainState, InstanceState, UnitType
from signserv.tke.emulator.state_document import instance_from_document, instance_to_document

u32s = st.integers(min_value=0, max_value=0xFFFFFFFF)
scalars = st.integers(min_value=1, max_value=(1 << 521) - 1)
keys = st.none() | st.binary(min_size=32, max_size=32)

domains = st.builds(
    DomainState,
    index=u32s,
    instance_id=st.binary(min_size=4, max_size=4),
    admins=st.dictionaries(st.binary(min_size=32, max_size=32), st.binary(max_size=60), max_size=8),
    signature_threshold=st.integers(0, 8),
    revocation_threshold=st.integers(0, 8),
    permissions=u32s,
    mode=u32s,
    standards=u32s,
    counter=st.binary(min_size=16, max_size=16),
    current_wk=keys,
    pending_wk=keys,
    pending_committed=st.booleans(),
    importer_key=st.none() | scalars,
    control_points=st.binary(min_size=16, max_size=16),
)
units = st.builds(
    CryptoUnitState,
    hsm_id=st.uuids().map(str),
    unit_type=st.sampled_from(UnitType),
    location=st.text(max_size=40),
    serial=st.text(alphabet="0123456789ABCDEF", min_size=8, max_size=8),
    module_instance=st.binary(min_size=8, max_size=8),
    oa_certificates=st.lists(st.binary(max_size=40), max_size=3),
    epoch_key=scalars,
    domain=domains,
)


@given(st.builds(InstanceState, oa_root_key=scalars, crypto_units=st.lists(units, max_size=4)))
def test_instance_survives_json(instance: InstanceState) -> None:
    """to_document → JSON text → from_document gives back an equal instance."""
    text = json.dumps(instance_to_document(instance))
    assert instance_from_document(json.loads(text), source="test") == instance
