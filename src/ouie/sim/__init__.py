"""The digital twin: a site, the sound each of its sensors would hear, real nodes, a real hub.

Modules, one job each: ``geo`` (WGS84 ↔ local metres), ``geometry`` (segments and polygons),
``site`` (site files), ``acoustics`` (propagation physics), ``render`` (what a sensor hears),
``synthetic`` (sources generated in code), ``ambience`` (street backgrounds), ``scenario``
(timelines of events), ``runner`` (nodes and hub), ``scorecard`` (ground truth vs incidents).
"""
