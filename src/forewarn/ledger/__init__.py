"""The ledger: canonical JSON, party keys and signatures, the signed hash chain, receipts (see chain.py)."""
