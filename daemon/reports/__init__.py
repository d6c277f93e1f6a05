"""Figures people read and sign: history, excursions, MKT, compliance reports, PDF."""
