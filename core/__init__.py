"""Vigil core: the agent chat backend."""
