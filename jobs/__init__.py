"""Jobs off the interactive path: the queue (queue.py), who runs a job (runners.py: a warm worker process or this
process), the worker process itself (worker.py), what it runs (run.py, kinds.py) and the wire between them
(wire.py). The layer between ui and training: it runs training; training does not know it runs in a job.
Light on purpose (no imports here): the worker imports jobs.wire before it lowers its CPU priority."""
