"""The benchmark (`python -m bench`): real daemons against real peers; findings.md says what it found."""
