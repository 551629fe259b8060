"""Claims race across real OS processes: of claimers in several processes, exactly one wins.

Each child process opens its own store on the same data, says ``ready``, waits for ``go`` on
stdin (so all of them claim at the same moment), runs several claims at once, and prints
one outcome per claim as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys

from spanflow.storage import Storage, StoredRun

from .conftest import StoreSpec

__all__: list[str] = []

PROCESSES = 5
CLAIMS_PER_PROCESS = 4

CLAIMER = """
import asyncio, json, sys

from spanflow.errors import RunClaimError
from spanflow.storage import PostgresStorage, SqliteStorage


async def main(spec, claims):
    if spec["kind"] == "sqlite":
        store = SqliteStorage(spec["path"])
    else:
        store = PostgresStorage(spec["dsn"], schema=spec["schema"])
    async with store:
        print("ready", flush=True)
        sys.stdin.readline()

        async def claim():
            try:
                await store.claim_run("run-1", from_status=["suspended"], to_status="running")
            except RunClaimError as err:
                return str(err)
            return "won"

        outcomes = await asyncio.gather(*(claim() for _ in range(claims)))
    print(json.dumps(outcomes), flush=True)


asyncio.run(main(json.loads(sys.argv[1]), int(sys.argv[2])))
"""


async def _start_claimer(spec: StoreSpec) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLAIMER,
        spec.to_json(),
        str(CLAIMS_PER_PROCESS),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _outcomes(process: asyncio.subprocess.Process) -> list[str]:
    stdout, stderr = await process.communicate(b"go\n")
    assert process.returncode == 0, stderr.decode()
    outcomes: list[str] = json.loads(stdout)
    return outcomes


async def test_of_claimers_in_several_processes_exactly_one_wins(
    shared_store: Storage, shared_store_spec: StoreSpec
) -> None:
    await shared_store.insert_run(StoredRun("run-1", "onboarding", "suspended", {}))
    processes = [await _start_claimer(shared_store_spec) for _ in range(PROCESSES)]
    async with asyncio.timeout(60):
        for process in processes:
            assert process.stdout is not None
            ready = await process.stdout.readline()
            assert ready == b"ready\n", (await process.communicate())[1].decode()

        outcomes = [
            outcome
            for per_process in await asyncio.gather(*(_outcomes(p) for p in processes))
            for outcome in per_process
        ]

    assert len(outcomes) == PROCESSES * CLAIMS_PER_PROCESS == 20
    assert outcomes.count("won") == 1
    losses = [outcome for outcome in outcomes if outcome != "won"]
    assert all("its status is 'running'" in loss for loss in losses), losses
    stored = await shared_store.get_run("run-1")
    assert stored is not None
    assert stored.status == "running"
