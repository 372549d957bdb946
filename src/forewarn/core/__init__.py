"""The library core: domain records, the airspace, strategic detection, resolutions, protected sites,
the disclosure policy. No I/O, no web framework."""
