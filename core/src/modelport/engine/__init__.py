"""The export engine: plan → reference run → per format export → validate → describe → write, and where formats run
(in order, in worker processes or on Ray)."""
