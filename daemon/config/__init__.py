"""The config file: its schema (pydantic), the commodity catalog, and loading with errors that name file:line:key."""
