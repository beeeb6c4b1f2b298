"""The fault suite (`make faults`, `python -m faults`): scenarios that break things while `recovery serve` works."""
