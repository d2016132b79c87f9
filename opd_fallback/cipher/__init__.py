"""Patient data encrypted at rest: SQLCipher databases and their keys.

Below the store and the hub in the layers (it imports neither), so the counter
(store/, printing/) and the LAN hub (hub/, which may import only the domain,
serverdb/ and this) open their files the same way: :mod:`.db` (the opener,
in-place conversion, rekey), :mod:`.keys` (key files, recovery codes, the raw
key), :mod:`.custody` (which key opens a file; rotation).
"""
