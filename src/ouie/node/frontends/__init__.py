"""Feature front-ends (log-mel spectrograms), written in numpy so nodes need no ML framework."""
