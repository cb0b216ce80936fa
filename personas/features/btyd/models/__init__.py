"""BTYD models, one per module on the fit in :mod:`.base`; ``personas.features.btyd`` faces them.

A new model (MBG/NBD, Pareto/NBD, BG/BB) is a module here: a ``loglik(params, *columns,
grad=False)`` with its gradient, a :class:`~personas.features.btyd.models.base.BTYDModel`
subclass naming its parameters and starting point, its predictions and a simulator to test
them against.
"""
