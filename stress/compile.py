"""Compile a validated scenario into the flat arrays the kernels take.

Everything the kernels cannot or should not compute is done here, once: default thresholds
(Φ⁻¹ or t_ν⁻¹ of each PD, via SciPy), idiosyncratic weights, Beta parameters, and the factor
law under the stress as a mean vector and a loading matrix A with Y = mean + A·z, z ~ N(0, I).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from stress.scenario import BetaLGD, CollateralLGD, Scenario, balance_sheet_gap

# Exposure target kinds and LGD kinds, shared with the kernels (kernels/reference.py).
TARGET_OBLIGOR, TARGET_POOL = 0, 1
LGD_FIXED, LGD_BETA, LGD_COLLATERAL = 0, 1, 2


@dataclass(frozen=True)
class FastLayout:
    """Index structures of the fast kernel (kernels/fast.py), built once per scenario.

    Obligors with the same threshold and loadings form a group (G groups); groups with the
    same loadings share a row of ``loading_rows`` (L rows). CSR indices map group members and
    pools to their exposures and exposures to their holders.
    """

    loading_rows: np.ndarray  # (L, K)
    group_loading: np.ndarray  # (G,) int64
    group_threshold: np.ndarray  # (G,)
    group_idio: np.ndarray  # (G,)
    group_indptr: np.ndarray  # (G + 1,) int64
    group_members: np.ndarray  # (O,) int64
    member_exposure_indptr: np.ndarray  # (O + 1,) int64, by position in group_members
    member_exposure: np.ndarray  # int64
    pool_exposure_indptr: np.ndarray  # (P + 1,) int64
    pool_exposure: np.ndarray  # int64
    holder_indptr: np.ndarray  # (E + 1,) int64
    holder: np.ndarray  # int64 institution index
    holder_share: np.ndarray


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
    fast: FastLayout
    contagion: ContagionLayout

    @property
    def n_factors(self) -> int:
        return len(self.factor_names)

    def reference_kernel_arguments(self) -> tuple[np.ndarray | float, ...]:
        """The portfolio arguments of ``kernels.reference.simulate_losses_reference``, in order."""
        return (
            self.obligor_threshold,
            self.obligor_loadings,
            self.obligor_idio,
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
        )

    def fast_kernel_arguments(self) -> tuple[np.ndarray, ...]:
        """The portfolio arguments of ``kernels.fast.simulate_losses_fast``, in order."""
        f = self.fast
        return (
            f.loading_rows,
            f.group_loading,
            f.group_threshold,
            f.group_idio,
            f.group_indptr,
            f.group_members,
            f.member_exposure_indptr,
            f.member_exposure,
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
        )


def pivoted_cholesky(matrix: np.ndarray, tolerance: float = 1e-12) -> np.ndarray:
    """Lower factor A with A·Aᵀ = matrix for a positive semi-definite matrix.

    Diagonal pivoting stops at the numerical rank, so singular matrices (two factors
    correlated exactly 1, a repaired matrix with a zero eigenvalue, a conditional covariance)
    factor without failing. Unlike an eigendecomposition the result has no sign ambiguity, so
    the same matrix gives the same factor, and the same paths, on any LAPACK build.
    """
    n = matrix.shape[0]
    work = np.array(matrix, dtype=np.float64, copy=True)
    factor = np.zeros((n, n))
    remaining = list(range(n))
    scale = max(float(np.max(np.diag(work), initial=0.0)), 1.0)
    for column in range(n):
        diagonal = np.array([work[i, i] for i in remaining])
        if diagonal.size == 0:
            break
        best = int(np.argmax(diagonal))
        pivot = remaining[best]
        if diagonal[best] <= tolerance * scale:
            break
        root = np.sqrt(diagonal[best])
        remaining.pop(best)
        factor[pivot, column] = root
        for i in remaining:
            factor[i, column] = work[i, pivot] / root
        for i in remaining:
            for j in remaining:
                work[i, j] -= factor[i, column] * factor[j, column]
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
        return mean, pivoted_cholesky(correlation)
    names = scenario.factor_names
    shocked = [names.index(f) for f in stress.shocks]
    shocks = np.array(list(stress.shocks.values()), dtype=np.float64)
    beta = correlation[:, shocked] @ np.linalg.pinv(
        correlation[np.ix_(shocked, shocked)], hermitian=True
    )
    mean = beta @ shocks
    mean[shocked] = shocks
    if stress.mode == "shift":
        return mean, pivoted_cholesky(correlation)
    covariance = correlation - beta @ correlation[shocked, :]
    covariance = 0.5 * (covariance + covariance.T)
    covariance[shocked, :] = 0.0
    covariance[:, shocked] = 0.0
    return mean, pivoted_cholesky(covariance)


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

    def loading_matrix(items) -> np.ndarray:
        matrix = np.zeros((len(items), k))
        for row, item in enumerate(items):
            for name, value in item.loadings.items():
                matrix[row, index[name]] = value
        return matrix

    def idiosyncratic(loadings: np.ndarray) -> np.ndarray:
        systematic = np.einsum("ik,kl,il->i", loadings, correlation, loadings)
        return np.sqrt(1.0 - systematic)

    obligors = list(model.obligors.values())
    obligor_loadings = loading_matrix(obligors)
    pools = list(model.pools.values())
    pool_loadings = loading_matrix(pools)

    obligor_index = {o: i for i, o in enumerate(model.obligors)}
    pool_index = {p: i for i, p in enumerate(model.pools)}
    class_names = tuple(sorted({e.class_ for e in model.exposures.values()}))
    class_index = {c: i for i, c in enumerate(class_names)}
    n_exposures = len(model.exposures)
    target_kind = np.zeros(n_exposures, dtype=np.int64)
    target = np.zeros(n_exposures, dtype=np.int64)
    ead = np.zeros(n_exposures)
    lgd_kind = np.zeros(n_exposures, dtype=np.int64)
    lgd_p1 = np.zeros(n_exposures)
    lgd_p2 = np.zeros(n_exposures)
    lgd_factor = np.full(n_exposures, -1, dtype=np.int64)
    exposure_class = np.zeros(n_exposures, dtype=np.int64)
    for e, exposure in enumerate(model.exposures.values()):
        if exposure.obligor is not None:
            target_kind[e], target[e] = TARGET_OBLIGOR, obligor_index[exposure.obligor]
        else:
            target_kind[e], target[e] = TARGET_POOL, pool_index[exposure.pool]
        ead[e] = exposure.ead
        exposure_class[e] = class_index[exposure.class_]
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

    exposure_index = {x: i for i, x in enumerate(model.exposures)}
    type_names = tuple(sorted({inst.type for inst in model.institutions.values()}))
    indptr = [0]
    holding_exposure: list[int] = []
    holding_share: list[float] = []
    for inst in model.institutions.values():
        for exposure_id, share in inst.holdings.items():
            holding_exposure.append(exposure_index[exposure_id])
            holding_share.append(share)
        indptr.append(len(holding_exposure))

    mean, loading = factor_law(scenario)
    obligor_threshold = threshold(np.array([o.pd for o in obligors], dtype=np.float64))
    obligor_idio = idiosyncratic(obligor_loadings)
    holding_institution = np.repeat(
        np.arange(len(model.institutions), dtype=np.int64), np.diff(indptr)
    )
    fast = fast_layout(
        obligor_threshold,
        obligor_loadings,
        obligor_idio,
        target_kind,
        target,
        len(pools),
        np.array(holding_exposure, dtype=np.int64),
        holding_institution,
        np.array(holding_share, dtype=np.float64),
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
        exposure_ids=tuple(model.exposures),
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
        institution_capital=np.array(
            [i.capital for i in model.institutions.values()], dtype=np.float64
        ),
        holding_indptr=np.array(indptr, dtype=np.int64),
        holding_exposure=np.array(holding_exposure, dtype=np.int64),
        holding_share=np.array(holding_share, dtype=np.float64),
        type_names=type_names,
        fast=fast,
        contagion=contagion_layout(scenario, class_names, ead, exposure_class),
    )


def contagion_layout(
    scenario: Scenario, class_names: tuple[str, ...], ead: np.ndarray, exposure_class: np.ndarray
) -> ContagionLayout:
    """Claims as CSR by debtor, resolved balance sheets and fire-sale markets."""
    model = scenario.model
    config = model.contagion
    ids = {key: i for i, key in enumerate(model.institutions)}
    exposures = {key: e for e, key in enumerate(model.exposures)}
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
    for i, (key, inst) in enumerate(model.institutions.items()):
        if inst.external_liabilities is not None:
            liabilities[i] = inst.external_liabilities
        else:
            liabilities[i] = max(0.0, balance_sheet_gap(model, key)[0])
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
    target_kind: np.ndarray,
    target: np.ndarray,
    n_pools: int,
    holding_exposure: np.ndarray,
    holding_institution: np.ndarray,
    holding_share: np.ndarray,
) -> FastLayout:
    """Group obligors by (threshold, loadings) and index exposures for the fast kernel."""
    n_obligors = obligor_threshold.shape[0]
    k = obligor_loadings.shape[1]
    loading_rows, row_of = np.unique(
        obligor_loadings.reshape(n_obligors, k), axis=0, return_inverse=True
    )
    row_of = row_of.reshape(-1).astype(np.int64)
    keys = np.column_stack([row_of.astype(np.float64), obligor_threshold])
    group_keys, group_of = np.unique(keys, axis=0, return_inverse=True)
    group_of = group_of.reshape(-1).astype(np.int64)
    group_indptr, group_members = csr(group_of, group_keys.shape[0])
    first_member = group_members[group_indptr[:-1]]

    on_obligor = np.flatnonzero(target_kind == TARGET_OBLIGOR)
    on_pool = np.flatnonzero(target_kind == TARGET_POOL)
    # Exposures listed by the obligor's position in group order: a group's defaults then
    # read neighbouring index entries.
    position = np.empty(n_obligors, dtype=np.int64)
    position[group_members] = np.arange(n_obligors, dtype=np.int64)
    member_indptr, order = csr(position[target[on_obligor]], n_obligors)
    pool_indptr, pool_order = csr(target[on_pool], n_pools)
    holder_indptr, holder_order = csr(holding_exposure, target_kind.shape[0])
    return FastLayout(
        loading_rows=np.ascontiguousarray(loading_rows, dtype=np.float64),
        group_loading=row_of[first_member] if n_obligors else np.zeros(0, dtype=np.int64),
        group_threshold=obligor_threshold[first_member],
        group_idio=obligor_idio[first_member],
        group_indptr=group_indptr,
        group_members=group_members,
        member_exposure_indptr=member_indptr,
        member_exposure=on_obligor[order].astype(np.int64),
        pool_exposure_indptr=pool_indptr,
        pool_exposure=on_pool[pool_order].astype(np.int64),
        holder_indptr=holder_indptr,
        holder=holding_institution[holder_order],
        holder_share=holding_share[holder_order],
    )
