"""Compile a validated scenario into the flat arrays the kernels take.

Everything the kernels cannot or should not compute is done here, once: default thresholds
(Φ⁻¹ or t_ν⁻¹ of each PD, via SciPy), idiosyncratic weights, Beta parameters, and the factor
law under the stress as a mean vector and a loading matrix A with Y = mean + A·z, z ~ N(0, I).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from kernels.fast import member_bookings
from stress.scenario import (
    BetaLGD,
    CollateralLGD,
    Scenario,
    ScenarioModel,
    balance_sheet_gap,
    exposure_catalogue,
    topological_order,
)

# Exposure target kinds and LGD kinds, shared with the kernels (kernels/common.py).
TARGET_OBLIGOR, TARGET_POOL, TARGET_TRANCHE, TARGET_INSTITUTION = 0, 1, 2, 3
LGD_FIXED, LGD_BETA, LGD_COLLATERAL = 0, 1, 2


@dataclass(frozen=True)
class FastLayout:
    """Index structures of the fast kernel (kernels/fast.py), built once per scenario.

    Obligors whose default does not depend on another's (O_g of them) and that share a
    threshold and loadings form a group (G groups); groups with the same loadings share a row
    of ``loading_rows`` (L rows). Providers with revenue dependencies (D "dependents") are
    simulated one by one after the groups, in dependency order. The defaults that other parts
    of a path read (customers, dependents, lessees, sponsors) are recorded in W "watch" slots.
    CSR indices map group members, dependents and pools to their exposures and exposures to
    their holders. Groups come in threshold order; each group stores 1 / b (validation keeps
    aᵀRa < 1, so b > 0), since the kernel multiplies by it on every path. The kernel itself
    lays out each member's bookings (losses, classes, holders) once per call, since they need
    the exposures' EAD, LGD and class (``kernels.fast.member_bookings``).
    """

    loading_rows: np.ndarray  # (L, K)
    group_loading: np.ndarray  # (G,) int64
    group_threshold: np.ndarray  # (G,)
    group_inverse_idio: np.ndarray  # (G,) 1 / b
    group_indptr: np.ndarray  # (G + 1,) int64
    member_exposure_indptr: np.ndarray  # (O_g + 1,) int64, by member position in group order
    member_exposure: np.ndarray  # int64
    member_watch: np.ndarray  # (O_g,) int64 watch slot by member position, or −1
    booking_indptr: np.ndarray  # (O_g + 1,) int64: see kernels.fast.member_bookings
    booking: np.ndarray  # (slot, amount) pairs side by side
    dependent_threshold: np.ndarray  # (D,) in dependency order
    dependent_loadings: np.ndarray  # (D, K)
    dependent_idio: np.ndarray  # (D,)
    dependent_watch: np.ndarray  # (D,) int64
    dependent_exposure_indptr: np.ndarray  # (D + 1,) int64
    dependent_exposure: np.ndarray  # int64
    dependent_customer_indptr: np.ndarray  # (D + 1,) int64
    dependent_customer: np.ndarray  # int64 watch slot of each customer
    dependent_shift: np.ndarray  # threshold shift when that customer defaults
    n_watch: int
    vehicle_lessee: np.ndarray  # (V,) int64 watch slot
    vehicle_sponsor: np.ndarray  # (V,) int64 watch slot, −1 without a guarantee
    pool_exposure_indptr: np.ndarray  # (P + 1,) int64
    pool_exposure: np.ndarray  # int64
    holder_indptr: np.ndarray  # (E + 1,) int64
    holder: np.ndarray  # int64 institution index
    holder_share: np.ndarray


@dataclass(frozen=True)
class VehicleLayout:
    """SPVs, lease vehicles and ABS issuers (V vehicles, T tranches in all).

    On a path a vehicle's asset is hit when its lessee defaults or does not renew (latent
    ``a·Y + b·ε`` below ``renewal_threshold``, −inf without a non-renewal clause). The asset
    then recovers ``clip(recovery_base + recovery_sensitivity × Y[recovery_factor], 0, 1)``
    of its value; a sponsor that has not defaulted pays the shortfall up to ``guarantee_cap``;
    the rest is the asset loss, which tranche t takes between ``tranche_attach[t]`` and
    ``tranche_attach[t] + tranche_width[t]`` (amounts). Tranche t is exposure
    ``tranche_exposure[t]``.
    """

    ids: tuple[str, ...]
    asset_value: np.ndarray  # (V,)
    lessee: np.ndarray  # (V,) int64 obligor index
    sponsor: np.ndarray  # (V,) int64 obligor index, −1 without a guarantee
    guarantee_cap: np.ndarray  # (V,)
    renewal_threshold: np.ndarray  # (V,)
    renewal_loadings: np.ndarray  # (V, K)
    renewal_idio: np.ndarray  # (V,)
    recovery_base: np.ndarray  # (V,)
    recovery_factor: np.ndarray  # (V,) int64 factor index, −1 for a fixed recovery
    recovery_sensitivity: np.ndarray  # (V,)
    tranche_indptr: np.ndarray  # (V + 1,) int64
    tranche_ids: tuple[str, ...]  # (T,) "VEHICLE.TRANCHE"
    tranche_attach: np.ndarray  # (T,) amount
    tranche_width: np.ndarray  # (T,) amount
    tranche_exposure: np.ndarray  # (T,) int64

    def kernel_arguments(self) -> tuple[np.ndarray, ...]:
        """The vehicles as one tuple argument of the kernels and of
        ``kernels.mechanics.vehicle_losses``."""
        return (
            self.asset_value,
            self.guarantee_cap,
            self.renewal_threshold,
            self.renewal_loadings,
            self.renewal_idio,
            self.recovery_base,
            self.recovery_factor,
            self.recovery_sensitivity,
            self.tranche_indptr,
            self.tranche_attach,
            self.tranche_width,
            self.tranche_exposure,
        )


@dataclass(frozen=True)
class LookThroughLayout:
    """Lines to funds and BDCs (F borrowing institutions, in an order where a fund comes
    after every fund it lends to). A fund's first-round loss beyond its capital is shared by
    the exposures on it in proportion to their EAD, up to each EAD."""

    institution: np.ndarray  # (F,) int64
    capital: np.ndarray  # (F,)
    debt: np.ndarray  # (F,) Σ EAD of the exposures on the fund
    exposure_indptr: np.ndarray  # (F + 1,) int64
    exposure: np.ndarray  # int64

    def kernel_arguments(self) -> tuple[np.ndarray, ...]:
        """The lines as one tuple argument of the kernels."""
        return (self.institution, self.capital, self.debt, self.exposure_indptr, self.exposure)


def csr(rows: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Row pointers and the positions of each row's items, rows given per item, stable order."""
    order = np.argsort(rows, kind="stable").astype(np.int64)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return indptr, order


