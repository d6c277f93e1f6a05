"""Lots (traceability codes): check-in/out, their cold-chain record, shelf life, QR codes."""
