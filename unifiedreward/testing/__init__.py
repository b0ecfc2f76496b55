"""Offline test fixtures: tiny random VLMs and synthetic media. Nothing here touches the network."""
