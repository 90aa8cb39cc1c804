"""What a file's bytes say: the strict safetensors reader, foreign-format refusals, hashing, facts,
inspection.

The lowest layer above ``lorareg.errors``: no manifest, signing, network or database code is imported here.
Import the submodules (``lorareg.adapter.safetensors``, ``.hashing``, ``.facts``, ``.inspect``,
``.dataset``)."""
