"""Helpers the tests share (scripted models, scripted policies, files); never test modules themselves."""
