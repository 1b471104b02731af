"""Pure logic: token format, records, policy, events. No I/O and no clock reads here."""