@dataclass(frozen=True)
class ContagionLayout:
    """The interinstitution network and balance sheets of the second round (I institutions).

    Claims are CSR by debtor: debtor i owes ``owe_amount[k]`` to ``owe_creditor[k]`` for k in
    ``owe_indptr[i]:owe_indptr[i + 1]``. External liabilities are resolved (given, or the
    balancing item). ``marketable`` holds each institution's holdings by exposure class at
    EAD, in the classes listed under ``[contagion.fire_sales]`` (zero elsewhere: only
    marketable classes are sold).
    """

    model: str  # "none" | "eisenberg-noe" | "debtrank"
    senior_external: bool
    alpha: float  # Rogers–Veraart: share of external assets realised on default
    beta: float  # ... and of interbank assets
    debtrank_linear: bool
    debtrank_capped: bool
    max_rounds: int
    owe_indptr: np.ndarray  # (I + 1,) int64
    owe_creditor: np.ndarray  # int64
    owe_amount: np.ndarray
    external_assets: np.ndarray  # (I,)
    external_liabilities: np.ndarray  # (I,)
    total_liabilities: np.ndarray  # (I,) external liabilities plus claims owed
    holdings_value: np.ndarray  # (I,) Σ share × EAD
    distress_threshold: np.ndarray  # (I,) share of capital lost that counts as distressed
    fire_sales: bool
    fire_sale_exponential: bool
    fire_sale_trigger: float
    fire_sale_target: float
    marketable: np.ndarray  # (I, C)
    price_impact: np.ndarray  # (C,)
    market_depth: np.ndarray  # (C,)


