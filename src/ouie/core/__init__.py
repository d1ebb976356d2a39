"""Typed messages, labels, units, time and geometry shared by every role."""
