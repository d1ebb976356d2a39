"""The digital twin: a site, the sound each of its sensors would hear, real nodes, a real hub.

Modules, one job each: ``site`` (the site plan as an acoustic scene in local metres; the files
are read by ``ouie.config.site``, frames and polygons are ``ouie.core.geometry``'s),
``acoustics`` (propagation physics), ``render`` (what a sensor hears),
``synthetic`` (sources generated in code), ``ambience`` (street backgrounds), ``scenario``
(timelines of events), ``runner`` (nodes and hub), ``scorecard`` (ground truth vs incidents).
"""