@dataclass(frozen=True)
class Portfolio:
    """A scenario as arrays. Shapes: K factors, O obligors, P pools, E exposures, I institutions.

    The factor law is ``Y = factor_mean + factor_loading @ z`` with ``z ~ N(0, I_K)``; under a
    ``condition`` stress the conditioned factors have zero rows in ``factor_loading``. For the
    t copula (``dof > 0``) every latent variable is scaled by ``sqrt(dof / W)``, ``W ~ χ²_dof``,
    one ``W`` per path; ``dof == 0`` means Gaussian.
    """

    factor_names: tuple[str, ...]
    factor_mean: np.ndarray  # (K,)
    factor_loading: np.ndarray  # (K, K)
    dof: float
    obligor_ids: tuple[str, ...]
    obligor_threshold: np.ndarray  # (O,) default when a·Y + b·ε < threshold·sqrt(W/ν)
    obligor_loadings: np.ndarray  # (O, K)
    obligor_idio: np.ndarray  # (O,) b = sqrt(1 − aᵀRa)
    pool_ids: tuple[str, ...]
    pool_threshold: np.ndarray  # (P,)
    pool_loadings: np.ndarray  # (P, K)
    pool_idio: np.ndarray  # (P,)
    pool_count: np.ndarray  # (P,) int64
    pool_exact: np.ndarray  # (P,) bool: conditional binomial, else conditional expectation
    exposure_ids: tuple[str, ...]
    exposure_target_kind: np.ndarray  # (E,) int64: TARGET_OBLIGOR or TARGET_POOL
    exposure_target: np.ndarray  # (E,) int64 index into obligors or pools
    exposure_ead: np.ndarray  # (E,)
    exposure_lgd_kind: np.ndarray  # (E,) int64: LGD_FIXED, LGD_BETA or LGD_COLLATERAL
    exposure_lgd_p1: np.ndarray  # (E,) fixed LGD | Beta α | collateral base
    exposure_lgd_p2: np.ndarray  # (E,) 0 | Beta β | collateral sensitivity
    exposure_lgd_factor: np.ndarray  # (E,) int64 collateral factor index, −1 otherwise
    exposure_class: np.ndarray  # (E,) int64 index into class_names
    class_names: tuple[str, ...]
    institution_ids: tuple[str, ...]
    institution_type: np.ndarray  # (I,) int64 index into type_names
    institution_capital: np.ndarray  # (I,)
    holding_indptr: np.ndarray  # (I + 1,) CSR rows: holdings of institution i
    holding_exposure: np.ndarray  # (H,) int64
    holding_share: np.ndarray  # (H,)
    type_names: tuple[str, ...]
    # Revenue dependencies: obligors in an order where customers come before providers, and
    # for provider o its customers and threshold shifts at dependency_indptr[o]:[o + 1].
    obligor_order: np.ndarray  # (O,) int64
    dependency_indptr: np.ndarray  # (O + 1,) int64
    dependency_customer: np.ndarray  # int64 obligor index
    dependency_shift: np.ndarray
    vehicles: VehicleLayout
    lookthrough: LookThroughLayout
    fast: FastLayout
    contagion: ContagionLayout

    @property
    def n_factors(self) -> int:
        return len(self.factor_names)

    @property
    def n_tranches(self) -> int:
        return len(self.vehicles.tranche_ids)

    def reference_kernel_arguments(self) -> tuple[np.ndarray | float, ...]:
        """The portfolio arguments of ``kernels.reference.simulate_losses_reference``, in order."""
        return (
            self.obligor_threshold,
            self.obligor_loadings,
            self.obligor_idio,
            self.obligor_order,
            self.dependency_indptr,
            self.dependency_customer,
            self.dependency_shift,
            self.pool_threshold,
            self.pool_loadings,
            self.pool_idio,
            self.pool_count,
            self.pool_exact,
            self.exposure_target_kind,
            self.exposure_target,
            self.exposure_ead,
            self.exposure_lgd_kind,
            self.exposure_lgd_p1,
            self.exposure_lgd_p2,
            self.exposure_lgd_factor,
            self.exposure_class,
            self.holding_indptr,
            self.holding_exposure,
            self.holding_share,
            self.vehicles.lessee,
            self.vehicles.sponsor,
            self.vehicles.kernel_arguments(),
            self.lookthrough.kernel_arguments(),
        )

    def fast_kernel_arguments(self) -> tuple[np.ndarray, ...]:
        """The portfolio arguments of ``kernels.fast.simulate_losses_fast``, in order."""
        f = self.fast
        return (
            f.loading_rows,
            f.group_loading,
            f.group_threshold,
            f.group_inverse_idio,
            f.group_indptr,
            f.member_exposure_indptr,
            f.member_exposure,
            f.member_watch,
            f.booking_indptr,
            f.booking,
            f.dependent_threshold,
            f.dependent_loadings,
            f.dependent_idio,
            f.dependent_watch,
            f.dependent_exposure_indptr,
            f.dependent_exposure,
            f.dependent_customer_indptr,
            f.dependent_customer,
            f.dependent_shift,
            f.n_watch,
            self.pool_threshold,
            self.pool_loadings,
            self.pool_idio,
            self.pool_count,
            self.pool_exact,
            f.pool_exposure_indptr,
            f.pool_exposure,
            self.exposure_ead,
            self.exposure_lgd_kind,
            self.exposure_lgd_p1,
            self.exposure_lgd_p2,
            self.exposure_lgd_factor,
            self.exposure_class,
            f.holder_indptr,
            f.holder,
            f.holder_share,
            f.vehicle_lessee,
            f.vehicle_sponsor,
            self.vehicles.kernel_arguments(),
            self.lookthrough.kernel_arguments(),
        )


