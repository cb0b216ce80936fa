"""The product catalogue: a price ladder per category that persona price levels pick from.

Products are sorted cheapest first within a category, so a customer's price level (a quantile) maps
straight to a product index; unit and return propensities differ by category.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

# Catalogue: products per category, median price (EUR), price dispersion, units and returns.
_CATALOGUE = {
    "fashion": (400, 35.0, 0.6, 0.6, 1.8),
    "home": (300, 40.0, 0.7, 1.0, 0.8),
    "electronics": (250, 110.0, 0.9, 0.2, 1.0),
    "beauty": (250, 18.0, 0.5, 1.2, 0.5),
    "kids": (250, 20.0, 0.6, 1.3, 0.9),
    "sports": (200, 40.0, 0.7, 0.6, 1.0),
    "grocery": (300, 5.0, 0.6, 3.0, 0.1),
    "books": (300, 15.0, 0.4, 0.5, 0.4),
}


@dataclass(frozen=True)
class Catalogue:
    """Products of every category, cheapest first within a category."""

    product_id: pa.Array  # plus "SHIPPING" and "FEE" at the end for non-product lines
    price: np.ndarray
    offset: np.ndarray  # first product index of each category
    size: np.ndarray  # products per category
    units: np.ndarray  # mean extra units per line, multiplier per category
    returns: np.ndarray  # return propensity multiplier per category


def draw_catalogue(rng: np.random.Generator) -> Catalogue:
    """Product ladders per category with lognormal prices ending in .99/.95/.49."""
    ids: list[str] = []
    prices: list[np.ndarray] = []
    sizes, units, returns = [], [], []
    for category, (size, median, sigma, unit, ret) in _CATALOGUE.items():
        raw = np.sort(median * rng.lognormal(0.0, sigma, size))
        ending = rng.choice(np.array([0.99, 0.95, 0.49]), size, p=[0.6, 0.25, 0.15])
        prices.append(np.maximum(np.floor(raw), 0.0) + ending)
        ids.extend(f"{category[:3].upper()}-{i:05d}" for i in range(size))
        sizes.append(size)
        units.append(unit)
        returns.append(ret)
    size_arr = np.array(sizes)
    price = np.concatenate([*prices, [0.0, 0.0]])
    return Catalogue(
        product_id=pa.array([*ids, "SHIPPING", "FEE"]),
        price=price,
        offset=np.concatenate([[0], np.cumsum(size_arr)[:-1]]),
        size=size_arr,
        units=np.array(units),
        returns=np.array(returns),
    )
