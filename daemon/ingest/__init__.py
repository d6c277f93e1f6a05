"""The way in: samples from drivers are validated, normalised, journaled, and shown live."""
