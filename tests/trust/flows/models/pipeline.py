"""Models: data as a dict of arrays, a ridge model from a class hierarchy, its evaluation."""

import functools
from dataclasses import dataclass

import numpy as np
from oracle_runtime import flow, task


def traced(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        out = fn(*args, **kwargs)
        return out

    return wrapper


class Base:
    shrink = 0.5

    class Defaults:
        steps = 3

    def penalty(self, w):
        return self.shrink * float(np.sum(w * w))

    @staticmethod
    def clip(x):
        return np.clip(x, -10, 10)


class Ridge(Base):
    norm = staticmethod(np.linalg.norm)

    def __init__(self, alpha):
        self.alpha = alpha

    @functools.cached_property
    def strength(self):
        return self.alpha * 2

    def fit(self, X, y):
        A = X.T @ X + self.strength * np.eye(X.shape[1])
        return self.clip(np.linalg.solve(A, X.T @ y))

    @classmethod
    def default(cls):
        return cls(0.1)

    @property
    def label(self):
        return f"ridge-{self.alpha}"


@dataclass
class Config:
    alpha: float = 0.1

    def model(self):
        return Ridge(self.alpha)


WEIGHTS = np.array([1.0, -2.0, 0.5])
NOISE = np.linspace(0, 0.1, 8)


@functools.cache
def features(n):
    return np.arange(n * 3, dtype=float).reshape(n, 3) / 10


@task
def make_data(n: int = 8) -> dict:
    X = features(n)
    return {"X": X, "y": X @ WEIGHTS + NOISE[:n]}


@task
@traced
def train(data: dict, config: Config):
    return config.model().fit(data["X"], data["y"])


@task(type="float")
def evaluate(coef, data: dict, steps: int = Base.Defaults.steps) -> float:
    pred = data["X"] @ coef
    m = Ridge.default()
    return float(np.mean((pred - data["y"]) ** 2)) + m.penalty(coef) * steps + len(m.label) + float(Ridge.norm(coef))


@task
def views(coef, data: dict) -> dict:
    return {"XT": data["X"].T, "coef": coef, "every_other": data["y"][::2], "fortran": np.asfortranarray(data["X"])}


@task(type="float")
def column_sums(v: dict) -> float:
    return float(v["XT"].sum(axis=0)[0] + v["fortran"].ravel(order="K")[1] + v["every_other"][-1])


@flow("Models")
def main(n: int = 8, alpha: float = 0.1):
    data = make_data(n)
    coef = train(data, Config(alpha))
    score = evaluate(coef, data)
    v = views(coef, data)
    return score, column_sums(v)


def parameters(data):
    return {"n": 8, "alpha": 0.1}
