"""schemathesis hooks (loaded through SCHEMATHESIS_HOOKS): uploads are real photos, not random bytes.

A schema cannot say "a photo with a face in it", so random bytes are a schema-valid upload the service must
refuse (400 bad_image). Generating the files from real photos lets the positive cases reach the decisions;
tests/test_facepipe/test_decode_fuzz.py covers the random and broken bytes.
"""

from __future__ import annotations

import schemathesis
from hypothesis import strategies as st

from tests.images import astronaut_jpeg, astronaut_variant_jpeg

schemathesis.openapi.format("binary", st.sampled_from([astronaut_jpeg(), astronaut_variant_jpeg()]))
