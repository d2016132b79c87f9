"""The routes of the central sync API, one router per concern:

- :mod:`.ops`: pushing ops, asking about one op, id blocks (the write side);
- :mod:`.device`: health, the device's own counters, master data;
- :mod:`.reading`: patient changes and reconciliation (the read side).
"""
