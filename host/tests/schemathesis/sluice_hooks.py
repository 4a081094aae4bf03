"""schemathesis hooks of host/tests/openapi.rs: send generated bodies of plugin uploads
(`application/wasm`, a media type schemathesis has no serializer for) as raw bytes."""

import schemathesis
from schemathesis.transport.serialization import serialize_binary


@schemathesis.serializer("application/wasm")
def wasm(ctx, value):
    return serialize_binary(value)
