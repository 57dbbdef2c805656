"""Estimated AWS Fargate cost of a run, from the vCPU- and memory-seconds its attempts used."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from sluice.runs.records import RunRecord


@dataclass(frozen=True)
class PriceTable:
    region: str
    as_of: str
    source: str
    minimum_seconds: int
    on_demand: dict[str, float]
    spot: dict[str, float]

    @classmethod
    def load(cls, path: Path | None = None) -> PriceTable:
        """The bundled table, or the JSON file a user passes to override it."""
        text = (
            path.read_text()
            if path
            else resources.files("sluice.data").joinpath("fargate-prices.json").read_text()
        )
        data: dict[str, Any] = json.loads(text)
        return cls(
            region=data["region"],
            as_of=data["as_of"],
            source=data["source"],
            minimum_seconds=int(data.get("minimum_seconds", 60)),
            on_demand=data["on_demand"],
            spot=data["spot"],
        )


@dataclass(frozen=True)
class CostEstimate:
    vcpu_seconds: float
    gb_seconds: float
    billed_vcpu_seconds: float
    billed_gb_seconds: float
    on_demand_usd: float
    spot_usd: float

    @property
    def saving_usd(self) -> float:
        return self.on_demand_usd - self.spot_usd

    @property
    def saving_fraction(self) -> float:
        return self.saving_usd / self.on_demand_usd if self.on_demand_usd else 0.0


def estimate(run: RunRecord, prices: PriceTable) -> CostEstimate:
    """Every attempt is a Fargate task billed per second with a one-minute minimum."""
    used_vcpu = used_gb = billed_vcpu = billed_gb = 0.0
    for job in run.jobs:
        for unit in job.runs():
            gb = unit.memory_mib / 1024
            for attempt in unit.attempts:
                if attempt.started_at is None or attempt.stopped_at is None:
                    continue
                seconds = max(0.0, (attempt.stopped_at - attempt.started_at) / 1000)
                billed = max(seconds, float(prices.minimum_seconds))
                used_vcpu += unit.vcpus * seconds
                used_gb += gb * seconds
                billed_vcpu += unit.vcpus * billed
                billed_gb += gb * billed

    def cost(rates: dict[str, float]) -> float:
        return (billed_vcpu * rates["vcpu_hour"] + billed_gb * rates["gb_hour"]) / 3600

    return CostEstimate(used_vcpu, used_gb, billed_vcpu, billed_gb, cost(prices.on_demand), cost(prices.spot))