def semidefinite_cholesky(matrix: np.ndarray, tolerance: float = 1e-12) -> np.ndarray:
    """Lower factor A with A·Aᵀ = matrix for a positive semi-definite matrix, column by
    column in the factors' own order.

    The order is fixed rather than pivoted on the largest remaining variance, so the factor
    moves continuously with the matrix: a sweep that changes one correlation a little changes
    each path's factor draws a little (common random numbers), where pivoting could swap
    which normal draw feeds which factor between two points of the grid. A factor whose
    variance left after the earlier ones is at most ``tolerance`` (relative to the largest
    variance) is their linear combination and gets no column of its own, so singular
    matrices (two factors correlated exactly 1, a repaired matrix with a zero eigenvalue, a
    conditional covariance) factor without failing; the covariances left out are then at
    most √tolerance. Plain arithmetic, no LAPACK: the same matrix gives the same factor, and
    the same paths, on any machine.
    """
    n = matrix.shape[0]
    work = np.array(matrix, dtype=np.float64, copy=True)
    factor = np.zeros((n, n))
    scale = max(float(np.max(np.diag(work), initial=0.0)), 1.0)
    column = 0
    for pivot in range(n):
        variance = work[pivot, pivot]
        if variance <= tolerance * scale:
            continue
        root = np.sqrt(variance)
        later = range(pivot + 1, n)
        factor[pivot, column] = root
        for i in later:
            factor[i, column] = work[i, pivot] / root
        for i in later:
            for j in later:
                work[i, j] -= factor[i, column] * factor[j, column]
        column += 1
    return factor


