"""What a long-running process (web, worker, scheduler) does with the objects it loaded at
start-up.

The app, its translations, SQLAlchemy's and SpiffWorkflow's modules are some 245,000 objects
that live as long as the process. Python's full garbage collection walks every one of them each
time it runs, holding the GIL: about 100 ms on this machine, a pause for every request the
process serves meanwhile (the longest any request met in the HTTP benchmark).
"""

from __future__ import annotations

import gc


def set_start_up_aside() -> None:
    """Call once what the process keeps is loaded: garbage from loading is collected, and what
    remains is left out of every later collection (`gc.freeze`), which then walks only what came
    after — the requests' objects and the workflows kept between steps."""
    gc.collect()
    gc.freeze()
