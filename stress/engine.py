"""Blocks, seeds and threads: the Monte Carlo loop around the kernels.

Paths are cut into blocks of ``block_size``. Block ``b`` draws from its own generator,
``PCG64(SeedSequence(seed, spawn_key=(b,)))``, so a block's numbers depend only on (scenario,
seed, block size, b), never on which thread ran it or when. Blocks run on a thread pool (the
kernels release the GIL) and are handed back strictly in block order, with at most a few
blocks in flight, so memory is bounded by the block size and every downstream sum is taken in
the same order on every run.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from kernels import draw_factors, simulate_losses_fast, simulate_losses_reference
from kernels.mechanics import EVENT_LESSEE_DEFAULT, EVENT_NON_RENEWAL
from stress.compile import Portfolio
from stress.contagion import second_round
from stress.exceptions import OptionError

# "fast" (kernels/fast.py) is the default; "reference" (kernels/reference.py) draws one latent
# variable per obligor and path: the oracle and baseline of the fast kernel.
KERNELS = ("fast", "reference")


@dataclass(frozen=True)
class Block:
    """Which paths a block covers: global indices ``start .. start + size - 1``."""

    index: int
    start: int
    size: int


@dataclass(frozen=True)
class BlockResult:
    """Everything one block produced. Shapes: n paths, K factors, C classes, I institutions."""

    block: Block
    factors: np.ndarray  # (n, K)
    scale: np.ndarray  # (n,) sqrt(ν/W), 1 for the Gaussian copula
    weight: np.ndarray  # (n,) likelihood-ratio weights, 1 for plain Monte Carlo
    system_loss: np.ndarray  # (n,)
    n_defaults: np.ndarray  # (n,) int64
    class_loss: np.ndarray  # (n, C)
    institution_loss: np.ndarray  # (n, I) first-round: Σ share × exposure loss
    contagion_loss: np.ndarray  # (n, I) see stress.contagion for the definitions
    fire_sale_loss: np.ndarray  # (n, I)
    defaulted: np.ndarray  # (n, I) bool
    distressed: np.ndarray  # (n, I) bool
    vehicle_loss: np.ndarray  # (n, V) asset loss after the guarantee
    guarantee_paid: np.ndarray  # (n, V)
    vehicle_event: np.ndarray  # (n, V) int8 bits: 1 lessee defaulted, 2 lease not renewed
    tranche_loss: np.ndarray  # (n, T)
    rounds_capped: int = 0  # paths whose second round hit its iteration bound

    @property
    def total_loss(self) -> np.ndarray:
        return self.institution_loss + self.contagion_loss + self.fire_sale_loss

    @property
    def lessee_defaulted(self) -> np.ndarray:
        return (self.vehicle_event & EVENT_LESSEE_DEFAULT) != 0

    @property
    def non_renewed(self) -> np.ndarray:
        return (self.vehicle_event & EVENT_NON_RENEWAL) != 0

    @property
    def paths(self) -> np.ndarray:
        return np.arange(self.block.start, self.block.start + self.block.size, dtype=np.int64)


def plan_blocks(paths: int, block_size: int) -> list[Block]:
    """Cut ``paths`` into blocks of ``block_size``; the last block holds the remainder."""
    if paths < 1:
        raise OptionError(f"paths: must be at least 1 (got {paths})")
    if block_size < 1:
        raise OptionError(f"block size: must be at least 1 (got {block_size})")
    return [
        Block(b, start, min(block_size, paths - start))
        for b, start in enumerate(range(0, paths, block_size))
    ]


def block_generator(seed: int, block: int) -> np.random.Generator:
    """The generator of block ``block``: independent of every other block's."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(block,))))


def check_kernel(kernel: str) -> str:
    if kernel not in KERNELS:
        raise OptionError(f"--kernel: must be one of {', '.join(KERNELS)} (got {kernel!r})")
    return kernel