def factor_law(scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Mean and loading matrix of the factors under the scenario's stress.

    ``shift`` moves the shocked factors S to their shocks s and the others F by the regression
    on them, β = R_FS R_SS⁺, keeping the covariance R. ``condition`` fixes Y_S = s and draws
    Y_F from N(β s, R_FF − β R_SF). The pseudo-inverse makes perfectly correlated shocked
    factors work (validation has checked that their shocks agree).
    """
    correlation = scenario.correlation
    k = correlation.shape[0]
    mean = np.zeros(k)
    stress = scenario.model.stress
    if stress is None:
        return mean, semidefinite_cholesky(correlation)
    names = scenario.factor_names
    shocked = [names.index(f) for f in stress.shocks]
    shocks = np.array(list(stress.shocks.values()), dtype=np.float64)
    beta = correlation[:, shocked] @ np.linalg.pinv(
        correlation[np.ix_(shocked, shocked)], hermitian=True
    )
    mean = beta @ shocks
    mean[shocked] = shocks
    if stress.mode == "shift":
        return mean, semidefinite_cholesky(correlation)
    covariance = correlation - beta @ correlation[shocked, :]
    covariance = 0.5 * (covariance + covariance.T)
    covariance[shocked, :] = 0.0
    covariance[:, shocked] = 0.0
    return mean, semidefinite_cholesky(covariance)


def compile_scenario(scenario: Scenario) -> Portfolio:
    """Turn a validated scenario into a :class:`Portfolio` of flat arrays."""
    model = scenario.model
    factors = scenario.factor_names
    index = {f: i for i, f in enumerate(factors)}
    k = len(factors)
    correlation = scenario.correlation
    dof = float(model.simulation.dof) if model.simulation.copula == "t" else 0.0

    def threshold(pd: np.ndarray) -> np.ndarray:
        return special.stdtrit(dof, pd) if dof > 0 else special.ndtri(pd)

    def loading_matrix(loadings: list[dict[str, float]]) -> np.ndarray:
        matrix = np.zeros((len(loadings), k))
        for row, item in enumerate(loadings):
            for name, value in item.items():
                matrix[row, index[name]] = value
        return matrix

    def idiosyncratic(loadings: np.ndarray) -> np.ndarray:
        systematic = np.einsum("ik,kl,il->i", loadings, correlation, loadings)
        return np.sqrt(1.0 - systematic)

    obligors = list(model.obligors.values())
    obligor_loadings = loading_matrix([o.loadings for o in obligors])
    pools = list(model.pools.values())
    pool_loadings = loading_matrix([p.loadings for p in pools])

    obligor_index = {o: i for i, o in enumerate(model.obligors)}
    pool_index = {p: i for i, p in enumerate(model.pools)}
    institution_index = {key: i for i, key in enumerate(model.institutions)}
    # Exposures first, then the vehicles' tranches: everything an institution can hold.
    catalogue = exposure_catalogue(model)
    exposure_ids = tuple(catalogue)
    exposure_index = {x: i for i, x in enumerate(exposure_ids)}
    class_names = tuple(sorted({label for _, label in catalogue.values()}))
    class_index = {c: i for i, c in enumerate(class_names)}
    n_exposures = len(exposure_ids)
    target_kind = np.zeros(n_exposures, dtype=np.int64)
    target = np.zeros(n_exposures, dtype=np.int64)
    ead = np.array([value for value, _ in catalogue.values()], dtype=np.float64)
    exposure_class = np.array([class_index[label] for _, label in catalogue.values()], np.int64)
    lgd_kind = np.zeros(n_exposures, dtype=np.int64)
    lgd_p1 = np.zeros(n_exposures)
    lgd_p2 = np.zeros(n_exposures)
    lgd_factor = np.full(n_exposures, -1, dtype=np.int64)
    for e, exposure in enumerate(model.exposures.values()):
        if exposure.obligor is not None:
            target_kind[e], target[e] = TARGET_OBLIGOR, obligor_index[exposure.obligor]
        elif exposure.pool is not None:
            target_kind[e], target[e] = TARGET_POOL, pool_index[exposure.pool]
        else:
            target_kind[e] = TARGET_INSTITUTION
            target[e] = institution_index[exposure.institution]
            continue
        lgd = exposure.lgd
        if isinstance(lgd, BetaLGD) and lgd.sd > 0.0:
            # Method of moments: mean m, variance s² gives α + β = m(1 − m)/s² − 1.
            total = lgd.mean * (1.0 - lgd.mean) / lgd.sd**2 - 1.0
            lgd_kind[e], lgd_p1[e], lgd_p2[e] = LGD_BETA, lgd.mean * total, (1 - lgd.mean) * total
        elif isinstance(lgd, BetaLGD):
            lgd_kind[e], lgd_p1[e] = LGD_FIXED, lgd.mean
        elif isinstance(lgd, CollateralLGD):
            lgd_kind[e], lgd_p1[e], lgd_p2[e] = LGD_COLLATERAL, lgd.base, lgd.sensitivity
            lgd_factor[e] = index[lgd.factor]
        else:
            lgd_kind[e], lgd_p1[e] = LGD_FIXED, float(lgd)
    renewal_loadings = loading_matrix(
        [v.non_renewal.loadings if v.non_renewal else {} for v in model.vehicles.values()]
    )
    vehicles = vehicle_layout(
        model,
        index,
        obligor_index,
        exposure_index,
        threshold,
        renewal_loadings,
        idiosyncratic(renewal_loadings),
    )
    tranches = vehicles.tranche_exposure
    target_kind[tranches] = TARGET_TRANCHE
    target[tranches] = np.arange(tranches.shape[0], dtype=np.int64)

    type_names = tuple(sorted({inst.type for inst in model.institutions.values()}))
    indptr = [0]
    holding_exposure: list[int] = []
    holding_share: list[float] = []
    for inst in model.institutions.values():
        for exposure_id, share in inst.holdings.items():
            holding_exposure.append(exposure_index[exposure_id])
            holding_share.append(share)
        indptr.append(len(holding_exposure))
    capital = np.array([i.capital for i in model.institutions.values()], dtype=np.float64)

    mean, loading = factor_law(scenario)
    obligor_threshold = threshold(np.array([o.pd for o in obligors], dtype=np.float64))
    obligor_idio = idiosyncratic(obligor_loadings)
    order, dependency_indptr, customer, shift = dependency_layout(model, obligor_index)
    holding_institution = np.repeat(
        np.arange(len(model.institutions), dtype=np.int64), np.diff(indptr)
    )
    fast = fast_layout(
        obligor_threshold,
        obligor_loadings,
        obligor_idio,
        order,
        dependency_indptr,
        customer,
        shift,
        vehicles,
        target_kind,
        target,
        len(pools),
        np.array(holding_exposure, dtype=np.int64),
        holding_institution,
        np.array(holding_share, dtype=np.float64),
        ead,
        lgd_kind,
        lgd_p1,
        exposure_class,
        len(class_names),
        len(model.institutions),
    )
    return Portfolio(
        factor_names=tuple(factors),
        factor_mean=mean,
        factor_loading=loading,
        dof=dof,
        obligor_ids=tuple(model.obligors),
        obligor_threshold=obligor_threshold,
        obligor_loadings=obligor_loadings,
        obligor_idio=obligor_idio,
        pool_ids=tuple(model.pools),
        pool_threshold=threshold(np.array([p.pd for p in pools], dtype=np.float64)),
        pool_loadings=pool_loadings,
        pool_idio=idiosyncratic(pool_loadings),
        pool_count=np.array([p.count for p in pools], dtype=np.int64),
        pool_exact=np.array([p.method == "exact" for p in pools], dtype=np.bool_),
        exposure_ids=exposure_ids,
        exposure_target_kind=target_kind,
        exposure_target=target,
        exposure_ead=ead,
        exposure_lgd_kind=lgd_kind,
        exposure_lgd_p1=lgd_p1,
        exposure_lgd_p2=lgd_p2,
        exposure_lgd_factor=lgd_factor,
        exposure_class=exposure_class,
        class_names=class_names,
        institution_ids=tuple(model.institutions),
        institution_type=np.array(
            [type_names.index(i.type) for i in model.institutions.values()], dtype=np.int64
        ),
        institution_capital=capital,
        holding_indptr=np.array(indptr, dtype=np.int64),
        holding_exposure=np.array(holding_exposure, dtype=np.int64),
        holding_share=np.array(holding_share, dtype=np.float64),
        type_names=type_names,
        obligor_order=order,
        dependency_indptr=dependency_indptr,
        dependency_customer=customer,
        dependency_shift=shift,
        vehicles=vehicles,
        lookthrough=lookthrough_layout(model, target_kind, target, ead, capital),
        fast=fast,
        contagion=contagion_layout(scenario, class_names, exposure_ids, ead, exposure_class),
    )


def dependency_layout(
    model: ScenarioModel, obligor_index: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Obligors in dependency order (customers first, otherwise file order) and, per
    provider, its customers and the threshold shift sensitivity × revenue share of each."""
    ids = list(model.obligors)
    order = np.array(
        [obligor_index[o] for o in topological_order(ids, model.dependencies)], dtype=np.int64
    )
    provider, customer, shift = [], [], []
    for name, customers in model.dependencies.items():
        for other, terms in customers.items():
            provider.append(obligor_index[name])
            customer.append(obligor_index[other])
            shift.append(terms.sensitivity * terms.revenue_share)
    indptr, rows = csr(np.array(provider, dtype=np.int64), len(ids))
    return (
        order,
        indptr,
        np.array(customer, dtype=np.int64)[rows],
        np.array(shift, dtype=np.float64)[rows],
    )


def vehicle_layout(
    model: ScenarioModel,
    factor_index,
    obligor_index,
    exposure_index,
    threshold,
    renewal_loadings: np.ndarray,
    renewal_idio: np.ndarray,
) -> VehicleLayout:
    """Vehicles and their tranches as arrays; the non-renewal events' loadings and
    idiosyncratic weights come from the caller, which knows the correlation matrix."""
    vehicles = list(model.vehicles.items())
    tranche_ids: list[str] = []
    attach: list[float] = []
    width: list[float] = []
    indptr = [0]
    for key, vehicle in vehicles:
        for name, tranche in vehicle.tranches.items():
            tranche_ids.append(f"{key}.{name}")
            attach.append(tranche.attach * vehicle.asset_value)
            width.append((tranche.detach - tranche.attach) * vehicle.asset_value)
        indptr.append(len(tranche_ids))
    renewal = [v.non_renewal for _, v in vehicles]
    probability = np.array([r.probability if r else 0.5 for r in renewal], dtype=np.float64)
    renewal_threshold = np.where(
        [r is not None for r in renewal], threshold(probability), -np.inf
    ).astype(np.float64)
    recovery = [v.recovery for _, v in vehicles]
    return VehicleLayout(
        ids=tuple(key for key, _ in vehicles),
        asset_value=np.array([v.asset_value for _, v in vehicles], dtype=np.float64),
        lessee=np.array([obligor_index[v.lessee] for _, v in vehicles], dtype=np.int64),
        sponsor=np.array(
            [obligor_index[v.guarantee.sponsor] if v.guarantee else -1 for _, v in vehicles],
            dtype=np.int64,
        ),
        guarantee_cap=np.array(
            [v.guarantee.cap if v.guarantee else 0.0 for _, v in vehicles], dtype=np.float64
        ),
        renewal_threshold=renewal_threshold.reshape(len(vehicles)),
        renewal_loadings=renewal_loadings,
        renewal_idio=renewal_idio,
        recovery_base=np.array([r.base for r in recovery], dtype=np.float64),
        recovery_factor=np.array(
            [factor_index[r.factor] if r.factor else -1 for r in recovery], dtype=np.int64
        ),
        recovery_sensitivity=np.array([r.sensitivity for r in recovery], dtype=np.float64),
        tranche_indptr=np.array(indptr, dtype=np.int64),
        tranche_ids=tuple(tranche_ids),
        tranche_attach=np.array(attach, dtype=np.float64),
        tranche_width=np.array(width, dtype=np.float64),
        tranche_exposure=np.array([exposure_index[t] for t in tranche_ids], dtype=np.int64),
    )


def lookthrough_layout(
    model: ScenarioModel,
    target_kind: np.ndarray,
    target: np.ndarray,
    ead: np.ndarray,
    capital: np.ndarray,
) -> LookThroughLayout:
    """Borrowing institutions, each after the institutions it lends to, with their lines."""
    ids = list(model.institutions)
    on_institution = np.flatnonzero(target_kind == TARGET_INSTITUTION)
    borrowers = {ids[t] for t in target[on_institution]}
    exposure_borrower = {
        key: exp.institution for key, exp in model.exposures.items() if exp.institution
    }
    # A lender's loss is final only once the funds it lends to have passed theirs on.
    lends_to = {
        key: [exposure_borrower[x] for x in inst.holdings if x in exposure_borrower]
        for key, inst in model.institutions.items()
    }
    order = [key for key in topological_order(ids, lends_to) if key in borrowers]
    institution = np.array([ids.index(key) for key in order], dtype=np.int64)
    position = {i: f for f, i in enumerate(institution)}
    rows = np.array([position[t] for t in target[on_institution]], dtype=np.int64)
    indptr, rows_order = csr(rows, len(order))
    exposure = on_institution[rows_order].astype(np.int64)
    return LookThroughLayout(
        institution=institution,
        capital=capital[institution],
        debt=np.bincount(rows, weights=ead[on_institution], minlength=len(order)).astype(
            np.float64
        ),
        exposure_indptr=indptr,
        exposure=exposure,
    )


def contagion_layout(
    scenario: Scenario,
    class_names: tuple[str, ...],
    exposure_ids: tuple[str, ...],
    ead: np.ndarray,
    exposure_class: np.ndarray,
) -> ContagionLayout:
    """Claims as CSR by debtor, resolved balance sheets and fire-sale markets."""
    model = scenario.model
    config = model.contagion
    ids = {key: i for i, key in enumerate(model.institutions)}
    exposures = {key: e for e, key in enumerate(exposure_ids)}
    debtor, creditor, amount = [], [], []
    for c, inst in enumerate(model.institutions.values()):
        for name, value in inst.claims.items():
            if value > 0.0:
                debtor.append(ids[name])
                creditor.append(c)
                amount.append(value)
    debtor_array = np.array(debtor, dtype=np.int64)
    owe_indptr, order = csr(debtor_array, len(ids))
    marketable = np.zeros((len(ids), len(class_names)))
    holdings_value = np.zeros(len(ids))
    for i, inst in enumerate(model.institutions.values()):
        for name, share in inst.holdings.items():
            e = exposures[name]
            marketable[i, exposure_class[e]] += share * ead[e]
            holdings_value[i] += share * ead[e]
    liabilities = np.zeros(len(ids))
    catalogue = exposure_catalogue(model)
    for i, (key, inst) in enumerate(model.institutions.items()):
        if inst.external_liabilities is not None:
            liabilities[i] = inst.external_liabilities
        else:
            liabilities[i] = max(0.0, balance_sheet_gap(model, key, catalogue)[0])
    sales = config.fire_sales
    impact = np.zeros(len(class_names))
    depth = np.ones(len(class_names))
    listed = np.zeros(len(class_names), dtype=np.bool_)
    if sales is not None:
        for name, market in sales.classes.items():
            c = class_names.index(name)
            impact[c], depth[c], listed[c] = market.impact, market.depth, True
    # Only the classes with a market can be sold in a fire sale.
    marketable[:, ~listed] = 0.0
    return ContagionLayout(
        model=config.model,
        senior_external=config.external_seniority == "senior",
        alpha=config.default_costs.external,
        beta=config.default_costs.interbank,
        debtrank_linear=config.debtrank.variant == "linear",
        debtrank_capped=config.debtrank.capped,
        max_rounds=config.max_rounds,
        owe_indptr=owe_indptr,
        owe_creditor=np.array(creditor, dtype=np.int64)[order],
        owe_amount=np.array(amount, dtype=np.float64)[order],
        external_assets=np.array(
            [inst.external_assets or 0.0 for inst in model.institutions.values()]
        ),
        external_liabilities=liabilities,
        total_liabilities=liabilities
        + np.bincount(debtor_array, weights=np.array(amount), minlength=len(ids)),
        holdings_value=holdings_value,
        distress_threshold=np.array(
            [inst.distress_threshold for inst in model.institutions.values()]
        ),
        fire_sales=sales is not None,
        fire_sale_exponential=sales is not None and sales.form == "exponential",
        fire_sale_trigger=sales.trigger_ratio if sales else 0.0,
        fire_sale_target=sales.target_ratio if sales else 0.0,
        marketable=marketable,
        price_impact=impact,
        market_depth=depth,
    )


def fast_layout(
    obligor_threshold: np.ndarray,
    obligor_loadings: np.ndarray,
    obligor_idio: np.ndarray,
    obligor_order: np.ndarray,
    dependency_indptr: np.ndarray,
    dependency_customer: np.ndarray,
    dependency_shift: np.ndarray,
    vehicles: VehicleLayout,
    target_kind: np.ndarray,
    target: np.ndarray,
    n_pools: int,
    holding_exposure: np.ndarray,
    holding_institution: np.ndarray,
    holding_share: np.ndarray,
    exposure_ead: np.ndarray,
    exposure_lgd_kind: np.ndarray,
    exposure_lgd_p1: np.ndarray,
    exposure_class: np.ndarray,
    n_classes: int,
    n_institutions: int,
) -> FastLayout:
    """Group obligors by (threshold, loadings) and index exposures for the fast kernel.

    Also lays out, once per scenario, what each group member's default adds to a path's
    totals (``kernels.fast.member_bookings``).
    """
    n_obligors = obligor_threshold.shape[0]
    k = obligor_loadings.shape[1]
    is_dependent = np.diff(dependency_indptr) > 0
    dependents = obligor_order[is_dependent[obligor_order]]
    grouped = np.flatnonzero(~is_dependent)
    watched = np.unique(
        np.concatenate(
            [
                dependency_customer,
                dependents,
                vehicles.lessee,
                vehicles.sponsor[vehicles.sponsor >= 0],
            ]
        )
    ).astype(np.int64)
    slot = np.full(n_obligors, -1, dtype=np.int64)
    slot[watched] = np.arange(watched.shape[0], dtype=np.int64)

    loading_rows, row_of = np.unique(
        obligor_loadings[grouped].reshape(grouped.shape[0], k), axis=0, return_inverse=True
    )
    row_of = row_of.reshape(-1).astype(np.int64)
    # Groups in threshold order, then by loadings: neighbouring groups have similar conditional
    # PDs, so whether a group has a default candidate is easier for the CPU to predict.
    keys = np.column_stack([obligor_threshold[grouped], row_of.astype(np.float64)])
    group_keys, group_of = np.unique(keys, axis=0, return_inverse=True)
    group_of = group_of.reshape(-1).astype(np.int64)
    group_indptr, group_order = csr(group_of, group_keys.shape[0])
    group_members = grouped[group_order]
    first_member = group_order[group_indptr[:-1]]

    # Exposures listed by the obligor's position in group order (then the dependents'): a
    # group's defaults then read neighbouring index entries.
    on_obligor = np.flatnonzero(target_kind == TARGET_OBLIGOR)
    on_pool = np.flatnonzero(target_kind == TARGET_POOL)
    position = np.full(n_obligors, -1, dtype=np.int64)
    position[group_members] = np.arange(group_members.shape[0], dtype=np.int64)
    position[dependents] = group_members.shape[0] + np.arange(dependents.shape[0], dtype=np.int64)
    member_indptr, order = csr(position[target[on_obligor]], n_obligors)
    n_grouped = group_members.shape[0]
    dependent_indptr = member_indptr[n_grouped:] - member_indptr[n_grouped]
    customer_indptr = np.concatenate(
        [[0], np.cumsum(np.diff(dependency_indptr)[dependents])]
    ).astype(np.int64)
    customer_rows = np.concatenate(
        [np.arange(dependency_indptr[d], dependency_indptr[d + 1]) for d in dependents]
        or [np.zeros(0, dtype=np.int64)]
    ).astype(np.int64)
    pool_indptr, pool_order = csr(target[on_pool], n_pools)
    holder_indptr, holder_order = csr(holding_exposure, target_kind.shape[0])
    exposures_in_order = on_obligor[order].astype(np.int64)
    member_exposure_indptr = member_indptr[: n_grouped + 1].copy()
    member_exposure = exposures_in_order[: member_indptr[n_grouped]].copy()
    member_watch = slot[group_members]
    holder = holding_institution[holder_order]
    holder_share = holding_share[holder_order]
    booking_indptr, booking = member_bookings(
        member_exposure_indptr,
        member_exposure,
        member_watch,
        exposure_ead,
        exposure_lgd_kind,
        exposure_lgd_p1,
        exposure_class,
        holder_indptr,
        holder,
        holder_share,
        n_classes,
        n_classes + n_institutions,
    )
    return FastLayout(
        loading_rows=np.ascontiguousarray(loading_rows, dtype=np.float64),
        group_loading=row_of[first_member] if n_grouped else np.zeros(0, dtype=np.int64),
        group_threshold=obligor_threshold[group_members[group_indptr[:-1]]],
        group_inverse_idio=1.0 / obligor_idio[group_members[group_indptr[:-1]]],
        group_indptr=group_indptr,
        member_exposure_indptr=member_exposure_indptr,
        member_exposure=member_exposure,
        member_watch=member_watch,
        booking_indptr=booking_indptr,
        booking=booking,
        dependent_threshold=obligor_threshold[dependents],
        dependent_loadings=np.ascontiguousarray(obligor_loadings[dependents]).reshape(
            dependents.shape[0], k
        ),
        dependent_idio=obligor_idio[dependents],
        dependent_watch=slot[dependents],
        dependent_exposure_indptr=dependent_indptr.copy(),
        dependent_exposure=exposures_in_order[member_indptr[n_grouped] :].copy(),
        dependent_customer_indptr=customer_indptr,
        dependent_customer=slot[dependency_customer[customer_rows]],
        dependent_shift=dependency_shift[customer_rows].astype(np.float64),
        n_watch=int(watched.shape[0]),
        vehicle_lessee=slot[vehicles.lessee],
        vehicle_sponsor=np.where(vehicles.sponsor >= 0, slot[np.maximum(vehicles.sponsor, 0)], -1),
        pool_exposure_indptr=pool_indptr,
        pool_exposure=on_pool[pool_order].astype(np.int64),
        holder_indptr=holder_indptr,
        holder=holder,
        holder_share=holder_share,
    )
