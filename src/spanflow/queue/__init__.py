"""Runs executed by workers on other machines: a job queue on procrastinate and PostgreSQL.

``Spanflow(..., storage=PostgresStorage(url), executor=QueueExecutor(url))`` makes every
``run.start()``, ``stream()``, ``resume()`` and ``restart()`` store the run ``queued`` and defer
a job; ``spanflow worker module:app`` (or ``await app.run_worker()``) on any machine takes the
jobs and executes the runs. ``spanflow db migrate --storage URL`` (which every worker also
runs) creates spanflow's tables and procrastinate's schema. Needs the ``queue`` extra
(``pip install 'spanflow[queue]'``). See `QueueExecutor` for what a job is and what happens
when a worker dies.
"""

from spanflow.queue._app import TASK_NAME, UnexecutableJobError
from spanflow.queue._migrate import MigrationReport, migrate
from spanflow.queue.executor import DEFAULT_QUEUE, QueueExecutor

__all__ = [
    "DEFAULT_QUEUE",
    "TASK_NAME",
    "MigrationReport",
    "QueueExecutor",
    "UnexecutableJobError",
    "migrate",
]