def simulate_block(
    portfolio: Portfolio, seed: int, block: Block, kernel: str = "fast"
) -> BlockResult:
    """Draw factors and losses for one block. Pure function of its arguments."""
    rng = block_generator(seed, block.index)
    n = block.size
    factors = np.empty((n, portfolio.n_factors))
    scale = np.empty(n)
    draw_factors(
        rng, portfolio.factor_mean, portfolio.factor_loading, portfolio.dof, factors, scale
    )
    system_loss = np.empty(n)
    n_defaults = np.empty(n, dtype=np.int64)
    class_loss = np.empty((n, len(portfolio.class_names)))
    institution_loss = np.empty((n, len(portfolio.institution_ids)))
    n_vehicles = len(portfolio.vehicles.ids)
    vehicle_loss = np.empty((n, n_vehicles))
    guarantee_paid = np.empty((n, n_vehicles))
    vehicle_event = np.empty((n, n_vehicles), dtype=np.int8)
    tranche_loss = np.empty((n, portfolio.n_tranches))
    if kernel == "fast":
        losses, arguments = simulate_losses_fast, portfolio.fast_kernel_arguments()
    else:
        losses, arguments = simulate_losses_reference, portfolio.reference_kernel_arguments()
    losses(
        rng,
        factors,
        scale,
        *arguments,
        system_loss,
        n_defaults,
        class_loss,
        institution_loss,
        vehicle_loss,
        guarantee_paid,
        vehicle_event,
        tranche_loss,
    )
    second = second_round(portfolio.contagion, portfolio.institution_capital, institution_loss)
    return BlockResult(
        block=block,
        factors=factors,
        scale=scale,
        weight=np.ones(n),
        system_loss=system_loss,
        n_defaults=n_defaults,
        class_loss=class_loss,
        institution_loss=institution_loss,
        contagion_loss=second.contagion_loss,
        fire_sale_loss=second.fire_sale_loss,
        defaulted=second.defaulted,
        distressed=second.distressed,
        vehicle_loss=vehicle_loss,
        guarantee_paid=guarantee_paid,
        vehicle_event=vehicle_event,
        tranche_loss=tranche_loss,
        rounds_capped=second.rounds_capped,
    )


def default_threads() -> int:
    return os.cpu_count() or 1


def iter_blocks(
    portfolio: Portfolio,
    seed: int,
    blocks: list[Block],
    threads: int | None = None,
    kernel: str = "fast",
) -> Iterator[BlockResult]:
    """Simulate ``blocks`` on ``threads`` threads and yield the results in block order.

    At most ``2 × threads`` blocks are in flight, which bounds memory whatever the number of
    paths while keeping every thread busy.
    """
    threads = default_threads() if threads is None else threads
    if threads < 1:
        raise OptionError(f"threads: must be at least 1 (got {threads})")
    check_kernel(kernel)
    if threads == 1:
        for block in blocks:
            yield simulate_block(portfolio, seed, block, kernel)
        return
    window = 2 * threads
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ai-stress") as pool:
        pending: deque[Future[BlockResult]] = deque()
        queue = iter(blocks)
        try:
            for block in queue:
                pending.append(pool.submit(simulate_block, portfolio, seed, block, kernel))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


@dataclass(frozen=True)
class Simulation:
    """All paths of a run held in memory: for tests, notebooks and small studies."""

    factors: np.ndarray
    scale: np.ndarray
    weight: np.ndarray
    system_loss: np.ndarray
    n_defaults: np.ndarray
    class_loss: np.ndarray
    institution_loss: np.ndarray
    contagion_loss: np.ndarray
    fire_sale_loss: np.ndarray
    defaulted: np.ndarray
    distressed: np.ndarray
    vehicle_loss: np.ndarray
    guarantee_paid: np.ndarray
    vehicle_event: np.ndarray
    tranche_loss: np.ndarray


def simulate(
    portfolio: Portfolio,
    paths: int,
    seed: int,
    block_size: int = 10_000,
    threads: int | None = None,
    kernel: str = "fast",
) -> Simulation:
    """Simulate ``paths`` paths and return them in memory (no files written)."""
    blocks = plan_blocks(paths, block_size)
    results = list(iter_blocks(portfolio, seed, blocks, threads, kernel))
    return Simulation(
        **{
            name: np.concatenate([getattr(r, name) for r in results])
            for name in Simulation.__dataclass_fields__
        }
    )
