"""The regional hub (`coldchain hub`): many boxes' uplinks from one MQTT broker into PostgreSQL, and the region's pages.

A separate, stateless program beside the box daemon: it imports nothing of `daemon` or `drivers` (the contract is
the MQTT topics and payloads in docs/hub.md), and its PostgreSQL client comes with the `[hub]` extra only.
`contract` reads a message, `store` writes it, `queries` reads the region back, `worker` is the MQTT 5 consumer,
`web` the FastAPI app with its `pages`.
"""
